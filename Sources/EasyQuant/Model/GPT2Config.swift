/// The hyperparameters of a GPT-2 network, as `config.json` names them.
public struct GPT2Config: Equatable, Sendable {
    public var vocabSize: Int
    public var contextLength: Int
    public var embeddingSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var layerNormEpsilon: Float
    /// Hidden size of the MLP (`n_inner`, default 4 × n_embd).
    public var innerSize: Int

    public var headSize: Int { embeddingSize / headCount }

    public init(vocabSize: Int, contextLength: Int, embeddingSize: Int, layerCount: Int, headCount: Int,
                layerNormEpsilon: Float = 1e-5, innerSize: Int? = nil) {
        self.vocabSize = vocabSize; self.contextLength = contextLength; self.embeddingSize = embeddingSize
        self.layerCount = layerCount; self.headCount = headCount; self.layerNormEpsilon = layerNormEpsilon
        self.innerSize = innerSize ?? 4 * embeddingSize
    }

    /// Reads `config.json` (keys n_embd, n_layer, n_head, n_positions, vocab_size,
    /// layer_norm_epsilon, n_inner, activation_function), filling what is missing from
    /// `inferred` (the tensor shapes). Refuses what this implementation would compute wrongly.
    public init(json: JSONValue?, inferred: GPT2Config?, origin: String) throws {
        func int(_ key: String) -> Int? { json?[key]?.intValue }
        func require(_ key: String, _ fallback: Int?) throws -> Int {
            guard let v = int(key) ?? fallback else {
                throw ModelError.badConfig(origin: origin, reason: "\"\(key)\" is missing and cannot be inferred from the tensors")
            }
            return v
        }
        if let act = json?["activation_function"]?.stringValue, act != "gelu_new", act != "gelu_pytorch_tanh" {
            throw ModelError.badConfig(origin: origin, reason: "activation_function \"\(act)\" is not supported (GPT-2 uses gelu_new)")
        }
        self.init(vocabSize: try require("vocab_size", inferred?.vocabSize),
                  contextLength: try require("n_positions", int("n_ctx") ?? inferred?.contextLength),
                  embeddingSize: try require("n_embd", inferred?.embeddingSize),
                  layerCount: try require("n_layer", inferred?.layerCount),
                  headCount: try require("n_head", inferred?.headCount),
                  layerNormEpsilon: Float(json?["layer_norm_epsilon"]?.doubleValue ?? 1e-5),
                  innerSize: int("n_inner") ?? inferred?.innerSize)
        guard headCount > 0, embeddingSize % headCount == 0 else {
            throw ModelError.badConfig(origin: origin, reason: "n_embd \(embeddingSize) is not a multiple of n_head \(headCount)")
        }
        if let inferred {
            for (key, mine, theirs) in [("vocab_size", vocabSize, inferred.vocabSize), ("n_embd", embeddingSize, inferred.embeddingSize),
                                        ("n_layer", layerCount, inferred.layerCount), ("n_positions", contextLength, inferred.contextLength),
                                        ("n_inner", innerSize, inferred.innerSize)] where mine != theirs {
                throw ModelError.badConfig(origin: origin, reason: "\(key) is \(mine) but the tensors say \(theirs)")
            }
        }
    }

    /// What the tensor shapes say: wte [vocab, n_embd], wpe [n_positions, n_embd], h.N.* blocks,
    /// mlp.c_fc [n_embd, n_inner]. The head count cannot be seen in shapes; GPT-2's sizes use
    /// 64-wide heads, so that is assumed when config.json does not say.
    public static func infer(shapes: [String: [Int]]) -> GPT2Config? {
        guard let wte = shapes["wte.weight"], wte.count == 2, let wpe = shapes["wpe.weight"], wpe.count == 2 else { return nil }
        var layers = 0
        while shapes["h.\(layers).attn.c_attn.weight"] != nil { layers += 1 }
        let inner = shapes["h.0.mlp.c_fc.weight"].map { $0[1] }
        let heads = wte[1] % 64 == 0 ? wte[1] / 64 : 1
        return GPT2Config(vocabSize: wte[0], contextLength: wpe[0], embeddingSize: wte[1], layerCount: layers,
                          headCount: heads, innerSize: inner)
    }

    /// Parameter count of the network (tied output layer counted once).
    public var parameterCount: Int {
        let e = embeddingSize, i = innerSize
        let block = 2 * 2 * e + (e * 3 * e + 3 * e) + (e * e + e) + (e * i + i) + (i * e + e)
        return vocabSize * e + contextLength * e + layerCount * block + 2 * e
    }
}

/// Why a model could not be built or run.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case badConfig(origin: String, reason: String)
    case missingTensor(origin: String, name: String)
    case badShape(origin: String, name: String, shape: [Int], expected: [Int])
    case unsupported(origin: String, reason: String)

    public var description: String {
        switch self {
        case let .badConfig(o, r): return "\(o): model config: \(r); fix config.json beside the weights"
        case let .missingTensor(o, n): return "\(o): tensor \(n) is missing; this does not look like a complete GPT-2 checkpoint"
        case let .badShape(o, n, s, e): return "\(o): tensor \(n) has shape \(s), expected \(e) from the config; the config and the weights do not match"
        case let .unsupported(o, r): return "\(o): \(r)"
        }
    }
}
