/// GPT-2 (Radford et al., 2019) as Hugging Face checkpoints store it (docs/ARCHITECTURE.md):
///
///     wte [vocab, E], wpe [n_positions, E];
///     h.N.ln_1.{weight,bias}, h.N.attn.c_attn.{weight [E, 3E], bias}, h.N.attn.c_proj.{weight [E, E], bias},
///     h.N.ln_2.{weight,bias}, h.N.mlp.c_fc.{weight [E, inner], bias}, h.N.mlp.c_proj.{weight [inner, E], bias};
///     ln_f.{weight,bias}; lm_head.weight (tied to wte when absent).
///
/// Real checkpoints name tensors with or without a `transformer.` prefix, and old ones carry
/// `h.N.attn.bias` / `h.N.attn.masked_bias` causal-mask buffers that are not weights.
/// The Conv1D weights are stored [in, out]: their output channel is the last axis.
public struct GPT2Family: ModelFamily {
    public init() {}

    public var name: String { "gpt2" }
    public var huggingFaceArchitectures: [String] { ["GPT2LMHeadModel", "GPT2Model"] }
    public var huggingFaceModelTypes: [String] { ["gpt2"] }
    public var ggufArchitectures: [String] { ["gpt2"] }

    static let prefix = "transformer."

    public func canonicalName(_ fileName: String) -> String? {
        let name = fileName.hasPrefix(Self.prefix) ? String(fileName.dropFirst(Self.prefix.count)) : fileName
        return Self.isMaskBuffer(name) ? nil : name
    }

    /// Whether `name` (canonical) is an attention mask buffer (`h.N.attn.bias` or `h.N.attn.masked_bias`).
    static func isMaskBuffer(_ name: String) -> Bool {
        let parts = name.split(separator: ".")
        return parts.count == 4 && parts[0] == "h" && Int(parts[1]) != nil && parts[2] == "attn"
            && (parts[3] == "bias" || parts[3] == "masked_bias")
    }

    public func recognises(_ names: Set<String>) -> Bool { names.contains("wte.weight") }

    public func blockTensorName(layer: Int, _ name: String) -> String { "h.\(layer).\(name)" }

    static let attention = BlockLinear("attn.c_attn", site: .attentionInput, inputMajor: true, hasBias: true)
    static let attentionProjection = BlockLinear("attn.c_proj", site: .attentionOutput, inputMajor: true, hasBias: true)
    static let feedForward = BlockLinear("mlp.c_fc", site: .mlpInput, inputMajor: true, hasBias: true)
    static let feedForwardProjection = BlockLinear("mlp.c_proj", site: .mlpHidden, inputMajor: true, hasBias: true)

    public func blockStructure(_ config: ModelConfig) -> BlockStructure {
        BlockStructure(
            linears: [Self.attention, Self.attentionProjection, Self.feedForward, Self.feedForwardProjection],
            producers: [
                .attentionInput: .norm(weight: "ln_1.weight", bias: "ln_1.bias"),
                // Attention is linear in the values (softmax rows sum to 1): scaling c_attn's
                // value columns scales attention's output columns.
                .attentionOutput: .linear(Self.attention, offset: 2 * config.embeddingSize),
                .mlpInput: .norm(weight: "ln_2.weight", bias: "ln_2.bias"),
                .mlpHidden: .none(reason: "GELU's output is not linear in its input"),
            ],
            norms: ["ln_1", "ln_2"])
    }

    public func outputAxis(of name: String) -> Int {
        let isConv1D = name.hasPrefix("h.") && [Self.attention, Self.attentionProjection, Self.feedForward, Self.feedForwardProjection]
            .contains { name.hasSuffix("." + $0.weight) }
        return isConv1D ? 1 : 0
    }

    static let keys = ConfigKeys(vocabSize: "vocab_size", contextLength: "n_positions", embeddingSize: "n_embd", layerCount: "n_layer",
                                 headCount: "n_head", kvHeadCount: "n_head", innerSize: "n_inner", normEpsilon: "layer_norm_epsilon",
                                 ropeTheta: "-")

