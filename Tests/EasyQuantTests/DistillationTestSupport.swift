import EasyQuant
import Foundation

/// Seeded normal random numbers for the distillation tests (SplitMix64 + Box–Muller).
struct SeededNormals {
    private var generator: SeededGenerator
    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }
    /// A double in (0, 1): never 0, so its logarithm is finite.
    mutating func uniform() -> Double { (Double(generator.next() >> 11) + 0.5) / Double(1 << 53) }
    mutating func normal() -> Double {
        (-2 * Foundation.log(uniform())).squareRoot() * Foundation.cos(2 * Double.pi * uniform())
    }
    mutating func normals(_ n: Int, std: Double, mean: Double = 0) -> [Double] {
        (0..<n).map { _ in mean + std * normal() }
    }
}

enum DistillationFixtures {
    /// The block schema of `config`'s family.
    static func schema(_ config: ModelConfig) -> BlockSchema {
        guard let family = ModelFamilies.named(config.family) as? any DistillableFamily else {
            preconditionFailure("no trainable block for \(config.family)")
        }
        return BlockSchema(family: family, config: config)
    }

    /// A random block of `config`'s family: weights large enough that attention is far from
    /// uniform and the GELU or SiLU is exercised on both sides of zero; norm gains near 1.
    static func randomBlock(_ config: ModelConfig, seed: UInt64) -> BlockWeights<Double> {
        let schema = schema(config)
        let gains = Set(schema.family.blockStructure(config).norms.map { $0 + ".weight" })
        var rng = SeededNormals(seed: seed)
        var tensors: [String: [Double]] = [:]
        for t in schema.tensors {
            let n = t.range.count
            if gains.contains(t.name) {
                tensors[t.name] = rng.normals(n, std: 0.2, mean: 1)
            } else if let inputs = t.inputs {
                tensors[t.name] = rng.normals(n, std: 1.2 / Double(inputs).squareRoot())
            } else {
                tensors[t.name] = rng.normals(n, std: 0.1)
            }
        }
        return BlockWeights(schema: schema, tensors: tensors)
    }

    /// The path of the tiny GPT-2 fixture folder, or nil if the folder is absent (the only
    /// case in which its tests skip; a folder without its model fails them).
    static func tinyGPT2() -> String? {
        let path = TestFiles.fixture("tiny-gpt2")
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }
}

/// A model held in memory, as a `WeightSource`.
class InMemoryWeightSource: WeightSource, @unchecked Sendable {
    let config: ModelConfig
    let origin: String
    let family: any ModelFamily
    let configJSON: JSONValue?
    var tensors: [String: ([Int], [Float])] = [:]

    init(config: ModelConfig, origin: String, family: any ModelFamily, configJSON: JSONValue) {
        self.config = config; self.origin = origin; self.family = family; self.configJSON = configJSON
    }

    /// Random blocks of the config's family under their canonical names.
    func addRandomBlocks(seed: UInt64) {
        for layer in 0..<config.layerCount {
            let block = DistillationFixtures.randomBlock(config, seed: seed &+ UInt64(layer) &+ 1)
            for t in block.schema.tensors {
                tensors[family.blockTensorName(layer: layer, t.name)] = (t.shape, block[t].map(Float.init))
            }
        }
    }

    var shapes: [String: [Int]] { tensors.mapValues { $0.0 } }
    func floats(_ name: String) throws -> [Float] {
        guard let t = tensors[name] else { throw ModelError.missingTensor(origin: origin, name: name) }
        return t.1
    }
    func matrix(_ name: String) throws -> WeightMatrix {
        guard let t = tensors[name] else { throw ModelError.missingTensor(origin: origin, name: name) }
        return .dense(DenseWeight(rows: t.0[0], columns: t.0[1], values: t.1))
    }
    var methodDescription: String { "f32" }
    var prefersInt8Compute: Bool { false }
    func tokenizerFiles() throws -> [String: [UInt8]] { [:] }
}

