/// One tensor as a safetensors header describes it.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range relative to the start of the data area.
    public var dataOffsets: Range<Int>

    public var elementCount: Int { EasyQuant.elementCount(shape) ?? 0 }
    public var byteCount: Int { dataOffsets.count }
}

/// A safetensors file, memory-mapped and validated.
///
/// Layout: 8-byte little-endian header length N, N bytes of JSON, then the data area.
/// Nothing in the header is trusted until it has been checked: the header length against
/// the file size, every dtype, every shape's byte size against its offset span, every span
/// against the data area, and the spans against each other (no overlaps, no holes, no
/// trailing bytes). Tensor bytes are then served straight from the map.
public final class SafetensorsFile: @unchecked Sendable {
    /// Headers larger than this are refused before being read (the reference implementation uses the same cap).
    public static let maxHeaderLength = 100 << 20

    public let path: String
    public let file: MappedFile
    /// Tensors in data order (sorted by their offsets).
    public let tensors: [SafetensorsTensorInfo]
    /// The `__metadata__` map, in file order.
    public let metadata: [(key: String, value: String)]
    /// Absolute byte offset where the data area starts (8 + header length).
    public let dataStart: Int
    private let index: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        self.path = file.path
        let bytes = file.bytes
        func fail(_ problem: SafetensorsError.Problem) -> SafetensorsError { SafetensorsError(path: file.path, problem: problem) }

        // Another format given where safetensors is expected gets named, not parsed.
        if let other = ModelFileFormat.sniff(UnsafeRawBufferPointer(rebasing: bytes.prefix(ModelFileFormat.sniffLength)), fileSize: bytes.count),
           other != .safetensors {
            throw fail(.otherFormat(other))
        }
        guard bytes.count >= 8 else { throw fail(.fileTooSmall(bytes.count)) }
        let declared = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard declared <= UInt64(Self.maxHeaderLength) else { throw fail(.headerTooLarge(declared)) }
        guard declared <= UInt64(bytes.count - 8) else { throw fail(.headerPastEnd(declared, fileSize: bytes.count)) }
        let headerLength = Int(declared)
        dataStart = 8 + headerLength
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart])
        guard headerLength > 0, headerBytes[0] == UInt8(ascii: "{") else { throw fail(.headerNotObject) }

        let json: JSONValue
        do { json = try JSONValue.parse(headerBytes) } catch let e as JSONParseError {
            throw fail(.headerJSON(JSONParseError(offset: e.offset + 8, reason: e.reason)))
        }
        guard let members = json.objectMembers else { throw fail(.headerNotObject) }

        var infos: [SafetensorsTensorInfo] = []
        var meta: [(key: String, value: String)] = []
        for (name, entry) in members {
            if name == "__metadata__" {
                guard let pairs = entry.objectMembers else { throw fail(.metadataNotStrings) }
                for (k, v) in pairs {
                    guard let s = v.stringValue else { throw fail(.metadataNotStrings) }
                    meta.append((k, s))
                }
                continue
            }
            infos.append(try Self.parseEntry(name: name, entry: entry, fail: fail))
        }

        // Spans must tile the data area exactly: sorted by start, each begins where the previous ended.
        infos.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name) }
        let dataSize = bytes.count - dataStart
        var expectedStart = 0
        var previous: String?
        for info in infos {
            let span = info.dataOffsets
            if span.upperBound > dataSize { throw fail(.pastEndOfData(tensor: info.name, end: span.upperBound, dataSize: dataSize)) }
            if span.lowerBound < expectedStart { throw fail(.overlap(tensor: info.name, other: previous ?? "")) }
            if span.lowerBound > expectedStart {
                throw fail(.gap(tensor: info.name, from: expectedStart, to: span.lowerBound))
            }
            expectedStart = span.upperBound
            previous = info.name
        }
        if expectedStart != dataSize { throw fail(.trailingBytes(unused: dataSize - expectedStart, at: dataStart + expectedStart)) }

        tensors = infos
        metadata = meta
        index = Dictionary(uniqueKeysWithValues: infos.enumerated().map { ($1.name, $0) })
    }

    private static func parseEntry(name: String, entry: JSONValue,
                                   fail: (SafetensorsError.Problem) -> SafetensorsError) throws -> SafetensorsTensorInfo {
        guard entry.objectMembers != nil else { throw fail(.badEntry(tensor: name, reason: "entry is not an object")) }
        guard let dtypeName = entry["dtype"]?.stringValue else { throw fail(.badEntry(tensor: name, reason: "missing \"dtype\"")) }
        guard let dtype = DType(rawValue: dtypeName) else { throw fail(.unknownDType(tensor: name, dtype: dtypeName)) }
        guard let dims = entry["shape"]?.arrayValue else { throw fail(.badEntry(tensor: name, reason: "missing \"shape\"")) }
        var shape: [Int] = []
        for d in dims {
            guard case .int(let v) = d, v >= 0 else {
                throw fail(.badEntry(tensor: name, reason: "shape \(MessageText.clean(JSONValue.array(dims).serialized())) has a dimension that is not a non-negative integer"))
            }
            shape.append(Int(v))
        }
        let count: Int
        switch ShapeRule.elementCount(shape) {
        case .success(let n): count = n
        case .failure(let violation): throw fail(.badEntry(tensor: name, reason: violation.description))
        }
        guard let offsets = entry["data_offsets"]?.arrayValue, offsets.count == 2,
              case .int(let b) = offsets[0], case .int(let e) = offsets[1], b >= 0, e >= 0 else {
            throw fail(.badEntry(tensor: name, reason: "\"data_offsets\" must be two non-negative integers"))
        }
        guard b <= e else { throw fail(.badEntry(tensor: name, reason: "data_offsets [\(b), \(e)] end before they begin")) }
        // The shape rule keeps count × 8 far below Int.max.
        let bytes = count * dtype.byteSize
        guard Int64(bytes) == e - b else {
            throw fail(.sizeMismatch(tensor: name, dtype: dtype, shape: shape, expected: bytes, span: Int(e - b)))
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: Int(b)..<Int(e))
    }

    /// The tensor named `name`, if present.
    public func info(_ name: String) -> SafetensorsTensorInfo? {
        index[name].map { tensors[$0] }
    }

    /// The raw little-endian bytes of a tensor, straight from the map.
    public func bytes(of info: SafetensorsTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound)])
    }

    /// Absolute byte range of a tensor in the file.
    public func fileRange(of info: SafetensorsTensorInfo) -> Range<Int> {
        (dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound)
    }

    /// The tensor's values converted to Float.
    public func floats(of info: SafetensorsTensorInfo) -> [Float] {
        let src = bytes(of: info)
        return [Float](unsafeUninitializedCapacity: info.elementCount) { buf, n in
            if info.elementCount > 0 { FloatConversion.toFloat(src.baseAddress!, dtype: info.dtype, count: info.elementCount, into: buf.baseAddress!) }
            n = info.elementCount
        }
    }
}

