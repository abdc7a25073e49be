/// The Llama family: Llama 2/3, Mistral, Qwen2, SmolLM and the models that share their
/// layout, as Hugging Face checkpoints store them:
///
///     model.embed_tokens.weight [vocab, E];
///     model.layers.N.input_layernorm.weight [E];
///     model.layers.N.self_attn.{q_proj [E, E], k_proj [kv, E], v_proj [kv, E], o_proj [E, E]}.weight (+ q/k/v biases in Qwen2);
///     model.layers.N.post_attention_layernorm.weight [E];
///     model.layers.N.mlp.{gate_proj [I, E], up_proj [I, E], down_proj [E, I]}.weight;
///     model.norm.weight [E]; lm_head.weight [vocab, E] (absent when tied to the embedding).
///
/// Every matrix is PyTorch's Linear layout, [out, in]. The block is
/// x += o(attn(rope(q(rms₁(x))), rope(k(rms₁(x))), v(rms₁(x)))); x += down(silu(gate(rms₂(x))) · up(rms₂(x))),
/// with grouped-query attention (kv = kv heads × head size) and rotary embeddings.
public struct LlamaFamily: ModelFamily {
    public init() {}

    public var name: String { "llama" }
    public var huggingFaceArchitectures: [String] { ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"] }
    public var huggingFaceModelTypes: [String] { ["llama", "mistral", "qwen2"] }
    public var ggufArchitectures: [String] { ["llama"] }

    public func canonicalName(_ fileName: String) -> String? {
        // Rotary frequency buffers some old checkpoints saved are recomputed, not weights.
        fileName.hasSuffix(".rotary_emb.inv_freq") ? nil : fileName
    }

    public func recognises(_ names: Set<String>) -> Bool {
        names.contains("model.embed_tokens.weight") && names.contains("model.layers.0.self_attn.q_proj.weight")
    }

    public func blockTensorName(layer: Int, _ name: String) -> String { "model.layers.\(layer).\(name)" }

    static func attention(_ name: String, bias: Bool) -> BlockLinear {
        BlockLinear("self_attn.\(name)", site: .attentionInput, inputMajor: false, hasBias: bias)
    }
    static let outputProjection = BlockLinear("self_attn.o_proj", site: .attentionOutput, inputMajor: false, hasBias: false)
    static let gate = BlockLinear("mlp.gate_proj", site: .mlpInput, inputMajor: false, hasBias: false)
    static let up = BlockLinear("mlp.up_proj", site: .mlpInput, inputMajor: false, hasBias: false)
    static let down = BlockLinear("mlp.down_proj", site: .mlpHidden, inputMajor: false, hasBias: false)

    public func blockStructure(_ config: ModelConfig) -> BlockStructure {
        let q = Self.attention("q_proj", bias: config.attentionBias), k = Self.attention("k_proj", bias: config.attentionBias)
        let v = Self.attention("v_proj", bias: config.attentionBias)
        return BlockStructure(
            linears: [q, k, v, Self.outputProjection, Self.gate, Self.up, Self.down],
            producers: [
                .attentionInput: .norm(weight: "input_layernorm.weight", bias: nil),
                // Attention is linear in the values; but with grouped-query attention one value
                // head feeds several query heads, whose o_proj inputs would all need one scale.
                .attentionOutput: config.kvHeadCount == config.headCount
                    ? .linear(v, offset: 0)
                    : .none(reason: "value heads are shared by \(config.queryGroupSize) query heads (grouped-query attention)"),
                .mlpInput: .norm(weight: "post_attention_layernorm.weight", bias: nil),
                // down_proj reads silu(gate)·up, which is linear in up's output.
                .mlpHidden: .linear(Self.up, offset: 0),
            ],
            norms: ["input_layernorm", "post_attention_layernorm"])
    }

    public func outputAxis(of name: String) -> Int { 0 }

    static let keys = ConfigKeys(vocabSize: "vocab_size", contextLength: "max_position_embeddings", embeddingSize: "hidden_size",
                                 layerCount: "num_hidden_layers", headCount: "num_attention_heads",
                                 kvHeadCount: "num_key_value_heads", innerSize: "intermediate_size", normEpsilon: "rms_norm_eps",
                                 ropeTheta: "rope_theta")

    /// Reads a Hugging Face `config.json` of the family, refusing what this implementation
    /// would compute differently (another activation, rope scaling, MLP biases, a head size
    /// that is not hidden_size / heads), and checks it against the tensor shapes.
    public func config(json: JSONValue?, shapes: [String: [Int]], origin: String) throws -> ModelConfig {
        guard let json else {
            throw ModelError.badConfig(origin: origin, reason: "a Llama-family checkpoint needs its config.json (hidden sizes, heads, rope_theta cannot all be inferred)")
        }
        func bad(_ reason: String) -> ModelError { .badConfig(origin: origin, reason: reason) }
        func int(_ key: String) throws -> Int? {
            guard let v = json[key], v != .null else { return nil }
            guard let i = v.intValue else { throw bad("\"\(key)\" is \(v.serialized()), not an integer") }
            return i
        }
        func require(_ key: String) throws -> Int {
            guard let v = try int(key) else { throw bad("\"\(key)\" is missing") }
            return v
        }
        if let act = json["hidden_act"]?.stringValue, act != "silu" {
            throw bad("hidden_act \"\(act)\" is not supported (the Llama family uses silu)")
        }
        // transformers 5 writes `rope_parameters` {rope_theta, rope_type}; older files
        // `rope_theta` and `rope_scaling`.
        let rope = json["rope_parameters"].flatMap { $0 == .null ? nil : $0 }
        for scaling in [json["rope_scaling"], rope].compactMap({ $0 }) where scaling != .null {
            let type = scaling["rope_type"]?.stringValue ?? scaling["type"]?.stringValue ?? "default"
            guard type == "default" else { throw bad("rope scaling of type \"\(type)\" is not supported") }
        }
        let theta = rope?["rope_theta"]?.doubleValue ?? json["rope_theta"]?.doubleValue ?? 10_000
        if json["mlp_bias"]?.boolValue == true { throw bad("mlp_bias true is not supported") }
        let hidden = try require("hidden_size"), heads = try require("num_attention_heads")
        if let headDim = try int("head_dim"), heads > 0, headDim != hidden / heads {
            throw bad("head_dim \(headDim) differs from hidden_size / num_attention_heads (\(heads > 0 ? hidden / heads : 0)); such models are not supported")
        }
        var context = try require("max_position_embeddings")
        // Sliding-window attention equals full attention on windows no longer than the slide.
        if json["use_sliding_window"]?.boolValue != false, let slide = try int("sliding_window"), slide > 0 { context = min(context, slide) }
        let modelType = json["model_type"]?.stringValue
        let bias = json["attention_bias"]?.boolValue ?? (modelType == "qwen2")
        let config = ModelConfig(
            family: name, vocabSize: try require("vocab_size"), contextLength: context, embeddingSize: hidden,
            layerCount: try require("num_hidden_layers"), headCount: heads,
            kvHeadCount: try int("num_key_value_heads") ?? heads, innerSize: try require("intermediate_size"),
            normEpsilon: Float(json["rms_norm_eps"]?.doubleValue ?? 1e-6), ropeTheta: Float(theta),
            attentionBias: bias)
        try config.validate(origin: origin, keys: Self.keys)
        if let embed = shapes["model.embed_tokens.weight"], embed != [config.vocabSize, config.embeddingSize] {
            throw ModelError.badShape(origin: origin, name: "model.embed_tokens.weight", shape: embed, expected: [config.vocabSize, config.embeddingSize])
        }
        var layers = 0
        while layers <= config.layerCount, shapes[blockTensorName(layer: layers, "self_attn.q_proj.weight")] != nil { layers += 1 }
        guard layers == config.layerCount else { throw bad("num_hidden_layers is \(config.layerCount) but the tensors hold \(layers) layers") }
        if json["tie_word_embeddings"]?.boolValue == false, shapes["lm_head.weight"] == nil {
            throw ModelError.missingTensor(origin: origin, name: "lm_head.weight")
        }
        return config
    }

    public func makeModel(source: any WeightSource, config c: ModelConfig, quantizeDenseForInt8: Bool) throws -> DecoderModel {
        let load = ModelBuilder(source: source, config: c, family: self, quantizeDenseForInt8: quantizeDenseForInt8)
        let e = c.embeddingSize, kv = c.kvSize, structure = blockStructure(c)
        func norm(_ name: String) throws -> Normalization { .rmsNorm(weight: try load.vector(name, e), epsilon: c.normEpsilon) }
        func linear(_ name: String, _ l: Int, _ inFeatures: Int, _ outFeatures: Int) throws -> Linear {
            try load.linear(structure.linear(name)!, layer: l, inFeatures: inFeatures, outFeatures: outFeatures)
        }
        let tokenEmbedding = try load.matrix("model.embed_tokens.weight", [c.vocabSize, e], forProducts: false)
        let blocks: [any DecoderBlock] = try (0..<c.layerCount).map { l in
            LlamaBlock(norm1: try norm(blockTensorName(layer: l, "input_layernorm.weight")),
                       query: try linear("self_attn.q_proj", l, e, e), key: try linear("self_attn.k_proj", l, e, kv),
                       value: try linear("self_attn.v_proj", l, e, kv), output: try linear("self_attn.o_proj", l, e, e),
                       norm2: try norm(blockTensorName(layer: l, "post_attention_layernorm.weight")),
                       gate: try linear("mlp.gate_proj", l, e, c.innerSize), up: try linear("mlp.up_proj", l, e, c.innerSize),
                       down: try linear("mlp.down_proj", l, c.innerSize, e),
                       heads: CausalSelfAttention.Heads(heads: c.headCount, kvHeads: c.kvHeadCount, headSize: c.headSize))
        }
        return DecoderModel(config: c, family: self, origin: source.origin, tokenEmbedding: tokenEmbedding, positionEmbedding: nil,
                            blocks: blocks, finalNorm: try norm("model.norm.weight"),
                            outputLayer: try load.outputLayer(head: "lm_head.weight", tokenEmbedding: tokenEmbedding,
                                                              embeddingName: "model.embed_tokens.weight"),
                            gatedMLP: true)
    }

    /// llama.cpp's names for the `llama` architecture (its `LLM_ARCH_LLAMA` table).
    public var ggufNames: GGUFNameTable? {
        GGUFNameTable([
            .init("model.embed_tokens.weight", "token_embd.weight"), .init("model.norm.weight", "output_norm.weight"),
            .init("lm_head.weight", "output.weight"),
            .init("model.layers.{L}.input_layernorm.weight", "blk.{L}.attn_norm.weight"),
            .init("model.layers.{L}.self_attn.q_proj.weight", "blk.{L}.attn_q.weight"),
            .init("model.layers.{L}.self_attn.q_proj.bias", "blk.{L}.attn_q.bias"),
            .init("model.layers.{L}.self_attn.k_proj.weight", "blk.{L}.attn_k.weight"),
            .init("model.layers.{L}.self_attn.k_proj.bias", "blk.{L}.attn_k.bias"),
            .init("model.layers.{L}.self_attn.v_proj.weight", "blk.{L}.attn_v.weight"),
            .init("model.layers.{L}.self_attn.v_proj.bias", "blk.{L}.attn_v.bias"),
            .init("model.layers.{L}.self_attn.o_proj.weight", "blk.{L}.attn_output.weight"),
            .init("model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight"),
            .init("model.layers.{L}.mlp.gate_proj.weight", "blk.{L}.ffn_gate.weight"),
            .init("model.layers.{L}.mlp.up_proj.weight", "blk.{L}.ffn_up.weight"),
            .init("model.layers.{L}.mlp.down_proj.weight", "blk.{L}.ffn_down.weight"),
        ])
    }
}
