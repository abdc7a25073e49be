/// A GGUF file that cannot be written as asked; `description` is one line naming the file,
/// the key or tensor, and what to do. (Failures of the disk itself are `FileError`s.)
public struct GGUFWriteError: Error, CustomStringConvertible, Equatable {
    public enum Problem: Equatable {
        /// An alignment that is not a power of two from 8 to `GGUFFile.maxAlignment`.
        case badAlignment(Int)
        /// `general.alignment` given in the metadata with another type or value than the
        /// writer's alignment (which the writer records itself).
        case alignmentKey(GGUFValue, alignment: Int)
        /// Metadata entry `index` has an empty key.
        case emptyKey(index: Int)
        /// A key longer than `GGUFWriter.maxKeyBytes`.
        case keyTooLong(key: String, bytes: Int)
        /// A key given twice.
        case duplicateKey(String)
        /// Element `index` of the array under `key` has type `found`, not the array's `declared` type.
        case mixedArray(key: String, index: Int, declared: GGUFValueType, found: GGUFValueType)
        /// An array of arrays under `key` (llama.cpp refuses them).
        case nestedArray(key: String)
        /// A tensor name that is empty or longer than `GGUFWriter.maxTensorNameBytes`.
        case badTensorName(String, reason: String)
        /// A tensor name declared twice.
        case duplicateTensor(String)
        /// A tensor shape the type cannot hold (see `GGUFShapeCheck`).
        case badShape(tensor: String, shape: [Int], type: GGMLType, reason: String)
        /// Tensors whose data, padded, would end past what a file offset can count.
        case tooLarge(tensor: String)
        /// Data appended for `got` when `expected` is next (tensors go in declared order).
        case outOfOrder(expected: String, got: String)
        /// Data appended for `got` after every declared tensor was written.
        case noTensorLeft(got: String)
        /// Data for `tensor` of the wrong size.
        case wrongByteCount(tensor: String, type: GGMLType, shape: [Int], expected: Int, got: Int)
        /// An encoded tensor whose type or shape differs from its declaration.
        case wrongDeclaration(tensor: String, declared: String, got: String)
        /// `finish()` before every declared tensor was written.
        case missingTensors(next: String, remaining: Int)
        /// The writer was already finished.
        case finished
        /// An earlier write failed, so the file is incomplete.
        case failedEarlier
        /// The bytes written do not add up to the size the layout promised (a bug, or a
        /// sink written to by someone else).
        case sizeMismatch(expected: Int, written: UInt64)
    }

    public var path: String
    public var problem: Problem

    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    public var description: String {
        switch problem {
        case .badAlignment(let a):
            return "\(path): alignment \(a) is not a power of two from 8 to \(GGUFFile.maxAlignment); use the default 32"
        case let .alignmentKey(value, alignment):
            return "\(path): metadata general.alignment is \(value.summary) but the writer aligns to \(alignment) and records that itself; drop the key or pass alignment: to the writer"
        case .emptyKey(let i):
            return "\(path): metadata entry \(i) has an empty key (llama.cpp refuses them); give every entry a name"
        case let .keyTooLong(key, bytes):
            return "\(path): metadata key \(GGUFValue.quoted(key)) is \(bytes) bytes long, more than GGUF's \(GGUFWriter.maxKeyBytes); shorten it"
        case .duplicateKey(let key):
            return "\(path): metadata key \(key) is given twice; keep one"
        case let .mixedArray(key, index, declared, found):
            return "\(path): metadata key \(key): element \(index) is \(found.name) in an array of \(declared.name); GGUF arrays hold one type, so convert the element or change the array's type"
        case .nestedArray(let key):
            return "\(path): metadata key \(key) holds an array of arrays, which llama.cpp refuses to load; flatten it"
        case let .badTensorName(name, reason):
            return "\(path): tensor name \(GGUFValue.quoted(name)) \(reason); rename the tensor"
        case .duplicateTensor(let name):
            return "\(path): tensor \(name) is declared twice; declare each tensor once"
        case let .badShape(tensor, shape, type, reason):
            return "\(path): tensor \(tensor): shape \(shape) cannot be written as \(type.name): \(reason); choose a type whose block size divides the row length, or reshape"
        case .tooLarge(let tensor):
            return "\(path): tensor \(tensor) would end past the largest offset a file can have; write fewer or smaller tensors per file"
        case let .outOfOrder(expected, got):
            return "\(path): data for tensor \(got) given while tensor \(expected) is next; append tensors in the order they were declared"
        case .noTensorLeft(let got):
            return "\(path): data for tensor \(got) given after every declared tensor was written; declare it when creating the writer"
        case let .wrongByteCount(tensor, type, shape, expected, got):
            return "\(path): tensor \(tensor): \(got) bytes given, but \(type.name) of shape \(shape) takes \(expected); encode it as declared"
        case let .wrongDeclaration(tensor, declared, got):
            return "\(path): tensor \(tensor) was declared as \(declared) but encoded as \(got); declare it with its plan's declaration"
        case let .missingTensors(next, remaining):
            return "\(path): finished with \(remaining) declared tensor(s) unwritten, starting with \(next); append them first (nothing was written to the destination)"
        case .finished:
            return "\(path): the writer has already finished the file; start a new writer for another file"
        case .failedEarlier:
            return "\(path): an earlier write failed, so this file cannot be completed; fix the cause and write it again"
        case let .sizeMismatch(expected, written):
            return "\(path): \(written) bytes were written where the layout promised \(expected); the file was not kept (report this as a bug)"
        }
    }
}