/// A GPT-2 held in memory with random weights.
final class RandomGPT2Source: InMemoryWeightSource, @unchecked Sendable {
    init(config c: ModelConfig, seed: UInt64) {
        super.init(config: c, origin: "random-gpt2", family: GPT2Family(), configJSON: .makeObject([
            ("n_embd", JSONValue(c.embeddingSize)), ("n_layer", JSONValue(c.layerCount)),
            ("n_head", JSONValue(c.headCount)), ("n_positions", JSONValue(c.contextLength)),
            ("vocab_size", JSONValue(c.vocabSize)), ("layer_norm_epsilon", JSONValue(1e-5)),
            ("n_inner", JSONValue(c.innerSize))]))
        var rng = SeededNormals(seed: seed)
        tensors["wte.weight"] = ([c.vocabSize, c.embeddingSize], rng.normals(c.vocabSize * c.embeddingSize, std: 0.5).map(Float.init))
        tensors["wpe.weight"] = ([c.contextLength, c.embeddingSize], rng.normals(c.contextLength * c.embeddingSize, std: 0.2).map(Float.init))
        addRandomBlocks(seed: seed)
        tensors["ln_f.weight"] = ([c.embeddingSize], [Float](repeating: 1, count: c.embeddingSize))
        tensors["ln_f.bias"] = ([c.embeddingSize], [Float](repeating: 0, count: c.embeddingSize))
    }
}

/// A Llama-family model held in memory with random weights (Qwen2-style q/k/v biases when
/// the config has them), its output layer tied to the embedding.
final class RandomLlamaSource: InMemoryWeightSource, @unchecked Sendable {
    init(config c: ModelConfig, seed: UInt64) {
        super.init(config: c, origin: c.attentionBias ? "random-qwen2" : "random-llama", family: LlamaFamily(), configJSON: .makeObject([
            ("model_type", JSONValue(c.attentionBias ? "qwen2" : "llama")), ("hidden_size", JSONValue(c.embeddingSize)),
            ("num_hidden_layers", JSONValue(c.layerCount)), ("num_attention_heads", JSONValue(c.headCount)),
            ("num_key_value_heads", JSONValue(c.kvHeadCount)), ("intermediate_size", JSONValue(c.innerSize)),
            ("max_position_embeddings", JSONValue(c.contextLength)), ("vocab_size", JSONValue(c.vocabSize)),
            ("rms_norm_eps", .double(Double(c.normEpsilon))), ("rope_theta", .double(Double(c.ropeTheta ?? 10_000))),
            ("attention_bias", .bool(c.attentionBias)), ("use_sliding_window", .bool(false))]))
        var rng = SeededNormals(seed: seed)
        tensors["model.embed_tokens.weight"] = ([c.vocabSize, c.embeddingSize],
                                                rng.normals(c.vocabSize * c.embeddingSize, std: 0.5).map(Float.init))
        addRandomBlocks(seed: seed)
        tensors["model.norm.weight"] = ([c.embeddingSize], [Float](repeating: 1, count: c.embeddingSize))
    }

    /// A Llama-family config: `heads` query heads sharing `kvHeads` key/value heads.
    static func config(vocabSize: Int = 64, contextLength: Int = 32, embeddingSize: Int, layerCount: Int, heads: Int, kvHeads: Int,
                       innerSize: Int, bias: Bool) -> ModelConfig {
        ModelConfig(family: "llama", vocabSize: vocabSize, contextLength: contextLength, embeddingSize: embeddingSize,
                    layerCount: layerCount, headCount: heads, kvHeadCount: kvHeads, innerSize: innerSize, normEpsilon: 1e-6,
                    ropeTheta: 10_000, attentionBias: bias)
    }
}

/// Collects every block's input and output through the public observer.
final class BlockRecorder: ForwardObserver {
    var inputs: [Int: [Float]] = [:]
    var outputs: [Int: [Float]] = [:]
    func blockInput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int) { inputs[layer, default: []].append(contentsOf: x) }
    func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int) { outputs[layer, default: []].append(contentsOf: x) }
}

/// ‖a − b‖ / ‖b‖.
func relativeError<T: BinaryFloatingPoint>(_ a: [T], _ b: [T]) -> Double {
    precondition(a.count == b.count)
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) { num += Double(x - y) * Double(x - y); den += Double(y) * Double(y) }
    return (num / max(den, 1e-300)).squareRoot()
}
