/// The hyperparameters of a decoder-only transformer, whatever family it belongs to.
///
/// Each family reads its own config keys (`config.json` or GGUF metadata) into this one
/// shape (see `ModelFamily.config`), and `validate` checks every value against sane bounds
/// before anything is sized from it: a model file from a stranger decides how much memory
/// the tools allocate, so the numbers are refused here, with the key that carried them,
/// rather than trusted.
public struct ModelConfig: Equatable, Sendable {
    /// The family's name ("gpt2", "llama").
    public var family: String
    public var vocabSize: Int
    /// Positions the model was trained for (GPT-2 `n_positions`, Llama `max_position_embeddings`).
    public var contextLength: Int
    public var embeddingSize: Int
    public var layerCount: Int
    /// Query heads.
    public var headCount: Int
    /// Key/value heads (grouped-query attention); equal to `headCount` without grouping.
    public var kvHeadCount: Int
    /// Hidden size of the MLP (GPT-2 `n_inner`, Llama `intermediate_size`).
    public var innerSize: Int
    /// ε of LayerNorm (GPT-2) or RMSNorm (Llama).
    public var normEpsilon: Float
    /// Base of the rotary position embedding; nil for learned absolute positions (GPT-2).
    public var ropeTheta: Float?
    /// Whether q, k and v have biases (GPT-2's fused c_attn always has; Qwen2 has; Llama has not).
    public var attentionBias: Bool

    public init(family: String, vocabSize: Int, contextLength: Int, embeddingSize: Int, layerCount: Int,
                headCount: Int, kvHeadCount: Int? = nil, innerSize: Int, normEpsilon: Float = 1e-5,
                ropeTheta: Float? = nil, attentionBias: Bool = false) {
        self.family = family; self.vocabSize = vocabSize; self.contextLength = contextLength
        self.embeddingSize = embeddingSize; self.layerCount = layerCount; self.headCount = headCount
        self.kvHeadCount = kvHeadCount ?? headCount; self.innerSize = innerSize
        self.normEpsilon = normEpsilon; self.ropeTheta = ropeTheta; self.attentionBias = attentionBias
    }

    /// Width of one attention head.
    public var headSize: Int { embeddingSize / max(1, headCount) }
    /// Width of the keys (and of the values) of one token: kv heads × head size.
    public var kvSize: Int { kvHeadCount * headSize }
    /// Query heads that share one key/value head.
    public var queryGroupSize: Int { headCount / max(1, kvHeadCount) }

    /// Upper bounds no real model comes near; they keep every product of two dimensions far
    /// from overflow and every buffer sized from them finite.
    public enum Limits {
        public static let vocabSize = 1 << 22
        public static let contextLength = 1 << 20
        public static let embeddingSize = 1 << 16
        public static let layerCount = 1 << 12
        public static let innerSize = 1 << 18
    }

    /// Refuses values no model of this shape can have: non-positive sizes, sizes above
    /// `Limits`, heads that do not divide the embedding, query heads that are not a multiple
    /// of the kv heads, an odd head size under rotary embeddings, a non-finite or
    /// non-positive ε or θ. `keys` names each field as the source spells it, for the message.
    public func validate(origin: String, keys: ConfigKeys) throws {
        func bad(_ key: String, _ reason: String) -> ModelError { .badConfig(origin: origin, reason: "\(key) \(reason)") }
        for (key, value, limit, minimum) in [
            (keys.vocabSize, vocabSize, Limits.vocabSize, 1),
            (keys.contextLength, contextLength, Limits.contextLength, 2),
            (keys.embeddingSize, embeddingSize, Limits.embeddingSize, 1),
            (keys.layerCount, layerCount, Limits.layerCount, 1),
            (keys.headCount, headCount, Limits.embeddingSize, 1),
            (keys.kvHeadCount, kvHeadCount, Limits.embeddingSize, 1),
            (keys.innerSize, innerSize, Limits.innerSize, 1),
        ] {
            guard value >= minimum else {
                throw bad(key, "is \(value); it must be at least \(minimum)" + (minimum == 2 ? " (a window needs a token and one to predict)" : ""))
            }
            guard value <= limit else { throw bad(key, "is \(value), above the \(limit) this implementation accepts") }
        }
        guard embeddingSize % headCount == 0 else {
            throw bad(keys.embeddingSize, "\(embeddingSize) is not a multiple of \(keys.headCount) \(headCount)")
        }
        guard headCount % kvHeadCount == 0 else {
            throw bad(keys.headCount, "\(headCount) is not a multiple of \(keys.kvHeadCount) \(kvHeadCount)")
        }
        guard normEpsilon.isFinite, normEpsilon > 0 else { throw bad(keys.normEpsilon, "is \(normEpsilon); it must be a positive number") }
        if let ropeTheta {
            guard ropeTheta.isFinite, ropeTheta > 1 else { throw bad(keys.ropeTheta, "is \(ropeTheta); it must be a number above 1") }
            guard headSize % 2 == 0 else { throw bad(keys.headCount, "gives an odd head size \(headSize), which rotary embeddings cannot rotate in pairs") }
        }
    }
}

/// How a family's config spells each field, for messages.
public struct ConfigKeys: Sendable {
    public var vocabSize, contextLength, embeddingSize, layerCount, headCount, kvHeadCount, innerSize, normEpsilon, ropeTheta: String

    public init(vocabSize: String, contextLength: String, embeddingSize: String, layerCount: String, headCount: String,
                kvHeadCount: String, innerSize: String, normEpsilon: String, ropeTheta: String) {
        self.vocabSize = vocabSize; self.contextLength = contextLength; self.embeddingSize = embeddingSize
        self.layerCount = layerCount; self.headCount = headCount; self.kvHeadCount = kvHeadCount
        self.innerSize = innerSize; self.normEpsilon = normEpsilon; self.ropeTheta = ropeTheta
    }
}

/// Why a model could not be built or run.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case badConfig(origin: String, reason: String)
    case missingTensor(origin: String, name: String)
    case badShape(origin: String, name: String, shape: [Int], expected: [Int])
    case unsupported(origin: String, reason: String)
    case nonFinite(origin: String, name: String, index: Int)
    case unknownFamily(origin: String, reason: String)

    public var description: String {
        switch self {
        case let .badConfig(o, r): return "\(o): model config: \(r); fix the config (config.json beside the weights, or the GGUF metadata)"
        case let .missingTensor(o, n): return "\(o): tensor \(n) is missing; this is not a complete checkpoint of its family"
        case let .badShape(o, n, s, e): return "\(o): tensor \(n) has shape \(s), expected \(e) from the config; the config and the weights do not match"
        case let .unsupported(o, r): return "\(o): \(r)"
        case let .nonFinite(o, n, i): return "\(o): tensor \(n): element \(i) is not a finite number; the weights are damaged (NaN or infinity)"
        case let .unknownFamily(o, r): return "\(o): \(r); supported families: \(ModelFamilies.all.map(\.name).joined(separator: ", "))"
        }
    }
}
