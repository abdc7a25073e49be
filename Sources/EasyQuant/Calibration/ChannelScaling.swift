/// A linear layer's weight as a flat array, with the two ways it can be stored: [in, out]
/// (GPT-2's Conv1D, `inputMajor`) or [out, in] (PyTorch's Linear). The calibrated methods
/// work on input and output channels; this is the one place that knows where they are.
struct LinearWeightLayout: Sendable, Equatable {
    let inFeatures: Int
    let outFeatures: Int
    let inputMajor: Bool

    /// The layout of a stored matrix of `shape`.
    init(shape: [Int], inputMajor: Bool) {
        precondition(shape.count == 2, "a linear weight is a matrix")
        self.inputMajor = inputMajor
        inFeatures = inputMajor ? shape[0] : shape[1]
        outFeatures = inputMajor ? shape[1] : shape[0]
    }

    /// The layout of linear `spec`'s weight `name` in `source`, which must be a matrix with
    /// `inputs` input channels when given.
    init(_ source: any WeightSource, _ name: String, _ spec: BlockLinear, inputs: Int? = nil) throws {
        guard let shape = source.shapes[name] else { throw ModelError.missingTensor(origin: source.origin, name: name) }
        guard shape.count == 2 else { throw ModelError.unsupported(origin: source.origin, reason: "tensor \(name) is not a matrix") }
        self.init(shape: shape, inputMajor: spec.inputMajor)
        if let inputs, inFeatures != inputs {
            throw ModelError.badShape(origin: source.origin, name: name, shape: shape,
                                      expected: spec.inputMajor ? [inputs, outFeatures] : [outFeatures, inputs])
        }
    }

    /// The flat index of weight element (input j, output c).
    @inline(__always) func index(input j: Int, output c: Int) -> Int {
        inputMajor ? j * outFeatures + c : c * inFeatures + j
    }

    /// max |W[j, :]| over the outputs, for every input channel j.
    func inputAbsMax(_ w: [Float]) -> [Float] {
        var m = [Float](repeating: 0, count: inFeatures)
        for j in 0..<inFeatures { for c in 0..<outFeatures { m[j] = max(m[j], abs(w[index(input: j, output: c)])) } }
        return m
    }

    /// Input channel j's weights, one per output.
    func inputChannel(_ w: [Float], _ j: Int) -> [Float] { (0..<outFeatures).map { w[index(input: j, output: $0)] } }

    /// W with every weight of input channel j multiplied by s[j].
    func scalingInputs(_ w: [Float], by s: [Float]) -> [Float] {
        var out = w
        for j in 0..<inFeatures { for c in 0..<outFeatures { out[index(input: j, output: c)] *= s[j] } }
        return out
    }

    /// W with the input channels `indices` set to zero.
    func zeroingInputs(_ w: [Float], _ indices: [Int]) -> [Float] {
        var out = w
        for j in indices { for c in 0..<outFeatures { out[index(input: j, output: c)] = 0 } }
        return out
    }

    /// W with output channels offset + c divided by s[c].
    func dividingOutputs(_ w: [Float], by s: [Float], offset: Int) -> [Float] {
        var out = w
        for (c, sc) in s.enumerated() { for j in 0..<inFeatures { out[index(input: j, output: offset + c)] /= sc } }
        return out
    }

    /// The same weights stored [in, out].
    func inputMajorCopy(_ w: [Float]) -> [Float] {
        guard !inputMajor else { return w }
        var out = [Float](repeating: 0, count: w.count)
        for c in 0..<outFeatures { for j in 0..<inFeatures { out[j * outFeatures + c] = w[c * inFeatures + j] } }
        return out
    }
}

/// Per-input-channel scales folded into a model without changing what it computes in f32:
/// for each (block, site) with scales s, the site's consumers multiply their input channel j
/// by s_j and the site's producer divides its output channel j by s_j (a norm's weight and
/// bias, or another linear's output rows/columns and bias). X·W = (X·diag(s)⁻¹)·(diag(s)·W).
///
/// SmoothQuant and AWQ both fold this way; they differ in how they choose s.
public struct ChannelScaling: Sendable {
    /// [block][site] → s, one per input channel of the site.
    public let scales: [[InputSite: [Float]]]
    private let operations: [String: [Operation]]

    enum Operation: Sendable {
        case scaleInputs(LinearWeightLayout, [Float])
        case divideOutputs(LinearWeightLayout, [Float], offset: Int)
        case divideVector([Float], offset: Int)
    }

    /// Plans the folding of `scales` into the tensors of `source` (canonical names).
    /// Sites whose producer is `.none` must not have scales.
    public init(scales: [[InputSite: [Float]]], source: any WeightSource, config: ModelConfig) throws {
        self.scales = scales
        let family = source.family, structure = family.blockStructure(config)
        var operations: [String: [Operation]] = [:]
        for (layer, sites) in scales.enumerated() {
            for (site, s) in sites {
                for consumer in structure.consumers(of: site) {
                    let name = family.blockTensorName(layer: layer, consumer.weight)
                    operations[name, default: []].append(.scaleInputs(try LinearWeightLayout(source, name, consumer, inputs: s.count), s))
                }
                switch structure.producers[site] {
                case let .norm(weight, bias):
                    for v in [weight] + (bias.map { [$0] } ?? []) {
                        operations[family.blockTensorName(layer: layer, v), default: []].append(.divideVector(s, offset: 0))
                    }
                case let .linear(producer, offset):
                    let name = family.blockTensorName(layer: layer, producer.weight)
                    let layout = try LinearWeightLayout(source, name, producer)
                    guard offset + s.count <= layout.outFeatures else {
                        throw ModelError.badShape(origin: source.origin, name: name, shape: source.shapes[name]!, expected: [offset + s.count])
                    }
                    operations[name, default: []].append(.divideOutputs(layout, s, offset: offset))
                    if let bias = producer.bias {
                        operations[family.blockTensorName(layer: layer, bias), default: []].append(.divideVector(s, offset: offset))
                    }
                case .some(.none(let reason)):
                    throw ModelError.unsupported(origin: source.origin, reason: "site \(site.rawValue) of block \(layer) cannot take scales: \(reason)")
                case nil:
                    throw ModelError.unsupported(origin: source.origin, reason: "site \(site.rawValue) of block \(layer) has no producer")
                }
            }
        }
        self.operations = operations
    }

    public func changes(_ name: String) -> Bool { operations[name] != nil }

    public func transform(_ name: String, _ values: [Float]) -> [Float] {
        (operations[name] ?? []).reduce(values) { v, op in
            switch op {
            case let .scaleInputs(layout, s): return layout.scalingInputs(v, by: s)
            case let .divideOutputs(layout, s, offset): return layout.dividingOutputs(v, by: s, offset: offset)
            case let .divideVector(s, offset):
                var out = v
                for (c, sc) in s.enumerated() { out[offset + c] /= sc }
                return out
            }
        }
    }
}