    /// Reads `config.json` (n_embd, n_layer, n_head, n_positions, vocab_size,
    /// layer_norm_epsilon, n_inner, activation_function), filling what is missing from the
    /// tensor shapes, and refuses a config the tensors contradict or this implementation
    /// would compute wrongly.
    public func config(json: JSONValue?, shapes: [String: [Int]], origin: String) throws -> ModelConfig {
        let inferred = Self.infer(shapes: shapes)
        func int(_ key: String) throws -> Int? {
            guard let v = json?[key], v != .null else { return nil }
            guard let i = v.intValue else { throw ModelError.badConfig(origin: origin, reason: "\"\(key)\" is \(v.serialized()), not an integer") }
            return i
        }
        func require(_ key: String, _ value: Int?, _ fallback: Int?) throws -> Int {
            guard let v = value ?? fallback else {
                throw ModelError.badConfig(origin: origin, reason: "\"\(key)\" is missing and cannot be inferred from the tensors")
            }
            return v
        }
        if let act = json?["activation_function"]?.stringValue, act != "gelu_new", act != "gelu_pytorch_tanh" {
            throw ModelError.badConfig(origin: origin, reason: "activation_function \"\(act)\" is not supported (GPT-2 uses gelu_new)")
        }
        let epsilon = json?["layer_norm_epsilon"]?.doubleValue ?? 1e-5
        let embedding = try require("n_embd", try int("n_embd"), inferred?.embeddingSize)
        let config = ModelConfig(
            family: name,
            vocabSize: try require("vocab_size", try int("vocab_size"), inferred?.vocabSize),
            contextLength: try require("n_positions", try int("n_positions") ?? int("n_ctx"), inferred?.contextLength),
            embeddingSize: embedding,
            layerCount: try require("n_layer", try int("n_layer"), inferred?.layerCount),
            headCount: try require("n_head", try int("n_head"), inferred?.headCount),
            innerSize: try int("n_inner") ?? inferred?.innerSize ?? embedding.multipliedReportingOverflow(by: 4).partialValue,
            normEpsilon: Float(epsilon), ropeTheta: nil, attentionBias: true)
        try config.validate(origin: origin, keys: Self.keys)
        if let inferred {
            for (key, mine, theirs) in [("vocab_size", config.vocabSize, inferred.vocabSize), ("n_embd", config.embeddingSize, inferred.embeddingSize),
                                        ("n_layer", config.layerCount, inferred.layerCount), ("n_positions", config.contextLength, inferred.contextLength),
                                        ("n_inner", config.innerSize, inferred.innerSize)] where mine != theirs {
                throw ModelError.badConfig(origin: origin, reason: "\(key) is \(mine) but the tensors say \(theirs)")
            }
        }
        return config
    }

    /// A GPT-2 config from its sizes (MLP 4 × n_embd unless given).
    public static func config(vocabSize: Int, contextLength: Int, embeddingSize: Int, layerCount: Int, headCount: Int,
                              normEpsilon: Float = 1e-5, innerSize: Int? = nil) -> ModelConfig {
        ModelConfig(family: "gpt2", vocabSize: vocabSize, contextLength: contextLength, embeddingSize: embeddingSize,
                    layerCount: layerCount, headCount: headCount, innerSize: innerSize ?? 4 * embeddingSize,
                    normEpsilon: normEpsilon, ropeTheta: nil, attentionBias: true)
    }

    /// What the tensor shapes say: wte [vocab, n_embd], wpe [n_positions, n_embd], h.N.* blocks,
    /// mlp.c_fc [n_embd, n_inner]. The head count cannot be seen in shapes; GPT-2's sizes use
    /// 64-wide heads, so that is assumed when config.json does not say.
    static func infer(shapes: [String: [Int]]) -> ModelConfig? {
        guard let wte = shapes["wte.weight"], wte.count == 2, let wpe = shapes["wpe.weight"], wpe.count == 2 else { return nil }
        var layers = 0
        while layers < ModelConfig.Limits.layerCount, shapes["h.\(layers).attn.c_attn.weight"] != nil { layers += 1 }
        let inner = shapes["h.0.mlp.c_fc.weight"].flatMap { $0.count == 2 ? $0[1] : nil } ?? 4 * wte[1]
        let heads = wte[1] % 64 == 0 && wte[1] > 0 ? wte[1] / 64 : 1
        return ModelConfig(family: "gpt2", vocabSize: wte[0], contextLength: wpe[0], embeddingSize: wte[1], layerCount: layers,
                           headCount: heads, innerSize: inner, attentionBias: true)
    }

