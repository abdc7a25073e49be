/// What to write a quantized tensor as when its codes have no exact GGUF form: the values of
/// a `--gguf-type` option.
///
/// The exact mapping (`GGUFTensorPlan.Route.exact`) is used whenever it exists, whatever was
/// requested: it keeps the codes, adds only the f16 rounding of the steps, and is the
/// smallest file. The request decides only for the other tensors.
public enum GGUFTypeRequest: String, CaseIterable, Sendable {
    /// Requantize to the nearest block type of the same width: 8-bit codes to Q8_0, 2-4-bit
    /// codes to Q4_0 if symmetric, Q4_1 if not; 5-7-bit codes to the next wider, Q8_0.
    case auto
    /// Dequantize to F16.
    case f16
    /// Dequantize to F32 (adds no error).
    case f32
    /// Requantize to this block type.
    case q8_0, q4_0, q4_1
}

/// How one tensor will be written: its GGUF type, and how its values get there.
///
/// Made before any data is encoded, so that a `GGUFWriter` can be given every tensor's type
/// (and so its size) up front; `GGUFTensorEncoder` then follows the same plan.
public struct GGUFTensorPlan: Sendable, Equatable {
    public enum Route: String, Sendable, Equatable, CaseIterable {
        /// The tensor's own codes, copied into blocks; only the steps (and Q4_1's minimum)
        /// are rounded to f16.
        case exact
        /// Dequantized, then quantized again by ggml's reference quantizer for `type`.
        case requantized
        /// Dequantized and stored as F16 or F32.
        case dequantized
        /// Float values, converted or quantized to `type`.
        case fromFloats
    }

    public let name: String
    /// PyTorch order, outermost first (GGUF's dims reversed).
    public let shape: [Int]
    public let type: GGMLType
    public let route: Route
    /// One line for a log: `exact: absmax 8-bit channel codes as Q8_0`,
    /// `requantized from simquant 8-bit channel to Q8_0 (…why)`.
    public let summary: String

    /// What `GGUFWriter` needs to know of this tensor.
    public var declaration: GGUFTensorDeclaration { GGUFTensorDeclaration(name: name, shape: shape, type: type) }

    /// The plan for a quantized tensor (stored [out, in], blocks along the input axis, as the
    /// model computes x·Wᵀ; transpose GPT-2's Conv1D [in, out] weights first): its exact
    /// mapping if it has one (see `GGUFCodeMapping` and docs/GGUF.md), else `request`.
    ///
    /// Blocks need a row length that is a multiple of 32; a tensor without one is written as
    /// F16 (or F32, if requested) whatever the request. Throws if the tensor's parts disagree.
    public init(quantized q: QuantizedTensor, name: String, request: GGUFTypeRequest = .auto) throws {
        try q.checkForGGUF(name: name)
        self.name = name
        shape = q.shape
        let source = q.ggufSummary
        switch GGUFCodeMapping.find(for: q) {
        case .success(let mapping):
            (type, route) = (mapping.type, .exact)
            summary = "exact: \(source) codes as \(mapping.type.name)"
        case .failure(let refusal):
            var target: GGMLType
            switch request {
            case .auto: target = q.bits > 4 ? .Q8_0 : (q.isSymmetric ? .Q4_0 : .Q4_1)
            case .f16: target = .F16
            case .f32: target = .F32
            case .q8_0: target = .Q8_0
            case .q4_0: target = .Q4_0
            case .q4_1: target = .Q4_1
            }
            if target.blockSize > 1 && q.shape[1] % target.blockSize != 0 { target = .F16 }
            type = target
            if target.blockSize == 1 {
                route = .dequantized
                summary = "dequantized from \(source) to \(target.name) (\(refusal.phrase))"
            } else {
                route = .requantized
                summary = "requantized from \(source) to \(target.name) (\(refusal.phrase))"
            }
        }
        if case .failure(let failure) = GGUFShapeCheck.sizes(shape, type) {
            throw GGUFConversionError(tensor: name, problem: .badShape(shape: shape, type: type, reason: failure.reason))
        }
    }

    /// The plan for float values of `shape` (PyTorch order) written as `type`: one of F32,
    /// F16, BF16 (converted) or Q8_0, Q4_0, Q4_1 (ggml's reference quantizers).
    public init(floats name: String, shape: [Int], as type: GGMLType) throws {
        guard GGUFBlockEncoder.encodable.contains(type) else {
            throw GGUFConversionError(tensor: name, problem: .notWritable(type))
        }
        if case .failure(let failure) = GGUFShapeCheck.sizes(shape, type) {
            throw GGUFConversionError(tensor: name, problem: .badShape(shape: shape, type: type, reason: failure.reason))
        }
        self.name = name
        self.shape = shape
        self.type = type
        route = .fromFloats
        summary = type.blockSize == 1 ? "\(type.name) from f32 values" : "quantized from f32 values to \(type.name)"
    }
}
