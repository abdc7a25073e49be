/// A blob compressed and ready to be placed in a file.
public struct CompressedBlob: Sendable {
    public var frame: [UInt8]
    /// Decoded size in bytes.
    public var size: Int

    /// Compresses `bytes` into one zstd frame with a checksum (safe to call from any thread).
    public init(compressing bytes: UnsafeRawBufferPointer, level: Int) throws {
        frame = try Zstd.compress(bytes, level: level)
        size = bytes.count
    }

    public init<T>(compressing array: [T], level: Int) throws {
        self = try array.withUnsafeBytes { try CompressedBlob(compressing: $0, level: level) }
    }
}

/// A tensor encoded and compressed, waiting for its place in the file.
///
/// Encoding is the expensive part and runs in parallel; placing is a cheap append that
/// the writer does in order, so the file's layout does not depend on thread timing.
public struct PendingTensor: Sendable {
    public var name: String
    public var shape: [Int]
    public var sourceDType: DType
    public var encoding: EQMEncoding
    public var data: CompressedBlob
    public var scales: CompressedBlob?
    public var zeroPoints: CompressedBlob?

    /// A tensor kept in float: stored as F32 (docs/FORMAT.md §5.1).
    public init(name: String, floats: [Float], shape: [Int], sourceDType: DType, level: Int) throws {
        self.name = name; self.shape = shape; self.sourceDType = sourceDType
        encoding = .float(.f32)
        data = try CompressedBlob(compressing: floats, level: level)
    }

    /// A quantized tensor: codes, scales and (if asymmetric) zero points as three blobs.
    public init(name: String, quantized q: QuantizedTensor, sourceDType: DType, level: Int) throws {
        self.name = name; shape = q.shape; self.sourceDType = sourceDType
        encoding = .quantized(EQMQuantization(method: q.method, bits: q.bits, isSigned: q.isSigned,
                                              isSymmetric: q.isSymmetric, layout: q.layout))
        data = try CompressedBlob(compressing: q.codes, level: level)
        scales = try CompressedBlob(compressing: q.scales, level: level)
        zeroPoints = try q.zeroPoints.map { try CompressedBlob(compressing: $0, level: level) }
    }

    /// Bytes this tensor will take in the file, before alignment padding.
    public var storedBytes: Int { data.frame.count + (scales?.frame.count ?? 0) + (zeroPoints?.frame.count ?? 0) }
}

/// Writes an `.eqm` file: the preamble, then blobs as they come, then the JSON header,
/// then the preamble again with the header's place (docs/FORMAT.md §1).
///
/// The file is written under a temporary name and appears only when `finish` succeeds.
public final class EQMWriter {
    public let alignment: Int
    private let output: any ByteSink
    private var records: [EQMTensorRecord] = []

    public convenience init(path: String, alignment: Int = EQMFormat.defaultAlignment) throws {
        try self.init(sink: OutputFile(path: path), alignment: alignment)
    }

    /// Writes into any sink (a `MemorySink` keeps the whole file in memory).
    public init(sink: any ByteSink, alignment: Int = EQMFormat.defaultAlignment) throws {
        precondition(alignment >= 8 && alignment & (alignment - 1) == 0, "alignment must be a power of two >= 8")
        self.alignment = alignment
        output = sink
        try output.write([UInt8](repeating: 0, count: EQMFormat.preambleSize))
    }

    /// Appends a blob at the next aligned offset and returns where it went.
    public func append(_ blob: CompressedBlob) throws -> EQMBlob {
        try output.pad(to: alignment)
        let offset = Int(output.position)
        try output.write(blob.frame)
        return EQMBlob(offset: offset, length: blob.frame.count, size: blob.size)
    }

    /// Appends a tensor's blobs and records it for the header.
    @discardableResult
    public func append(_ tensor: PendingTensor) throws -> EQMTensorRecord {
        let data = try append(tensor.data)
        let scales = try tensor.scales.map { try append($0) }
        let zeroPoints = try tensor.zeroPoints.map { try append($0) }
        let record = EQMTensorRecord(name: tensor.name, shape: tensor.shape, sourceDType: tensor.sourceDType,
                                     encoding: tensor.encoding, data: data, scales: scales, zeroPoints: zeroPoints)
        records.append(record)
        return record
    }

    /// Bytes written so far.
    public var position: Int { Int(output.position) }

    /// Writes the header with `metadata` (and the features a reader must implement,
    /// docs/FORMAT.md §2), fills in the preamble and moves the file into place.
    /// Returns the final file size.
    @discardableResult
    public func finish(metadata: JSONValue, requires: [String] = []) throws -> Int {
        var members: [(String, JSONValue)] = [("alignment", JSONValue(alignment))]
        if !requires.isEmpty { members.append(("requires", .array(requires.map { .string($0) }))) }
        members += [("metadata", metadata), ("tensors", .array(records.map(\.json)))]
        let header = JSONValue.makeObject(members)
        let headerBytes = Array(header.serialized().utf8)
        let headerOffset = output.position
        try output.write(headerBytes)

        var preamble = EQMFormat.magic
        appendLE(EQMFormat.majorVersion, to: &preamble)
        appendLE(EQMFormat.minorVersion, to: &preamble)
        appendLE(UInt32(0), to: &preamble)
        appendLE(headerOffset, to: &preamble)
        appendLE(UInt64(headerBytes.count), to: &preamble)
        try preamble.withUnsafeBytes { try output.write($0, at: 0) }
        let size = Int(output.position)
        try output.commit()
        return size
    }
}

func appendLE<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
}