    public func makeModel(source: any WeightSource, config c: ModelConfig, quantizeDenseForInt8: Bool) throws -> DecoderModel {
        let load = ModelBuilder(source: source, config: c, family: self, quantizeDenseForInt8: quantizeDenseForInt8)
        let e = c.embeddingSize
        func norm(_ prefix: String) throws -> Normalization {
            .layerNorm(weight: try load.vector(prefix + ".weight", e), bias: try load.vector(prefix + ".bias", e), epsilon: c.normEpsilon)
        }
        // Embeddings are looked up row by row; only the output layer multiplies with them.
        let tokenEmbedding = try load.matrix("wte.weight", [c.vocabSize, e], forProducts: false)
        let positionEmbedding = try load.matrix("wpe.weight", [c.contextLength, e], forProducts: false)
        let blocks: [any DecoderBlock] = try (0..<c.layerCount).map { l in
            GPT2Block(norm1: try norm("h.\(l).ln_1"),
                      attention: try load.linear(Self.attention, layer: l, inFeatures: e, outFeatures: 3 * e),
                      attentionProjection: try load.linear(Self.attentionProjection, layer: l, inFeatures: e, outFeatures: e),
                      norm2: try norm("h.\(l).ln_2"),
                      feedForward: try load.linear(Self.feedForward, layer: l, inFeatures: e, outFeatures: c.innerSize),
                      feedForwardProjection: try load.linear(Self.feedForwardProjection, layer: l, inFeatures: c.innerSize, outFeatures: e),
                      heads: CausalSelfAttention.Heads(heads: c.headCount, kvHeads: c.headCount, headSize: c.headSize))
        }
        return DecoderModel(config: c, family: self, origin: source.origin, tokenEmbedding: tokenEmbedding,
                            positionEmbedding: positionEmbedding, blocks: blocks, finalNorm: try norm("ln_f"),
                            outputLayer: try load.outputLayer(head: "lm_head.weight", tokenEmbedding: tokenEmbedding, embeddingName: "wte.weight"),
                            gatedMLP: false)
    }

    /// GGUF stores every matrix [out, in]: the Conv1D weights are transposed.
    public func ggufLayout(of name: String, config: ModelConfig) -> GGUFLayoutChange {
        outputAxis(of: name) == 1 ? .transposed : .none
    }

    /// llama.cpp's names for GPT-2 (its `LLM_ARCH_GPT2` table). c_attn's weight is stored
    /// [in, out] here and [out, in] in GGUF: the GGUF writer transposes Conv1D weights.
    public var ggufNames: GGUFNameTable? {
        GGUFNameTable([
            .init("wte.weight", "token_embd.weight"), .init("wpe.weight", "position_embd.weight"),
            .init("ln_f.weight", "output_norm.weight"), .init("ln_f.bias", "output_norm.bias"),
            .init("lm_head.weight", "output.weight"),
            .init("h.{L}.ln_1.weight", "blk.{L}.attn_norm.weight"), .init("h.{L}.ln_1.bias", "blk.{L}.attn_norm.bias"),
            .init("h.{L}.attn.c_attn.weight", "blk.{L}.attn_qkv.weight"), .init("h.{L}.attn.c_attn.bias", "blk.{L}.attn_qkv.bias"),
            .init("h.{L}.attn.c_proj.weight", "blk.{L}.attn_output.weight"), .init("h.{L}.attn.c_proj.bias", "blk.{L}.attn_output.bias"),
            .init("h.{L}.ln_2.weight", "blk.{L}.ffn_norm.weight"), .init("h.{L}.ln_2.bias", "blk.{L}.ffn_norm.bias"),
            .init("h.{L}.mlp.c_fc.weight", "blk.{L}.ffn_up.weight"), .init("h.{L}.mlp.c_fc.bias", "blk.{L}.ffn_up.bias"),
            .init("h.{L}.mlp.c_proj.weight", "blk.{L}.ffn_down.weight"), .init("h.{L}.mlp.c_proj.bias", "blk.{L}.ffn_down.bias"),
        ])
    }
}
