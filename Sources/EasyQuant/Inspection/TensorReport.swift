/// What inspection found out about one tensor: how it is stored, what its codes are worth,
/// and (when asked) its value statistics and its error against the original.
public struct TensorReport: Sendable {
    /// Tensor name, as in the file.
    public var name: String
    /// Logical shape.
    public var shape: [Int]
    /// Short storage description: `f32`, `int8 sym ch1`, `uint4 asym g128 ax1`, `int8 sym tensor`.
    public var storage: String
    /// The dtype the source model had (from the `.eqm` record; the dtype itself for safetensors).
    public var sourceDType: String
    /// How the codes are stored, for quantized tensors.
    public var quantization: EQMQuantization?
    /// Number of elements.
    public var elementCount: Int
    /// Bytes the tensor takes in the file: all its (compressed) blobs in an `.eqm`, its raw
    /// bytes in a safetensors file.
    public var storedBytes: Int
    /// Compressed bytes of the scales and zero points (0 for float tensors).
    public var parameterBytes = 0
    /// Smallest and largest scale, for quantized tensors.
    public var scaleRange: ClosedRange<Float>?
    /// Smallest and largest zero point, for asymmetric tensors.
    public var zeroPointRange: ClosedRange<Float>?
    /// Distribution of the stored codes.
    public var codes: CodeEntropy?
    /// The codes the method clamps to (see `CodeEntropy.clampLimits`).
    public var clampLimits: ClosedRange<Int>?
    /// Statistics of the (dequantized) values, with `--stats`.
    public var statistics: TensorStatistics?
    /// Error against the original, with `--compare`.
    public var error: ErrorMetrics?
    /// The ggml type, for a tensor of a GGUF file.
    public var ggmlType: GGMLType?

    /// A report of how a tensor is stored; the inspector adds codes, statistics and errors.
    public init(name: String, shape: [Int], storage: String, sourceDType: String, quantization: EQMQuantization?,
                elementCount: Int, storedBytes: Int) {
        self.name = name; self.shape = shape; self.storage = storage; self.sourceDType = sourceDType
        self.quantization = quantization; self.elementCount = elementCount; self.storedBytes = storedBytes
    }

    /// Whether the tensor is stored as codes.
    public var isQuantized: Bool { quantization != nil }

    /// Stored bits per element, everything the tensor takes included (0 for an empty tensor).
    public var bitsPerWeight: Double { elementCount == 0 ? 0 : Double(storedBytes * 8) / Double(elementCount) }

    /// Order-0 entropy of the stored codes, in bits per code (= per weight).
    public var entropyBitsPerWeight: Double? { codes?.bitsPerCode }

    /// Share of codes at the method's clamp limits.
    public var clampShare: Double? {
        guard let codes, let clampLimits else { return nil }
        return codes.share(atEndsOf: clampLimits)
    }

    /// The tensor's share of the entropy bound: its codes at their order-0 entropy plus its
    /// scales and zero points as stored; a float tensor counts at its stored size.
    public var boundBytes: Double {
        guard let codes else { return Double(storedBytes) }
        return codes.boundBytes + Double(parameterBytes)
    }

    /// The storage description of an `.eqm` quantization: signedness and width, scheme, and
    /// granularity (`tensor`, `chA` per channel along axis A, `gN axA` groups of N).
    public static func storage(of q: EQMQuantization) -> String {
        let type = (q.isSigned ? "int" : "uint") + "\(q.bits)"
        let scheme = q.isSymmetric ? "sym" : "asym"
        let granularity: String
        if let axis = q.layout.axis {
            granularity = q.layout.groupSize == 0 ? "ch\(axis)" : "g\(q.layout.groupSize) ax\(axis)"
        } else {
            granularity = "tensor"
        }
        return "\(type) \(scheme) \(granularity)"
    }
}
