/// Reads GGUF's little-endian fields front to back from a mapped file, checking every
/// length against the bytes that remain before it reads or allocates anything.
///
/// The library is built with -Ounchecked, which removes Swift's own bounds checks: every
/// read here is preceded by an explicit `need`, and every count is bounded by
/// `remaining / (smallest size of one element)` before an array is reserved.
struct GGUFCursor {
    let bytes: UnsafeRawBufferPointer
    let path: String
    /// The next byte to read.
    private(set) var offset: Int

    init(bytes: UnsafeRawBufferPointer, path: String, offset: Int = 0) {
        self.bytes = bytes
        self.path = path
        self.offset = offset
    }

    /// Bytes left after `offset`.
    var remaining: Int { bytes.count - offset }

    func fail(_ problem: GGUFError.Problem) -> GGUFError { GGUFError(path: path, problem: problem) }

    /// Throws unless `count` more bytes are there.
    @inline(__always) func need(_ count: Int, _ field: @autoclosure () -> String) throws {
        guard count <= remaining else {
            throw fail(.truncated(field: field(), offset: offset, needed: UInt64(count), fileSize: bytes.count))
        }
    }

    mutating func skip(to newOffset: Int) { offset = newOffset }

    @inline(__always) mutating func u8(_ field: @autoclosure () -> String) throws -> UInt8 {
        try need(1, field())
        defer { offset += 1 }
        return bytes.load(fromByteOffset: offset, as: UInt8.self)
    }

    @inline(__always) mutating func u16(_ field: @autoclosure () -> String) throws -> UInt16 {
        try need(2, field())
        defer { offset += 2 }
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) mutating func u32(_ field: @autoclosure () -> String) throws -> UInt32 {
        try need(4, field())
        defer { offset += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always) mutating func u64(_ field: @autoclosure () -> String) throws -> UInt64 {
        try need(8, field())
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// A u64 count of things that each take at least `minimumSize` bytes, bounded by the
    /// bytes that remain (so a crafted 2^60 fails here, before any allocation).
    mutating func count(_ field: @autoclosure () -> String, minimumSize: Int) throws -> Int {
        let start = offset
        let raw = try u64(field())
        let limit = remaining / max(1, minimumSize)
        guard raw <= UInt64(limit) else {
            throw fail(.countTooLarge(field: field(), offset: start, count: raw, limit: limit))
        }
        return Int(raw)
    }

    /// A GGUF string: u64 byte length, then that many bytes of UTF-8 (no terminator).
    mutating func string(_ field: @autoclosure () -> String) throws -> String {
        let start = offset
        let raw = try u64(field())
        guard raw <= UInt64(remaining) else {
            throw fail(.truncated(field: field(), offset: offset, needed: raw, fileSize: bytes.count))
        }
        let length = Int(raw)
        let text = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
        guard let s = String(validating: text, as: UTF8.self) else {
            throw fail(.invalidUTF8(field: field(), offset: start))
        }
        offset += length
        return s
    }

    /// A value type tag.
    mutating func valueType(key: String) throws -> GGUFValueType {
        let start = offset
        let raw = try u32("the value type of key \(key)")
        guard let type = GGUFValueType(rawValue: raw) else {
            throw fail(.unknownValueType(key: key, offset: start, raw: raw))
        }
        return type
    }

    /// A value of `type` belonging to `key`; `depth` counts the arrays around it.
    mutating func value(_ type: GGUFValueType, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try u8("the value of key \(key)"))
        case .int8: return .int8(Int8(bitPattern: try u8("the value of key \(key)")))
        case .uint16: return .uint16(try u16("the value of key \(key)"))
        case .int16: return .int16(Int16(bitPattern: try u16("the value of key \(key)")))
        case .uint32: return .uint32(try u32("the value of key \(key)"))
        case .int32: return .int32(Int32(bitPattern: try u32("the value of key \(key)")))
        case .uint64: return .uint64(try u64("the value of key \(key)"))
        case .int64: return .int64(Int64(bitPattern: try u64("the value of key \(key)")))
        case .float32: return .float32(Float(bitPattern: try u32("the value of key \(key)")))
        case .float64: return .float64(Double(bitPattern: try u64("the value of key \(key)")))
        case .bool:
            let start = offset
            let b = try u8("the value of key \(key)")
            guard b <= 1 else { throw fail(.badBool(key: key, offset: start, byte: b)) }
            return .bool(b == 1)
        case .string:
            return .string(try string("the string value of key \(key)"))
        case .array:
            guard depth < GGUFFile.maxNesting else { throw fail(.nestingTooDeep(key: key, offset: offset)) }
            let elementType = try valueType(key: key)
            let n = try count("the array length of key \(key)", minimumSize: elementType.minimumEncodedSize)
            var elements: [GGUFValue] = []
            elements.reserveCapacity(n)
            switch elementType {
            case .string:
                // The common large case (vocabularies, merges): no per-element closure context.
                for _ in 0..<n { elements.append(.string(try string("a string in the array of key \(key)"))) }
            default:
                for _ in 0..<n { elements.append(try value(elementType, key: key, depth: depth + 1)) }
            }
            return .array(elementType, elements)
        }
    }
}
