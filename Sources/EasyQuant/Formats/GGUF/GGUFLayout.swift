/// One tensor a GGUF file will hold, declared before any data is written.
public struct GGUFTensorDeclaration: Sendable, Equatable {
    public var name: String
    /// Dimensions in PyTorch order, outermost first, as `GGUFTensorInfo.shape` reads them
    /// back. The file stores them reversed (GGUF's dims, ggml's `ne[0]` — the contiguous row
    /// length — first): a [768, 3072] matrix is written with dims [3072, 768].
    public var shape: [Int]
    public var type: GGMLType

    public init(name: String, shape: [Int], type: GGMLType) {
        self.name = name
        self.shape = shape
        self.type = type
    }
}

/// Everything about a GGUF file that is fixed before its data: the header bytes (magic,
/// version, counts, metadata, tensor infos) and where each tensor goes.
///
/// Built from the caller's metadata and declarations, all checked, with every size and
/// offset in checked arithmetic: the mirror of what `GGUFFile.init` checks on reading, plus
/// llama.cpp's own limits (no nested arrays, no empty keys, names under 64 bytes).
struct GGUFLayout {
    /// Magic through the last tensor info, unpadded.
    let header: [UInt8]
    let dataStart: Int
    /// Tensors with absolute offsets, in declared (and file) order.
    let tensors: [GGUFTensorInfo]
    let fileSize: Int

    init(path: String, metadata: [(key: String, value: GGUFValue)], tensors declared: [GGUFTensorDeclaration],
         alignment: Int) throws {
        func fail(_ p: GGUFWriteError.Problem) -> GGUFWriteError { GGUFWriteError(path: path, problem: p) }
        guard alignment >= 8, alignment <= GGUFFile.maxAlignment, alignment & (alignment - 1) == 0 else {
            throw fail(.badAlignment(alignment))
        }

        // Metadata: the caller's keys, then general.alignment unless they gave it (as u32, equal).
        var entries = metadata
        if let given = metadata.first(where: { $0.key == "general.alignment" })?.value {
            guard given == .uint32(UInt32(alignment)) else { throw fail(.alignmentKey(given, alignment: alignment)) }
        } else {
            entries.append((key: "general.alignment", value: .uint32(UInt32(alignment))))
        }
        var out = GGUFByteWriter()
        out.bytes += GGUFFile.magic
        out.u32(GGUFWriter.version)
        out.u64(UInt64(declared.count))
        out.u64(UInt64(entries.count))
        var keys = Set<String>()
        for (i, entry) in entries.enumerated() {
            let keyBytes = entry.key.utf8.count
            guard keyBytes > 0 else { throw fail(.emptyKey(index: i)) }
            guard keyBytes <= GGUFWriter.maxKeyBytes else { throw fail(.keyTooLong(key: entry.key, bytes: keyBytes)) }
            guard keys.insert(entry.key).inserted else { throw fail(.duplicateKey(entry.key)) }
            out.string(entry.key)
            out.u32(entry.value.type.rawValue)
            if let problem = out.value(entry.value, key: entry.key) { throw fail(problem) }
        }

        // Tensor infos, with offsets relative to the data section: each tensor starts where
        // the previous one ends, rounded up to the alignment (as llama.cpp requires).
        var names = Set<String>()
        var relative: [(offset: Int, bytes: Int, elements: Int)] = []
        var next = 0
        for t in declared {
            let nameBytes = t.name.utf8.count
            guard nameBytes > 0 else { throw fail(.badTensorName(t.name, reason: "is empty")) }
            guard nameBytes <= GGUFWriter.maxTensorNameBytes else {
                throw fail(.badTensorName(t.name, reason: "is \(nameBytes) bytes long; llama.cpp takes at most \(GGUFWriter.maxTensorNameBytes)"))
            }
            guard names.insert(t.name).inserted else { throw fail(.duplicateTensor(t.name)) }
            let sizes: (elements: Int, bytes: Int)
            switch GGUFShapeCheck.sizes(t.shape, t.type) {
            case .success(let s): sizes = s
            case .failure(let failure): throw fail(.badShape(tensor: t.name, shape: t.shape, type: t.type, reason: failure.reason))
            }
            let (end, o1) = next.addingReportingOverflow(sizes.bytes)
            let (padded, o2) = end.addingReportingOverflow(alignment - 1)
            guard !o1, !o2 else { throw fail(.tooLarge(tensor: t.name)) }
            out.string(t.name)
            out.u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { out.u64(UInt64(d)) }
            out.u32(t.type.rawValue)
            out.u64(UInt64(next))
            relative.append((next, sizes.bytes, sizes.elements))
            next = padded & ~(alignment - 1)
        }
        header = out.bytes

        let (start, o3) = header.count.addingReportingOverflow(alignment - 1)
        guard !o3 else { throw fail(.tooLarge(tensor: declared.first?.name ?? "(none)")) }
        let data = start & ~(alignment - 1)
        dataStart = data
        let (size, o4) = data.addingReportingOverflow(next)
        guard !o4 else { throw fail(.tooLarge(tensor: declared.last?.name ?? "(none)")) }
        fileSize = size
        tensors = zip(declared, relative).map { t, r in
            GGUFTensorInfo(name: t.name, shape: t.shape, type: t.type, offset: data + r.offset,
                           byteCount: r.bytes, elementCount: r.elements)
        }
    }
}

/// Appends GGUF's little-endian fields to a byte array.
struct GGUFByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }

    /// A GGUF string: u64 byte length, then the UTF-8 bytes (no terminator).
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes += s.utf8
    }

    /// The value's payload (its type tag is the caller's), or the problem that stops it
    /// being written: an array element of another type, or an array of arrays.
    mutating func value(_ v: GGUFValue, key: String) -> GGUFWriteError.Problem? {
        switch v {
        case .uint8(let x): u8(x)
        case .int8(let x): u8(UInt8(bitPattern: x))
        case .uint16(let x): u16(x)
        case .int16(let x): u16(UInt16(bitPattern: x))
        case .uint32(let x): u32(x)
        case .int32(let x): u32(UInt32(bitPattern: x))
        case .uint64(let x): u64(x)
        case .int64(let x): u64(UInt64(bitPattern: x))
        case .float32(let x): u32(x.bitPattern)
        case .float64(let x): u64(x.bitPattern)
        case .bool(let b): u8(b ? 1 : 0)
        case .string(let s): string(s)
        case .array(let elementType, let elements):
            guard elementType != .array else { return .nestedArray(key: key) }
            u32(elementType.rawValue)
            u64(UInt64(elements.count))
            for (i, e) in elements.enumerated() {
                guard e.type == elementType else {
                    return .mixedArray(key: key, index: i, declared: elementType, found: e.type)
                }
                _ = value(e, key: key)  // a scalar or string: cannot fail
            }
        }
        return nil
    }
}
