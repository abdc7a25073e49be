/// Reads a family's tensors from a weight source with every check a model file from a
/// stranger needs before the network trusts it: the tensor is present, has exactly the shape
/// the config implies, and holds finite numbers (NaN or infinity in a norm or a bias would
/// silently turn every output into NaN). Families build their networks through it.
struct ModelBuilder {
    let source: any WeightSource
    let config: ModelConfig
    let family: any ModelFamily
    /// Float matrices are quantized on load (absmax per output channel) for int8 compute.
    let quantizeDenseForInt8: Bool

    var origin: String { source.origin }

    func expect(_ name: String, _ shape: [Int]) throws {
        guard let s = source.shapes[name] else { throw ModelError.missingTensor(origin: origin, name: name) }
        guard s == shape else { throw ModelError.badShape(origin: origin, name: name, shape: s, expected: shape) }
    }

    /// A 1-D tensor of `size` finite floats.
    func vector(_ name: String, _ size: Int) throws -> [Float] {
        try expect(name, [size])
        let v = try source.floats(name)
        if let bad = v.firstIndex(where: { !$0.isFinite }) { throw ModelError.nonFinite(origin: origin, name: name, index: bad) }
        return v
    }

    /// A 2-D tensor of `shape`, as the source holds it (dense floats checked finite; quantized
    /// weights carry finite scales, which the readers check). `forProducts` matrices are
    /// quantized on load in int8 mode; embeddings, which are looked up, are not.
    func matrix(_ name: String, _ shape: [Int], forProducts: Bool = true) throws -> WeightMatrix {
        try expect(name, shape)
        let m = try source.matrix(name)
        guard m.rows == shape[0], m.columns == shape[1] else {
            throw ModelError.badShape(origin: origin, name: name, shape: [m.rows, m.columns], expected: shape)
        }
        if case .dense(let d) = m {
            let values = UnsafeBufferPointer(start: d.values, count: d.rows * d.columns)
            if let bad = values.firstIndex(where: { !$0.isFinite }) { throw ModelError.nonFinite(origin: origin, name: name, index: bad) }
            if forProducts && quantizeDenseForInt8 {
                return .quantized(try QuantizedWeight.absmaxPerChannel(d, outputAxis: family.outputAxis(of: name), name: name))
            }
        }
        return m
    }

    /// Linear layer `spec` of block `layer`, `inFeatures` → `outFeatures`, with its bias and
    /// its LLM.int8 outlier part when the source carries them.
    func linear(_ spec: BlockLinear, layer: Int, inFeatures: Int, outFeatures: Int) throws -> Linear {
        let name = family.blockTensorName(layer: layer, spec.weight)
        let weight = try matrix(name, spec.inputMajor ? [inFeatures, outFeatures] : [outFeatures, inFeatures])
        let bias = try spec.bias.map { try vector(family.blockTensorName(layer: layer, $0), outFeatures) }
        let outliers = try source.outliers(name)
        try outliers?.check(inFeatures: inFeatures, outFeatures: outFeatures, origin: origin, name: name)
        return Linear(weight: weight, outputIsRows: !spec.inputMajor, bias: bias, outliers: outliers)
    }

    /// The output layer: `head` ([vocab, embedding]) when the checkpoint has one, else the
    /// token embedding (tied), shared in memory unless int8 mode must quantize a float embedding.
    func outputLayer(head: String, tokenEmbedding: WeightMatrix, embeddingName: String) throws -> Linear {
        let shape = [config.vocabSize, config.embeddingSize]
        if source.shapes[head] != nil { return Linear(weight: try matrix(head, shape), outputIsRows: true, bias: nil) }
        let shared = tokenEmbedding.isQuantized || !quantizeDenseForInt8
        return Linear(weight: shared ? tokenEmbedding : try matrix(embeddingName, shape), outputIsRows: true, bias: nil)
    }
}
