import Foundation

/// A GGUF file (llama.cpp's model format, versions 2 and 3), memory-mapped and validated.
///
/// Layout (all little-endian): the magic `GGUF`, a u32 version, a u64 tensor count, a u64
/// metadata count; the metadata key/value pairs; the tensor infos (name, dimension count,
/// dimensions, ggml type, data offset); padding to `general.alignment` (default 32); the
/// tensor data, each tensor at its offset from the data section's start.
///
/// Nothing is trusted until checked (docs/GGUF.md lists every check): every count and length
/// against the bytes that remain, nesting depth, UTF-8, duplicate keys and names, the
/// alignment, every tensor's dimensions, type and byte size in checked arithmetic, and every
/// tensor's bytes inside the file, aligned, and disjoint from the others. Tensor bytes are then
/// served straight from the map; `floats(of:threads:)` and `dequantizeRows` decode them.
public final class GGUFFile: @unchecked Sendable {
    /// Deepest array nesting accepted (an array of arrays is depth 2).
    public static let maxNesting = 8
    /// Largest `general.alignment` accepted.
    public static let maxAlignment = 1 << 20
    /// Alignment when the file does not set `general.alignment`.
    public static let defaultAlignment = 32
    /// Most dimensions a tensor may have (ggml's GGML_MAX_DIMS).
    public static let maxDimensions = 4
    /// Longest tensor name in bytes (the GGUF specification's limit).
    public static let maxTensorNameBytes = 64
    /// The four bytes every GGUF file starts with.
    public static let magic: [UInt8] = Array("GGUF".utf8)

    public let path: String
    public let file: MappedFile
    /// Format version: 2 or 3.
    public let version: UInt32
    /// Alignment of the data section and of every tensor's offset in it.
    public let alignment: Int
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    /// Tensors in file order (the order of the tensor infos).
    public let tensors: [GGUFTensorInfo]
    /// Absolute byte offset of the data section (the end of the tensor infos, aligned).
    public let dataStart: Int
    private let keyIndex: [String: Int]
    private let tensorIndex: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        let bytes = file.bytes
        var c = GGUFCursor(bytes: bytes, path: file.path)
        func fail(_ p: GGUFError.Problem) -> GGUFError { GGUFError(path: file.path, problem: p) }

        // Header.
        let prefix = Array(bytes.prefix(4))
        guard prefix == Self.magic else {
            // A short file that starts like the magic is a truncated GGUF file, not another format.
            if prefix.count < 4 && prefix == Array(Self.magic.prefix(prefix.count)) {
                throw fail(.truncated(field: "the magic", offset: 0, needed: 4, fileSize: bytes.count))
            }
            throw fail(.notGGUF)
        }
        c.skip(to: 4)
        let version = try c.u32("the version")
        guard version == 2 || version == 3 else {
            if (1...3).contains(version.byteSwapped) { throw fail(.bigEndian(version: version)) }
            throw fail(.unsupportedVersion(version))
        }
        self.version = version
        // Loose lower bounds on what each entry takes: a tensor info at least an 8-byte name
        // length, a dimension count, a type and an offset; a key/value pair a key length, a
        // type and a one-byte value.
        let tensorCount = try c.count("the tensor count", minimumSize: 24)
        let kvCount = try c.count("the metadata count", minimumSize: 13)

        // Metadata.
        var metadata: [(key: String, value: GGUFValue)] = []
        var keyIndex: [String: Int] = [:]
        metadata.reserveCapacity(kvCount)
        for i in 0..<kvCount {
            let keyOffset = c.offset
            let key = try c.string("metadata key \(i)")
            let type = try c.valueType(key: key)
            let value = try c.value(type, key: key)
            guard keyIndex.updateValue(metadata.count, forKey: key) == nil else {
                throw fail(.duplicateKey(key: key, offset: keyOffset))
            }
            metadata.append((key, value))
        }
        self.metadata = metadata
        self.keyIndex = keyIndex

        var alignment = Self.defaultAlignment
        if let i = keyIndex["general.alignment"] {
            let v = metadata[i].value
            guard let a = v.intValue, a >= 1, a <= Self.maxAlignment, a & (a - 1) == 0 else {
                throw fail(.badAlignment("is \(v.summary); it must be an integer power of two from 1 to \(Self.maxAlignment)"))
            }
            alignment = a
        }
        self.alignment = alignment

