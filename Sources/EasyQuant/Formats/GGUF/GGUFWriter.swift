/// Writes a GGUF file (version 3, little-endian; layout: docs/GGUF.md), the mirror of
/// `GGUFFile`: metadata of every value type, then tensor infos whose offsets are computed up
/// front from each tensor's type and shape, then the tensor data, each tensor aligned.
///
/// Everything is declared when the writer is made, and checked then (keys, names, shapes,
/// sizes; see `GGUFLayout`), and the header goes out at once. Data is streamed: the caller
/// appends one tensor's bytes at a time, in declared order, so a model never sits in memory
/// twice. A file with no tensors (a vocabulary, say) is just the header.
///
/// Written through an `OutputFile`, nothing appears at the destination until `finish()`; if
/// the writer is dropped unfinished, or a write fails, the temporary file is removed.
///
///     let plans = try tensors.map { try GGUFTensorPlan(quantized: $0.q, name: $0.name) }
///     let writer = try GGUFWriter(path: out, metadata: meta, tensors: plans.map(\.declaration))
///     for t in tensors { try writer.append(try GGUFTensorEncoder.encode(t.q, name: t.name)) }
///     try writer.finish()
public final class GGUFWriter {
    /// The format version written.
    public static let version: UInt32 = 3
    /// Longest tensor name in bytes. The GGUF specification allows 64, but llama.cpp keeps
    /// names in 64-byte C strings with their terminator (GGML_MAX_NAME) and refuses 64.
    public static let maxTensorNameBytes = 63
    /// Longest metadata key in bytes (the GGUF specification's limit, 2^16 − 1).
    public static let maxKeyBytes = 65_535

    /// The destination, for messages.
    public let path: String
    /// Alignment of the data section and of every tensor (`general.alignment`).
    public let alignment: Int
    /// Every declared tensor where it will be written (absolute offsets): what `GGUFFile`
    /// will report for the finished file.
    public let tensors: [GGUFTensorInfo]
    /// Absolute offset of the data section.
    public let dataStart: Int
    /// Size of the finished file.
    public let fileSize: Int
    /// Tensors written so far; the next to append is `tensors[written]`.
    public private(set) var written = 0

    private let sink: any ByteSink
    private enum State { case open, finished, failed }
    private var state = State.open

    /// A writer to `path`, through a temporary file that `finish()` renames into place.
    /// The arguments are checked before the file is created.
    public convenience init(path: String, metadata: [(key: String, value: GGUFValue)],
                            tensors: [GGUFTensorDeclaration], alignment: Int = GGUFFile.defaultAlignment) throws {
        let layout = try GGUFLayout(path: path, metadata: metadata, tensors: tensors, alignment: alignment)
        try self.init(sink: OutputFile(path: path), name: path, layout: layout, alignment: alignment)
    }

    /// A writer into any sink (a `MemorySink` keeps the file in memory); `name` is used in messages.
    public convenience init(sink: any ByteSink, name: String = "<memory>", metadata: [(key: String, value: GGUFValue)],
                            tensors: [GGUFTensorDeclaration], alignment: Int = GGUFFile.defaultAlignment) throws {
        let layout = try GGUFLayout(path: name, metadata: metadata, tensors: tensors, alignment: alignment)
        try self.init(sink: sink, name: name, layout: layout, alignment: alignment)
    }

    private init(sink: any ByteSink, name: String, layout: GGUFLayout, alignment: Int) throws {
        self.sink = sink
        path = name
        self.alignment = alignment
        tensors = layout.tensors
        dataStart = layout.dataStart
        fileSize = layout.fileSize
        do {
            try sink.write(layout.header)
            try sink.pad(to: alignment)
        } catch {
            state = .failed
            throw error
        }
    }

    private func fail(_ p: GGUFWriteError.Problem) -> GGUFWriteError { GGUFWriteError(path: path, problem: p) }

    /// The next declared tensor, checked to be `name` and able to take data.
    private func next(_ name: String) throws -> GGUFTensorInfo {
        switch state {
        case .finished: throw fail(.finished)
        case .failed: throw fail(.failedEarlier)
        case .open: break
        }
        guard written < tensors.count else { throw fail(.noTensorLeft(got: name)) }
        let t = tensors[written]
        guard t.name == name else { throw fail(.outOfOrder(expected: t.name, got: name)) }
        return t
    }

    /// Appends the data of tensor `name`, which must be the next declared one, with exactly
    /// its declared byte count; pads to the alignment after it.
    public func append(_ name: String, _ data: UnsafeRawBufferPointer) throws {
        let t = try next(name)
        guard data.count == t.byteCount else {
            throw fail(.wrongByteCount(tensor: name, type: t.type, shape: t.shape, expected: t.byteCount, got: data.count))
        }
        do {
            try sink.write(data)
            try sink.pad(to: alignment)
        } catch {
            state = .failed
            throw error
        }
        written += 1
    }

    /// `append(_:_:)` for an array.
    public func append(_ name: String, _ data: [UInt8]) throws {
        try data.withUnsafeBytes { try append(name, $0) }
    }

    /// Appends an encoded tensor, after checking that its type and shape are the declared ones.
    public func append(_ tensor: GGUFEncodedTensor) throws {
        let t = try next(tensor.plan.name)
        guard t.type == tensor.plan.type, t.shape == tensor.plan.shape else {
            throw fail(.wrongDeclaration(tensor: t.name, declared: "\(t.type.name) \(t.shape)",
                                         got: "\(tensor.plan.type.name) \(tensor.plan.shape)"))
        }
        try append(t.name, tensor.bytes)
    }

    /// Checks that every declared tensor was written and moves the file into place.
    /// Returns the file's size.
    @discardableResult
    public func finish() throws -> Int {
        switch state {
        case .finished: throw fail(.finished)
        case .failed: throw fail(.failedEarlier)
        case .open: break
        }
        guard written == tensors.count else {
            throw fail(.missingTensors(next: tensors[written].name, remaining: tensors.count - written))
        }
        guard sink.position == UInt64(fileSize) else {
            state = .failed
            throw fail(.sizeMismatch(expected: fileSize, written: sink.position))
        }
        do {
            try sink.commit()
        } catch {
            state = .failed
            throw error
        }
        state = .finished
        return fileSize
    }
}
