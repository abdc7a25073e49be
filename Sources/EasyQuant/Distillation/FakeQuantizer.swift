/// Fake quantization for quantization-aware training: the forward pass computes with
/// Ŵ = dequant(quant(W)), and the backward pass treats ∂Ŵ/∂W as the identity (the
/// straight-through estimator), so the gradient computed at Ŵ updates the float W.
///
/// Quantization is `AbsMax` (symmetric, scale = max|group| / (2^(b−1) − 1), round half to
/// even) with groups of `groupSize` consecutive input elements of one output channel: for a
/// Conv1D weight stored [in, out], G rows of one column (`BlockLayout` axis 1, `.group(G)`),
/// G clamped to the input size. Only the four weight matrices are quantized; biases and
/// LayerNorm parameters stay float. `quantize(_:_:)` gives the converter exactly the codes
/// and scales the training saw.
public struct FakeQuantizer: Sendable {
    /// Code width, 2...8 (LKD uses 8 or 4).
    public let bits: Int
    /// Requested input elements per scale; a tensor with fewer inputs uses one group per column.
    public let groupSize: Int

    public init(bits: Int, groupSize: Int = 128) {
        precondition((2...8).contains(bits), "bits must be 2...8")
        precondition(groupSize > 0, "group size must be positive")
        self.bits = bits; self.groupSize = groupSize
    }

    /// The quantization method.
    public var method: AbsMax { AbsMax(bits: bits) }

    /// The layout of a Conv1D weight of shape [inputs, outputs]: groups of min(G, inputs) rows of one column.
    public func layout(inputs: Int, outputs: Int) -> BlockLayout {
        BlockLayout(shape: [inputs, outputs], axis: 1, granularity: .group(min(groupSize, inputs)))
    }

    /// The weight matrix `tensor` of `weights`, quantized (what a converter should store).
    public func quantize(_ weights: BlockWeights<Float>, _ tensor: BlockTensor, threads: Int = 1) throws -> QuantizedTensor {
        precondition(tensor.isQuantizedMatrix, "\(tensor.name) is not quantized")
        let shape = tensor.shape(weights.config)
        return try weights.values.withUnsafeBufferPointer { all in
            let r = weights.range(of: tensor)
            let values = UnsafeBufferPointer(rebasing: all[r])
            return try method.quantize(values, layout: layout(inputs: shape[0], outputs: shape[1]), name: tensor.name, threads: threads)
        }
    }

    /// `weights` with every weight matrix replaced by dequant(quant(W)); other tensors unchanged.
    public func apply(to weights: BlockWeights<Float>, threads: Int = 1) throws -> BlockWeights<Float> {
        var out = weights
        for t in BlockTensor.allCases where t.isQuantizedMatrix {
            out[t] = try quantize(weights, t, threads: threads).dequantized()
        }
        return out
    }
}