        // Tensor infos.
        var pending: [(info: GGUFTensorInfo, storedOffset: UInt64, infoOffset: Int)] = []
        var tensorIndex: [String: Int] = [:]
        pending.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            let infoOffset = c.offset
            let name = try c.string("the name of tensor \(i)")
            func bad(_ reason: String) -> GGUFError { fail(.badTensor(tensor: name, offset: infoOffset, reason: reason)) }
            guard name.utf8.count <= Self.maxTensorNameBytes else {
                throw bad("its name is \(name.utf8.count) bytes long, more than GGUF's limit of \(Self.maxTensorNameBytes)")
            }
            guard tensorIndex.updateValue(pending.count, forKey: name) == nil else {
                throw fail(.duplicateTensor(tensor: name, offset: infoOffset))
            }
            let dimCount = try c.u32("the dimension count of tensor \(name)")
            guard dimCount >= 1 && dimCount <= UInt32(Self.maxDimensions) else {
                throw bad("\(dimCount) dimensions; ggml tensors have 1 to \(Self.maxDimensions)")
            }
            var dims: [Int] = []
            var elements = 1
            for d in 0..<Int(dimCount) {
                let raw = try c.u64("dimension \(d) of tensor \(name)")
                guard raw >= 1 && raw <= UInt64(Int.max) else { throw bad("dimension \(d) is \(raw); dimensions must be at least 1") }
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(raw))
                guard !overflow else { throw bad("its dimensions \(dims + [Int(raw)]) multiply to more elements than can be counted") }
                dims.append(Int(raw))
                elements = product
            }
            let typeOffset = c.offset
            let rawType = try c.u32("the type of tensor \(name)")
            guard let type = GGMLType(rawValue: rawType) else {
                throw fail(.unknownTensorType(tensor: name, offset: typeOffset, raw: rawType))
            }
            guard dims[0] % type.blockSize == 0 else {
                throw bad("row length \(dims[0]) is not a multiple of \(type.name)'s block size \(type.blockSize)")
            }
            let (byteCount, overflow) = (elements / type.blockSize).multipliedReportingOverflow(by: type.bytesPerBlock)
            guard !overflow else { throw bad("\(elements) elements of \(type.name) take more bytes than can be counted") }
            let stored = try c.u64("the data offset of tensor \(name)")
            // The absolute offset is known once the data section's start is; 0 until then.
            let info = GGUFTensorInfo(name: name, shape: dims.reversed(), type: type, offset: 0,
                                      byteCount: byteCount, elementCount: elements)
            pending.append((info, stored, infoOffset))
        }
        self.tensorIndex = tensorIndex

        // Data section: after the infos, aligned.
        let (padded, overflow) = c.offset.addingReportingOverflow(alignment - 1)
        guard !overflow else { throw fail(.badAlignment("\(alignment) puts the data section past the end of the address space")) }
        dataStart = padded / alignment * alignment

        var placed: [GGUFTensorInfo] = []
        placed.reserveCapacity(pending.count)
        for (info, stored, _) in pending {
            guard stored % UInt64(alignment) == 0 else {
                throw fail(.misaligned(tensor: info.name, offset: stored, alignment: alignment))
            }
            let (absolute, wrapped) = stored.addingReportingOverflow(UInt64(dataStart))
            guard !wrapped, absolute <= UInt64(bytes.count), info.byteCount <= bytes.count - Int(absolute) else {
                throw fail(.pastEnd(tensor: info.name, start: wrapped ? UInt64.max : absolute, byteCount: info.byteCount, fileSize: bytes.count))
            }
            placed.append(GGUFTensorInfo(name: info.name, shape: info.shape, type: info.type, offset: Int(absolute),
                                         byteCount: info.byteCount, elementCount: info.elementCount))
        }

        // No two tensors share a byte: sorted by start, each must begin at or after the previous end.
        let byStart = placed.indices.sorted { (placed[$0].offset, $0) < (placed[$1].offset, $1) }
        for (a, b) in zip(byStart, byStart.dropFirst()) where placed[b].offset < placed[a].offset + placed[a].byteCount {
            throw fail(.overlap(tensor: placed[b].name, other: placed[a].name, offset: placed[b].offset))
        }
        tensors = placed
    }

    /// The value of metadata `key`, if present.
    public func value(_ key: String) -> GGUFValue? { keyIndex[key].map { metadata[$0].value } }

    /// The tensor named `name`, if present.
    public func tensor(_ name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// This file's own record of `tensor`, or an error if it came from another file.
    func owned(_ tensor: GGUFTensorInfo) throws -> GGUFTensorInfo {
        guard let i = tensorIndex[tensor.name], tensors[i] == tensor else {
            throw GGUFError(path: path, problem: .noSuchTensor(tensor.name))
        }
        return tensors[i]
    }

    /// The tensor's raw bytes, straight from the map (empty if `tensor` is not one of this file's).
    public func bytes(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        guard let t = try? owned(tensor) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: file.bytes[t.fileRange])
    }

    /// Whether the file at `path` starts with the GGUF magic (big-endian files too, so that
    /// the reader refuses them by name).
    public static func isGGUF(path: String) -> Bool {
        ModelFileFormat.sniff(path: path) == .gguf  // never opens a FIFO, which would block
    }
}
