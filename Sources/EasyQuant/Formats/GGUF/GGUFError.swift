/// A GGUF file that cannot be used; `description` is one line naming the file, the byte
/// offset and/or the key or tensor, and what to do.
public struct GGUFError: Error, CustomStringConvertible, Equatable {
    public enum Problem: Equatable {
        /// The first four bytes are not `GGUF`.
        case notGGUF
        /// The version field reads as a small number only when byte-swapped: a big-endian file.
        case bigEndian(version: UInt32)
        /// A version other than 2 or 3.
        case unsupportedVersion(UInt32)
        /// The file ends before `needed` more bytes of `field` at `offset`.
        case truncated(field: String, offset: Int, needed: UInt64, fileSize: Int)
        /// A count or length larger than the bytes that remain could hold.
        case countTooLarge(field: String, offset: Int, count: UInt64, limit: Int)
        /// A metadata value type tag that GGUF does not define.
        case unknownValueType(key: String, offset: Int, raw: UInt32)
        /// Arrays nested deeper than `GGUFFile.maxNesting`.
        case nestingTooDeep(key: String, offset: Int)
        /// A key, string or tensor name that is not valid UTF-8.
        case invalidUTF8(field: String, offset: Int)
        /// A bool stored as a byte other than 0 or 1.
        case badBool(key: String, offset: Int, byte: UInt8)
        /// A key that appears twice.
        case duplicateKey(key: String, offset: Int)
        /// `general.alignment` of the wrong type, not a power of two, or out of range.
        case badAlignment(String)
        /// A tensor info that breaks a rule (dimensions, sizes, name).
        case badTensor(tensor: String, offset: Int, reason: String)
        /// A tensor type number ggml does not define (or has retired).
        case unknownTensorType(tensor: String, offset: Int, raw: UInt32)
        /// A tensor name that appears twice.
        case duplicateTensor(tensor: String, offset: Int)
        /// A tensor's data offset that is not a multiple of the alignment.
        case misaligned(tensor: String, offset: UInt64, alignment: Int)
        /// A tensor whose data runs past the end of the file.
        case pastEnd(tensor: String, start: UInt64, byteCount: Int, fileSize: Int)
        /// Two tensors whose bytes overlap.
        case overlap(tensor: String, other: String, offset: Int)
        /// A tensor of a type EasyQuant cannot dequantize.
        case unsupportedType(tensor: String, type: GGMLType)
        /// A tensor whose block scale (or, for float tensors, value) is infinite or NaN.
        case nonFinite(tensor: String, block: Int, offset: Int)
        /// No tensor of that name in the file (or a tensor info from another file).
        case noSuchTensor(String)
        /// Rows asked of `dequantizeRows` outside the tensor.
        case rowsOutOfRange(tensor: String, rows: Range<Int>, rowCount: Int)
    }

    public var path: String
    public var problem: Problem

    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    public var description: String { MessageText.oneLine(text) }

    /// The message before the one-line guarantee.
    private var text: String {
        // Keys, names and fields come from the file: escaped and cut, so the message stays one line.
        func c(_ text: String) -> String { MessageText.clean(text) }
        let path = MessageText.path(self.path)
        let damaged = "the file is damaged or not a GGUF file (truncated download?); download or convert it again"
        switch problem {
        case .notGGUF:
            return "\(path): not a GGUF file (the first 4 bytes are not \"GGUF\"); give a .gguf model file"
        case .bigEndian(let v):
            return "\(path): a big-endian GGUF file (version \(v.byteSwapped) byte-swapped); EasyQuant reads little-endian GGUF only, so use the little-endian build of the model"
        case .unsupportedVersion(let v):
            if v == 1 {
                return "\(path): GGUF version 1 is obsolete and not supported (EasyQuant reads versions 2 and 3); convert the model again with a current llama.cpp"
            }
            return "\(path): GGUF version \(v) is not supported (EasyQuant reads versions 2 and 3); it may be newer than this EasyQuant, so upgrade"
        case let .truncated(field, offset, needed, size):
            return "\(path): \(c(field)) at byte \(offset) needs \(needed) bytes but the \(size)-byte file ends first; \(damaged)"
        case let .countTooLarge(field, offset, count, limit):
            return "\(path): \(c(field)) at byte \(offset) is \(count), more than the rest of the file can hold (at most \(limit)); \(damaged)"
        case let .unknownValueType(key, offset, raw):
            return "\(path): key \(c(key)): unknown value type \(raw) at byte \(offset) (GGUF defines 0-12); \(damaged)"
        case let .nestingTooDeep(key, offset):
            return "\(path): key \(c(key)): arrays nested more than \(GGUFFile.maxNesting) deep at byte \(offset); \(damaged)"
        case let .invalidUTF8(field, offset):
            return "\(path): \(c(field)) at byte \(offset) is not valid UTF-8; \(damaged)"
        case let .badBool(key, offset, byte):
            return "\(path): key \(c(key)): bool at byte \(offset) is \(byte), not 0 or 1; \(damaged)"
        case let .duplicateKey(key, offset):
            return "\(path): key \(c(key)) appears twice (again at byte \(offset)); \(damaged)"
        case .badAlignment(let reason):
            return "\(path): general.alignment \(reason); \(damaged)"
        case let .badTensor(tensor, offset, reason):
            return "\(path): tensor \(c(tensor)) (info at byte \(offset)): \(reason); \(damaged)"
        case let .unknownTensorType(tensor, offset, raw):
            return "\(path): tensor \(c(tensor)) (info at byte \(offset)): unknown ggml type \(raw); the file is damaged or newer than this EasyQuant, so upgrade or convert the model again"
        case let .duplicateTensor(tensor, offset):
            return "\(path): tensor \(c(tensor)) appears twice (again at byte \(offset)); \(damaged)"
        case let .misaligned(tensor, offset, alignment):
            return "\(path): tensor \(c(tensor)): data offset \(offset) is not a multiple of the alignment \(alignment); \(damaged)"
        case let .pastEnd(tensor, start, count, size):
            return "\(path): tensor \(c(tensor)): \(count) bytes from byte \(start) run past the end of the \(size)-byte file (truncated?); \(damaged)"
        case let .overlap(tensor, other, offset):
            return "\(path): tensor \(c(tensor)): data at byte \(offset) overlaps tensor \(c(other)); \(damaged)"
        case let .unsupportedType(tensor, type):
            let known = GGMLType.dequantizable.map(\.name).joined(separator: ", ")
            return "\(path): tensor \(c(tensor)): type \(type.name) cannot be dequantized by EasyQuant (it reads \(known)); requantize the model to one of those with llama.cpp, or use its safetensors original"
        case let .nonFinite(tensor, block, offset):
            return "\(path): tensor \(c(tensor)): block \(block) at byte \(offset) has an infinite or NaN scale (or value), which would make NaN weights; \(damaged)"
        case .noSuchTensor(let name):
            return "\(path): no tensor named \(c(name)); list the tensors with eqinspect \(path)"
        case let .rowsOutOfRange(tensor, rows, count):
            return "\(path): tensor \(c(tensor)): rows \(rows.lowerBound)..<\(rows.upperBound) asked of a tensor with \(count) rows; ask for rows inside 0..<\(count)"
        }
    }
}
