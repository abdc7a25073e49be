/// Reading Llama-family models from GGUF (the `llama` architecture of llama.cpp).
extension LlamaFamily {
    /// The Hugging Face config of a GGUF file, from its `llama.*` metadata.
    public func huggingFaceConfig(gguf: GGUFFile, shapes: [String: [Int]]) throws -> JSONValue {
        func value(_ key: String) -> GGUFValue? { gguf.value("llama." + key) }
        func int(_ key: String) throws -> Int {
            guard let v = value(key)?.intValue else {
                throw ModelError.badConfig(origin: gguf.path, reason: "GGUF metadata llama.\(key) is missing or not an integer")
            }
            return v
        }
        let embedding = try int("embedding_length"), heads = try int("attention.head_count")
        let kvHeads = value("attention.head_count_kv")?.intValue ?? heads
        if let rotated = value("rope.dimension_count")?.intValue, heads > 0, rotated != embedding / heads {
            throw ModelError.badConfig(origin: gguf.path, reason: "llama.rope.dimension_count \(rotated) rotates part of each \(embedding / heads)-wide head; partial rotary embeddings are not supported")
        }
        if let scaling = gguf.value("llama.rope.scaling.type")?.stringValue, scaling != "none" {
            throw ModelError.badConfig(origin: gguf.path, reason: "llama.rope.scaling.type \(scaling) is not supported")
        }
        let vocab = value("vocab_size")?.intValue ?? gguf.value("tokenizer.ggml.tokens")?.arrayValue?.count
            ?? shapes["model.embed_tokens.weight"]?.first ?? 0
        var members: [(String, JSONValue)] = [
            ("architectures", .array(["LlamaForCausalLM"])), ("model_type", "llama"),
            ("vocab_size", JSONValue(vocab)), ("max_position_embeddings", JSONValue(try int("context_length"))),
            ("hidden_size", JSONValue(embedding)), ("num_hidden_layers", JSONValue(try int("block_count"))),
            ("num_attention_heads", JSONValue(heads)), ("num_key_value_heads", JSONValue(kvHeads)),
            ("intermediate_size", JSONValue(try int("feed_forward_length"))),
            ("rms_norm_eps", .double(value("attention.layer_norm_rms_epsilon")?.doubleValue ?? 1e-5)),
            ("rope_theta", .double(value("rope.freq_base")?.doubleValue ?? 10_000)),
            ("hidden_act", "silu"), ("tie_word_embeddings", .bool(shapes["lm_head.weight"] == nil)),
            ("attention_bias", .bool(shapes["model.layers.0.self_attn.q_proj.bias"] != nil)),
        ]
        if let bos = gguf.value("tokenizer.ggml.bos_token_id")?.intValue { members.append(("bos_token_id", JSONValue(bos))) }
        if let eos = gguf.value("tokenizer.ggml.eos_token_id")?.intValue { members.append(("eos_token_id", JSONValue(eos))) }
        return .makeObject(members)
    }

    /// The `llama.*` keys llama.cpp's llama loader needs (u32 sizes, f32 ε and θ). Every
    /// head is rotated whole (rope.dimension_count = head size).
    public func ggufMetadata(config c: ModelConfig) throws -> [(key: String, value: GGUFValue)] {
        try [
            ("general.architecture", .string("llama")),
            ("llama.vocab_size", GGUFValue.u32(c.vocabSize, "llama.vocab_size")),
            ("llama.context_length", GGUFValue.u32(c.contextLength, "llama.context_length")),
            ("llama.embedding_length", GGUFValue.u32(c.embeddingSize, "llama.embedding_length")),
            ("llama.feed_forward_length", GGUFValue.u32(c.innerSize, "llama.feed_forward_length")),
            ("llama.block_count", GGUFValue.u32(c.layerCount, "llama.block_count")),
            ("llama.attention.head_count", GGUFValue.u32(c.headCount, "llama.attention.head_count")),
            ("llama.attention.head_count_kv", GGUFValue.u32(c.kvHeadCount, "llama.attention.head_count_kv")),
            ("llama.rope.dimension_count", GGUFValue.u32(c.headSize, "llama.rope.dimension_count")),
            ("llama.rope.freq_base", .float32(c.ropeTheta ?? 10_000)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(c.normEpsilon)),
        ]
    }

    /// llama.cpp's converter interleaves the rows of q_proj and k_proj (and their biases)
    /// head by head for its rotary kernel; everything else is stored as in Hugging Face.
    public func ggufLayout(of name: String, config: ModelConfig) -> GGUFLayoutChange {
        if name.hasSuffix(".self_attn.q_proj.weight") || name.hasSuffix(".self_attn.q_proj.bias") { return .interleavedRotary(heads: config.headCount) }
        if name.hasSuffix(".self_attn.k_proj.weight") || name.hasSuffix(".self_attn.k_proj.bias") { return .interleavedRotary(heads: config.kvHeadCount) }
        return .none
    }
}
