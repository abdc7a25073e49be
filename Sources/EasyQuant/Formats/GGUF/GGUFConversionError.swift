/// A tensor that cannot be turned into GGUF blocks, or GGUF blocks that cannot be turned
/// back into EasyQuant codes. `description` is one line naming the tensor (and the GGUF
/// file, when one was read) and what to do.
public struct GGUFConversionError: Error, CustomStringConvertible, Equatable {
    public enum Problem: Equatable {
        /// Element `index` (row-major) is NaN or infinite.
        case nonFinite(index: Int, value: Float)
        /// Element `index` is finite but rounds to ±inf in `type` (F16 beyond 65504, BF16
        /// within half a unit of f32's maximum).
        case valueOverflow(index: Int, value: Float, type: GGMLType)
        /// Block `block` (row-major over the tensor's blocks) needs a step or minimum of
        /// `value`, which rounds to ±inf in the f16 that `type` stores it in.
        case scaleOverflow(block: Int, value: Double, type: GGMLType)
        /// A shape GGUF cannot hold as `type` (rank, a dimension below 1, an element count
        /// that overflows, a row length that is not a multiple of the block size).
        case badShape(shape: [Int], type: GGMLType?, reason: String)
        /// `values` floats given for a shape of `expected` elements.
        case wrongCount(expected: Int, values: Int)
        /// A type EasyQuant does not write (it writes F32, F16, BF16, Q8_0, Q4_0, Q4_1).
        case notWritable(GGMLType)
        /// A quantized tensor whose parts disagree (codes, scales or zero points sized for
        /// another shape or layout; a non-finite scale or zero point).
        case malformed(reason: String)
        /// A GGUF tensor whose type is not one EasyQuant codes come back from (Q8_0, Q4_0, Q4_1).
        case notCodes(type: GGMLType)
        /// A Q4_1 block at byte `offset` with d = 0 but m ≠ 0: every element is m, which
        /// (q − z) · step cannot express with a step of 0.
        case zeroStepWithMinimum(block: Int, offset: Int, minimum: Float)
    }

    /// The tensor's name.
    public var tensor: String
    public var problem: Problem
    /// The GGUF file the tensor came from, for errors in reading codes back.
    public var path: String?

    public init(tensor: String, problem: Problem, path: String? = nil) {
        self.tensor = tensor
        self.problem = problem
        self.path = path
    }

    public var description: String {
        let prefix = (path.map { $0 + ": " } ?? "") + "tensor \(tensor): "
        let useF32 = "write this tensor as F32 (--gguf-type f32 for quantized tensors that have no exact mapping)"
        switch problem {
        case let .nonFinite(index, value):
            return prefix + "element \(index) is \(value); NaN and infinite values cannot be written to GGUF, so fix the model's weights"
        case let .valueOverflow(index, value, type):
            return prefix + "element \(index) is \(value), beyond the largest finite \(type.name) value; \(useF32)"
        case let .scaleOverflow(block, value, type):
            return prefix + "block \(block) needs a step or minimum of \(value), beyond the f16 (largest 65504) that \(type.name) stores it in; \(useF32)"
        case let .badShape(shape, type, reason):
            return prefix + "shape \(shape) cannot be written\(type.map { " as " + $0.name } ?? ""): \(reason)"
        case let .wrongCount(expected, values):
            return prefix + "\(values) values given for a shape of \(expected) elements; pass exactly one value per element"
        case .notWritable(let type):
            let known = GGUFBlockEncoder.encodable.map(\.name).joined(separator: ", ")
            return prefix + "EasyQuant does not write \(type.name); choose one of \(known)"
        case .malformed(let reason):
            return prefix + "the quantized tensor is inconsistent: \(reason); read it again from its .eqm file (which may be damaged)"
        case .notCodes(let type):
            return prefix + "type \(type.name) has no EasyQuant codes (only Q8_0, Q4_0 and Q4_1 map to them); dequantize it with floats(of:threads:) instead"
        case let .zeroStepWithMinimum(block, offset, minimum):
            return prefix + "Q4_1 block \(block) at byte \(offset) has step 0 and minimum \(minimum), which codes (q − z) · step cannot express; dequantize this tensor with floats(of:threads:) instead"
        }
    }
}
