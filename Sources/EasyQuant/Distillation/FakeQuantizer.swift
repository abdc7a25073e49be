/// Fake quantization for quantization-aware training: the forward pass computes with
/// Ŵ = dequant(quant(W)), and the backward pass treats ∂Ŵ/∂W as the identity (the
/// straight-through estimator), so the gradient computed at Ŵ updates the float W.
///
/// Quantization is `AbsMax` (symmetric, scale = max|group| / (2^(b−1) − 1), round half to
/// even) with groups of `groupSize` consecutive input elements of one output channel, G
/// clamped to the input size: for a Conv1D weight stored [in, out] (GPT-2), G rows of one
/// column (`BlockLayout` axis 1); for a Linear weight stored [out, in] (Llama), G columns of
/// one row (axis 0). The axis is the one the family reports to the converter, which stores
/// `.group(G)` along it, so the codes are the same. Only the block's weight matrices are
/// quantized; biases and norm parameters stay float. `quantize(_:_:)` gives the converter
/// exactly the codes and scales the training saw.
public struct FakeQuantizer: Sendable {
    /// Code width, 2...8 (LKD uses 8 or 4).
    public let bits: Int
    /// Requested input elements per scale; a tensor with fewer inputs uses one group per channel.
    public let groupSize: Int

    public init(bits: Int, groupSize: Int = 128) {
        precondition((2...8).contains(bits), "bits must be 2...8")
        precondition(groupSize > 0, "group size must be positive")
        self.bits = bits; self.groupSize = groupSize
    }

    /// The quantization method.
    public var method: AbsMax { AbsMax(bits: bits) }

    /// The layout of a weight matrix of `shape` whose output channels run along `outputAxis`:
    /// groups of min(G, inputs) input elements of one output channel.
    public func layout(shape: [Int], outputAxis: Int) -> BlockLayout {
        precondition(shape.count == 2 && (outputAxis == 0 || outputAxis == 1))
        return BlockLayout(shape: shape, axis: outputAxis, granularity: .group(min(groupSize, shape[1 - outputAxis])))
    }

    /// The layout of the block's weight matrix `tensor`.
    public func layout(of tensor: BlockTensor) -> BlockLayout {
        guard let axis = tensor.outputAxis else { preconditionFailure("\(tensor.name) is not quantized") }
        return layout(shape: tensor.shape, outputAxis: axis)
    }

    /// The weight matrix `tensor` of `weights`, quantized (what a converter should store).
    public func quantize(_ weights: BlockWeights<Float>, _ tensor: BlockTensor, threads: Int = 1) throws -> QuantizedTensor {
        let layout = layout(of: tensor)
        return try weights.values.withUnsafeBufferPointer { all in
            try method.quantize(UnsafeBufferPointer(rebasing: all[tensor.range]), layout: layout, name: tensor.name, threads: threads)
        }
    }

    /// `weights` with every weight matrix replaced by dequant(quant(W)); other tensors unchanged.
    public func apply(to weights: BlockWeights<Float>, threads: Int = 1) throws -> BlockWeights<Float> {
        var out = weights
        for t in weights.schema.quantizedMatrices {
            out[t] = try quantize(weights, t, threads: threads).dequantized()
        }
        return out
    }
}
