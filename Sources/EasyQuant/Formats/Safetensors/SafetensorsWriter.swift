/// Writes a safetensors file one tensor at a time.
///
/// Sizes are known from shapes, so the header (padded with spaces to a multiple of 8 bytes,
/// which keeps every tensor 8-byte aligned when tensors are 8-byte multiples) is written
/// first and tensors follow in the declared order. The file appears under its name only
/// when `finish()` succeeds.
public final class SafetensorsWriter {
    public struct Entry: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public init(name: String, dtype: DType, shape: [Int]) {
            self.name = name; self.dtype = dtype; self.shape = shape
        }
        var byteCount: Int { (elementCount(shape) ?? 0) * dtype.byteSize }
    }

    private let output: OutputFile
    private let entries: [Entry]
    private var nextIndex = 0

    /// Starts a file holding `entries`, in this order, and `metadata` as `__metadata__`.
    public init(path: String, entries: [Entry], metadata: [(String, String)] = []) throws {
        precondition(Set(entries.map(\.name)).count == entries.count, "tensor names must be unique")
        self.entries = entries
        output = try OutputFile(path: path)
        var members: [(String, JSONValue)] = []
        if !metadata.isEmpty {
            members.append(("__metadata__", .makeObject(metadata.map { ($0.0, .string($0.1)) })))
        }
        var offset = 0
        for e in entries {
            members.append((e.name, .makeObject([
                ("dtype", .string(e.dtype.rawValue)),
                ("shape", JSONValue(e.shape)),
                ("data_offsets", JSONValue([offset, offset + e.byteCount])),
            ])))
            offset += e.byteCount
        }
        var header = Array(JSONValue.makeObject(members).serialized().utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try output.write($0) }
        try output.write(header)
    }

    /// Appends the bytes of the next tensor; they must be exactly its size.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(nextIndex < entries.count, "more tensors written than declared")
        let e = entries[nextIndex]
        precondition(bytes.count == e.byteCount, "tensor \(e.name): \(bytes.count) bytes written, \(e.byteCount) declared")
        try output.write(bytes)
        nextIndex += 1
    }

    /// Appends the next tensor from floats, converting to its declared dtype (F32, F16 or BF16).
    public func write(floats: [Float]) throws {
        let e = entries[nextIndex]
        var bytes = [UInt8](repeating: 0, count: e.byteCount)
        floats.withUnsafeBufferPointer { src in
            bytes.withUnsafeMutableBytes { FloatConversion.fromFloat(src, to: e.dtype, into: $0.baseAddress!) }
        }
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Checks every declared tensor was written and moves the file into place.
    public func finish() throws {
        precondition(nextIndex == entries.count, "\(entries.count - nextIndex) declared tensors were not written")
        try output.commit()
    }
}