/// A safetensors file that breaks the format's rules; `description` is one line naming the
/// file and the tensor or byte offset.
public struct SafetensorsError: Error, CustomStringConvertible, Equatable {
    public enum Problem: Equatable {
        /// The file is another model format (`.eqm` or GGUF).
        case otherFormat(ModelFileFormat)
        case fileTooSmall(Int)
        case headerTooLarge(UInt64)
        case headerPastEnd(UInt64, fileSize: Int)
        case headerNotObject
        case headerJSON(JSONParseError)
        case metadataNotStrings
        case badEntry(tensor: String, reason: String)
        case unknownDType(tensor: String, dtype: String)
        case sizeMismatch(tensor: String, dtype: DType, shape: [Int], expected: Int, span: Int)
        case pastEndOfData(tensor: String, end: Int, dataSize: Int)
        case overlap(tensor: String, other: String)
        case gap(tensor: String, from: Int, to: Int)
        case trailingBytes(unused: Int, at: Int)
    }

    public var path: String
    public var problem: Problem

    public var description: String { MessageText.oneLine(text) }

    /// The message before the one-line guarantee.
    private var text: String {
        let hint = "the file is not a valid safetensors file (truncated or corrupt?); re-export it with the safetensors library"
        let path = MessageText.path(self.path)
        func name(_ t: String) -> String { MessageText.clean(t) }
        switch problem {
        case .otherFormat(.eqm):
            return "\(path): this is an .eqm file, not safetensors; give the original .safetensors file (or its folder)"
        case .otherFormat(let format):
            return "\(path): this is a \(format.displayName) file, not safetensors; give the model's .safetensors file (or its folder)"
        case .fileTooSmall(let n):
            return "\(path): \(n) bytes is too small for a safetensors file (needs an 8-byte header length); \(hint)"
        case .headerTooLarge(let n):
            return "\(path): header length \(n) exceeds the \(SafetensorsFile.maxHeaderLength >> 20) MiB limit; \(hint)"
        case let .headerPastEnd(n, size):
            return "\(path): header length \(n) runs past the end of the \(size)-byte file; \(hint)"
        case .headerNotObject:
            return "\(path): header at byte 8 is not a JSON object; \(hint)"
        case .headerJSON(let e):
            return "\(path): header is not valid JSON: \(e.reason) at byte \(e.offset); \(hint)"
        case .metadataNotStrings:
            return "\(path): \"__metadata__\" must map strings to strings; \(hint)"
        case let .badEntry(t, reason):
            return "\(path): tensor \(name(t)): \(reason); \(hint)"
        case let .unknownDType(t, d):
            return "\(path): tensor \(name(t)): unknown dtype \"\(name(d))\" (known: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .sizeMismatch(t, dtype, shape, expected, span):
            return "\(path): tensor \(name(t)): shape \(shape) of \(dtype.rawValue) needs \(expected) bytes but its data_offsets span \(span); \(hint)"
        case let .pastEndOfData(t, end, size):
            return "\(path): tensor \(name(t)): data ends at \(end), past the \(size)-byte data area (file truncated?); \(hint)"
        case let .overlap(t, other):
            return "\(path): tensor \(name(t)): data overlaps tensor \(name(other)); \(hint)"
        case let .gap(t, from, to):
            return "\(path): tensor \(name(t)): \(to - from) unused bytes before it (data offsets \(from)..<\(to) belong to no tensor); \(hint)"
        case let .trailingBytes(unused, at):
            return "\(path): \(unused) bytes at byte \(at) belong to no tensor; \(hint)"
        }
    }
}
