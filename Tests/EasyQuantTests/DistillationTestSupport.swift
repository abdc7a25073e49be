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
    /// A random block: weights large enough that attention is far from uniform and the
    /// GELU is exercised on both sides of zero.
    static func randomBlock(_ config: ModelConfig, seed: UInt64) -> BlockWeights<Double> {
        var rng = SeededNormals(seed: seed)
        var tensors: [BlockTensor: [Double]] = [:]
        for t in BlockTensor.allCases {
            let n = t.shape(config).reduce(1, *)
            switch t {
            case .norm1Weight, .norm2Weight: tensors[t] = rng.normals(n, std: 0.2, mean: 1)
            case _ where t.isQuantizedMatrix: tensors[t] = rng.normals(n, std: 1.2 / Double(t.shape(config)[0]).squareRoot())
            default: tensors[t] = rng.normals(n, std: 0.1)
            }
        }
        return BlockWeights(config: config, tensors: tensors)
    }

    /// The path of the tiny GPT-2 fixture folder, or nil if the folder is absent (the only
    /// case in which its tests skip; a folder without its model fails them).
    static func tinyGPT2() -> String? {
        let path = TestFiles.fixture("tiny-gpt2")
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }
}

/// A GPT-2 held in memory with random weights, as a `WeightSource`.
final class RandomGPT2Source: WeightSource, @unchecked Sendable {
    let config: ModelConfig
    private var tensors: [String: ([Int], [Float])] = [:]

    init(config c: ModelConfig, seed: UInt64) {
        config = c
        var rng = SeededNormals(seed: seed)
        tensors["wte.weight"] = ([c.vocabSize, c.embeddingSize], rng.normals(c.vocabSize * c.embeddingSize, std: 0.5).map(Float.init))
        tensors["wpe.weight"] = ([c.contextLength, c.embeddingSize], rng.normals(c.contextLength * c.embeddingSize, std: 0.2).map(Float.init))
        for layer in 0..<c.layerCount {
            let block = DistillationFixtures.randomBlock(c, seed: seed &+ UInt64(layer) &+ 1)
            for t in BlockTensor.allCases { tensors[t.canonicalName(layer: layer)] = (t.shape(c), block[t].map(Float.init)) }
        }
        tensors["ln_f.weight"] = ([c.embeddingSize], [Float](repeating: 1, count: c.embeddingSize))
        tensors["ln_f.bias"] = ([c.embeddingSize], [Float](repeating: 0, count: c.embeddingSize))
    }

    var origin: String { "random-gpt2" }
    var family: any ModelFamily { GPT2Family() }
    var configJSON: JSONValue? {
        .makeObject([("n_embd", JSONValue(config.embeddingSize)), ("n_layer", JSONValue(config.layerCount)),
                     ("n_head", JSONValue(config.headCount)), ("n_positions", JSONValue(config.contextLength)),
                     ("vocab_size", JSONValue(config.vocabSize)), ("layer_norm_epsilon", JSONValue(1e-5)),
                     ("n_inner", JSONValue(config.innerSize))])
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
