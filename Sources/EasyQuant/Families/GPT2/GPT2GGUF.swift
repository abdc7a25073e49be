/// GPT-2 in GGUF (llama.cpp's `gpt2` architecture): the `gpt2.*` metadata, both ways.
extension GPT2Family {
    /// The Hugging Face config of a GGUF file, from its `gpt2.*` metadata (as llama.cpp's
    /// loader reads them): context_length, embedding_length, feed_forward_length,
    /// block_count, attention.head_count, attention.layer_norm_epsilon. The vocabulary size
    /// comes from the token embedding (or the tokenizer's token list).
    public func huggingFaceConfig(gguf: GGUFFile, shapes: [String: [Int]]) throws -> JSONValue {
        func int(_ key: String) throws -> Int {
            guard let v = gguf.value("gpt2." + key)?.intValue else {
                throw ModelError.badConfig(origin: gguf.path, reason: "GGUF metadata gpt2.\(key) is missing or not an integer")
            }
            return v
        }
        let vocab = shapes["wte.weight"]?.first ?? gguf.value("tokenizer.ggml.tokens")?.arrayValue?.count ?? 0
        var members: [(String, JSONValue)] = [
            ("architectures", .array(["GPT2LMHeadModel"])), ("model_type", "gpt2"),
            ("vocab_size", JSONValue(vocab)), ("n_positions", JSONValue(try int("context_length"))),
            ("n_embd", JSONValue(try int("embedding_length"))), ("n_layer", JSONValue(try int("block_count"))),
            ("n_head", JSONValue(try int("attention.head_count"))), ("n_inner", JSONValue(try int("feed_forward_length"))),
            ("layer_norm_epsilon", .double(gguf.value("gpt2.attention.layer_norm_epsilon")?.doubleValue ?? 1e-5)),
            ("activation_function", "gelu_new"),
        ]
        if let bos = gguf.value("tokenizer.ggml.bos_token_id")?.intValue { members.append(("bos_token_id", JSONValue(bos))) }
        if let eos = gguf.value("tokenizer.ggml.eos_token_id")?.intValue { members.append(("eos_token_id", JSONValue(eos))) }
        return .makeObject(members)
    }

    /// The `gpt2.*` keys llama.cpp's gpt2 loader needs (u32 sizes, f32 ε).
    public func ggufMetadata(config c: ModelConfig) throws -> [(key: String, value: GGUFValue)] {
        try [
            ("general.architecture", .string("gpt2")),
            ("gpt2.context_length", GGUFValue.u32(c.contextLength, "gpt2.context_length")),
            ("gpt2.embedding_length", GGUFValue.u32(c.embeddingSize, "gpt2.embedding_length")),
            ("gpt2.feed_forward_length", GGUFValue.u32(c.innerSize, "gpt2.feed_forward_length")),
            ("gpt2.block_count", GGUFValue.u32(c.layerCount, "gpt2.block_count")),
            ("gpt2.attention.head_count", GGUFValue.u32(c.headCount, "gpt2.attention.head_count")),
            ("gpt2.attention.layer_norm_epsilon", .float32(c.normEpsilon)),
        ]
    }
}

extension GGUFValue {
    /// A u32 metadata value, refusing what does not fit (`key` names it in the error).
    static func u32(_ value: Int, _ key: String) throws -> GGUFValue {
        guard let v = UInt32(exactly: value) else {
            throw ModelError.badConfig(origin: "GGUF export", reason: "\(key) \(value) does not fit GGUF's u32")
        }
        return .uint32(v)
    }
}
