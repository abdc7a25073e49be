/// An `.eqm` file, memory-mapped and validated (docs/FORMAT.md §1, §7).
///
/// Opening checks the preamble, the header and every blob's place; nothing is decoded
/// until asked for. Each tensor then decodes on its own, so callers may load tensors
/// lazily and in parallel, and a corrupt blob names its tensor.
public final class EQMFile: @unchecked Sendable {
    public let path: String
    public let file: MappedFile
    public let majorVersion: UInt16
    public let minorVersion: UInt16
    public let alignment: Int
    /// The header's `metadata` object (unknown keys included, as written).
    public let metadata: JSONValue
    /// Tensors in file order.
    public let tensors: [EQMTensorRecord]
    /// Byte range of the JSON header.
    public let headerRange: Range<Int>
    private let index: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        let bytes = file.bytes
        let path = file.path
        func fail(_ p: EQMError.Problem) -> EQMError { EQMError(path: path, problem: p) }

        guard bytes.count >= EQMFormat.preambleSize, Array(bytes[0..<8]) == EQMFormat.magic else {
            throw fail(.notEQM)
        }
        majorVersion = bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self).littleEndian
        minorVersion = bytes.loadUnaligned(fromByteOffset: 10, as: UInt16.self).littleEndian
        guard majorVersion == EQMFormat.majorVersion else { throw fail(.unsupportedVersion(majorVersion, minorVersion)) }
        let headerOffset = bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian
        let headerLength = bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian
        guard headerOffset >= UInt64(EQMFormat.preambleSize), headerLength <= UInt64(EQMFormat.maxHeaderLength),
              headerOffset <= UInt64(bytes.count), headerLength == UInt64(bytes.count) - headerOffset else {
            throw fail(.badPreamble(headerOffset: headerOffset, headerLength: headerLength, fileSize: bytes.count))
        }
        headerRange = Int(headerOffset)..<bytes.count

        let header: JSONValue
        do { header = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: bytes[headerRange])) } catch let e as JSONParseError {
            throw fail(.headerJSON(reason: e.reason, offset: headerRange.lowerBound + e.offset))
        }
        guard let alignment = header["alignment"]?.intValue, alignment >= 8, alignment & (alignment - 1) == 0 else {
            throw fail(.badHeader("\"alignment\" must be a power of two >= 8"))
        }
        self.alignment = alignment
        // Features that change what the tensors compute must be known (docs/FORMAT.md §2).
        if let requires = header["requires"] {
            guard let list = requires.arrayValue?.compactMap(\.stringValue), list.count == requires.arrayValue?.count else {
                throw fail(.badHeader("\"requires\" must be a list of strings"))
            }
            if let unknown = list.first(where: { !EQMFormat.knownFeatures.contains($0) }) { throw fail(.unsupportedFeature(unknown)) }
        }
        guard let metadata = header["metadata"], metadata.objectMembers != nil else {
            throw fail(.badHeader("\"metadata\" must be an object"))
        }
        self.metadata = metadata
        guard let list = header["tensors"]?.arrayValue else { throw fail(.badHeader("\"tensors\" must be a list")) }

        var records: [EQMTensorRecord] = []
        var names = [String: Int]()
        for (i, entry) in list.enumerated() {
            let record = try EQMRecordParser(fail: fail).parse(entry, position: i)
            guard names.updateValue(records.count, forKey: record.name) == nil else {
                throw fail(.badTensor(tensor: record.name, reason: "appears twice in the tensor list"))
            }
            records.append(record)
        }
        tensors = records
        index = names

        // Every blob inside the blob area, aligned, and disjoint from all others.
        var spans: [(range: Range<Int>, owner: String)] = []
        for r in records {
            for (what, blob) in [("data", r.data), ("scales", r.scales), ("zero_points", r.zeroPoints)] {
                if let blob { spans.append((try checkBlob(blob, owner: "tensor \(r.name) \(what)", fail: fail), r.name)) }
            }
        }
        if let files = metadata["tokenizer"]?["files"]?.objectMembers {
            for (name, value) in files {
                guard let blob = EQMRecordParser.blob(value) else { throw fail(.badHeader("tokenizer file \(name) is not a blob")) }
                spans.append((try checkBlob(blob, owner: "tokenizer file \(name)", fail: fail), name))
            }
        }
        spans.sort { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(spans, spans.dropFirst()) where b.range.lowerBound < a.range.upperBound {
            throw fail(.badTensor(tensor: b.owner, reason: "its data at byte \(b.range.lowerBound) overlaps \(a.owner)"))
        }

        func checkBlob(_ blob: EQMBlob, owner: String, fail: (EQMError.Problem) -> EQMError) throws -> Range<Int> {
            guard blob.offset >= EQMFormat.preambleSize, blob.length >= 0, blob.offset <= headerRange.lowerBound,
                  blob.length <= headerRange.lowerBound - blob.offset else {
                throw fail(.badBlob(owner: owner, reason: "bytes \(blob.offset)..<\(blob.offset + blob.length) lie outside the blob area 32..<\(headerRange.lowerBound)"))
            }
            guard blob.offset % alignment == 0 else {
                throw fail(.badBlob(owner: owner, reason: "offset \(blob.offset) is not a multiple of the alignment \(alignment)"))
            }
            return blob.offset..<(blob.offset + blob.length)
        }
    }

    /// The record named `name`, if present.
    public func record(_ name: String) -> EQMTensorRecord? { index[name].map { tensors[$0] } }

    /// The record named `name`, or an error that lists what the file holds.
    public func requireRecord(_ name: String) throws -> EQMTensorRecord {
        guard let r = record(name) else { throw EQMError(path: path, problem: .noSuchTensor(name)) }
        return r
    }

    // MARK: Metadata

    /// The model's config.json as embedded by the converter.
    public var modelConfig: JSONValue? { metadata["model"]?["config"] }
    /// The conversion's description (`metadata.quantization`).
    public var quantizationInfo: JSONValue? { metadata["quantization"] }
    /// Names of the embedded tokenizer files.
    public var tokenizerFileNames: [String] { metadata["tokenizer"]?["files"]?.objectMembers?.map(\.key) ?? [] }

    /// The bytes of an embedded tokenizer file, checked.
    public func tokenizerFile(_ name: String) throws -> [UInt8]? {
        guard let value = metadata["tokenizer"]?["files"]?[name], let blob = EQMRecordParser.blob(value) else { return nil }
        return try decode(blob, owner: "tokenizer file \(name)")
    }

    // MARK: Decoding

    /// Decodes one blob, naming `owner` if it is corrupt.
    public func decode(_ blob: EQMBlob, owner: String) throws -> [UInt8] {
        let frame = UnsafeRawBufferPointer(rebasing: file.bytes[blob.offset..<(blob.offset + blob.length)])
        // The compressed pages are not needed once decoded: keep them out of the resident set.
        defer { file.release(blob.offset..<(blob.offset + blob.length)) }
        do { return try Zstd.decompress(frame, size: blob.size) } catch let e as Zstd.Failure {
            throw EQMError(path: path, problem: .corruptBlob(owner: owner, offset: blob.offset, reason: e.description))
        }
    }

    private func decodeFloats(_ blob: EQMBlob, owner: String, finite: Bool) throws -> [Float] {
        let bytes = try decode(blob, owner: owner)
        let values = bytes.withUnsafeBytes { raw in
            [Float](unsafeUninitializedCapacity: bytes.count / 4) { buf, n in
                for i in 0..<(bytes.count / 4) { buf[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                n = bytes.count / 4
            }
        }
        if finite, let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw EQMError(path: path, problem: .corruptBlob(owner: owner, offset: blob.offset, reason: "value \(bad) is \(values[bad])"))
        }
        return values
    }

    /// The quantized form of a tensor (codes, scales, zero points), without dequantizing.
    public func quantizedTensor(_ record: EQMTensorRecord) throws -> QuantizedTensor {
        guard case .quantized(let q) = record.encoding, let scaleBlob = record.scales else {
            throw EQMError(path: path, problem: .badTensor(tensor: record.name, reason: "is not quantized"))
        }
        let codes = try decode(record.data, owner: "tensor \(record.name) data")
        let scales = try decodeFloats(scaleBlob, owner: "tensor \(record.name) scales", finite: true)
        let zeroPoints = try record.zeroPoints.map { try decodeFloats($0, owner: "tensor \(record.name) zero_points", finite: true) }
        return QuantizedTensor(shape: record.shape, method: q.method, bits: q.bits, isSigned: q.isSigned,
                               isSymmetric: q.isSymmetric, layout: q.layout, codes: codes, scales: scales, zeroPoints: zeroPoints)
    }

    /// A tensor's values as floats: dequantized if quantized, converted if stored in F16/BF16.
    public func floats(_ record: EQMTensorRecord) throws -> [Float] {
        switch record.encoding {
        case .float(let dtype):
            let bytes = try decode(record.data, owner: "tensor \(record.name) data")
            return bytes.withUnsafeBytes { raw in
                [Float](unsafeUninitializedCapacity: record.elementCount) { buf, n in
                    if record.elementCount > 0 { FloatConversion.toFloat(raw.baseAddress!, dtype: dtype, count: record.elementCount, into: buf.baseAddress!) }
                    n = record.elementCount
                }
            }
        case .quantized:
            return try quantizedTensor(record).dequantized()
        }
    }

    public func floats(_ name: String) throws -> [Float] { try floats(requireRecord(name)) }
}

/// Reads tensor records out of the header JSON, checking each field (docs/FORMAT.md §5).
struct EQMRecordParser {
    let fail: (EQMError.Problem) -> EQMError

    static func blob(_ v: JSONValue?) -> EQMBlob? {
        guard let v, let o = v["offset"]?.intValue, let l = v["length"]?.intValue, let s = v["size"]?.intValue,
              o >= 0, l >= 0, s >= 0 else { return nil }
        return EQMBlob(offset: o, length: l, size: s)
    }

    func parse(_ entry: JSONValue, position: Int) throws -> EQMTensorRecord {
        guard let name = entry["name"]?.stringValue else {
            throw fail(.badHeader("tensor entry \(position) has no \"name\""))
        }
        func bad(_ reason: String) -> EQMError { fail(.badTensor(tensor: name, reason: reason)) }
        guard let dims = entry["shape"]?.arrayValue else { throw bad("missing \"shape\"") }
        let shape = dims.compactMap { $0.intValue }.filter { $0 >= 0 }
        guard shape.count == dims.count, let count = elementCount(shape), count < Int.max / 8 else {
            throw bad("shape \(JSONValue.array(dims).serialized()) is not a list of non-negative integers of sane size")
        }
        guard let sourceName = entry["source_dtype"]?.stringValue, let sourceDType = DType(rawValue: sourceName) else {
            throw bad("missing or unknown \"source_dtype\"")
        }
        guard let data = Self.blob(entry["data"]) else { throw bad("missing or malformed \"data\" blob") }

        var record: EQMTensorRecord
        switch entry["encoding"]?.stringValue {
        case "float":
            guard let dn = entry["dtype"]?.stringValue, let dtype = DType(rawValue: dn), dtype.isFloatingPoint, dtype != .f64 else {
                throw bad("float tensors must have \"dtype\" F32, F16 or BF16")
            }
            record = EQMTensorRecord(name: name, shape: shape, sourceDType: sourceDType, encoding: .float(dtype), data: data)
        case "quantized":
            guard shape.count == 2 else { throw bad("quantized tensors must be 2-D, found shape \(shape)") }
            guard let q = entry["quantization"], let method = q["method"]?.stringValue,
                  let bits = q["bits"]?.intValue, (2...8).contains(bits),
                  let signed = q["signed"]?.boolValue, let scheme = q["scheme"]?.stringValue,
                  scheme == "symmetric" || scheme == "asymmetric",
                  let groupSize = q["group_size"]?.intValue, groupSize >= 0,
                  let block = q["block"]?.arrayValue?.compactMap({ $0.intValue }), block.count == 2, block.allSatisfy({ $0 >= 1 })
            else { throw bad("malformed \"quantization\" (needs method, bits 2-8, signed, scheme, axis, group_size, block)") }
            let axis = q["axis"]?.intValue
            if let axis, axis != 0 && axis != 1 { throw bad("axis \(axis) is not 0 or 1") }
            let layout = BlockLayout(shape: shape, block: block, axis: axis, groupSize: groupSize)
            let info = EQMQuantization(method: method, bits: bits, isSigned: signed, isSymmetric: scheme == "symmetric", layout: layout)
            guard let scales = Self.blob(entry["scales"]?["data"]) else { throw bad("missing \"scales\"") }
            guard scales.size == layout.scaleCount * 4 else {
                throw bad("scales hold \(scales.size) bytes, expected \(layout.scaleCount * 4) for \(layout.scaleCount) blocks")
            }
            var zeroPoints: EQMBlob?
            if !info.isSymmetric {
                guard let z = Self.blob(entry["zero_points"]?["data"]) else { throw bad("asymmetric but no \"zero_points\"") }
                guard z.size == layout.scaleCount * 4 else { throw bad("zero_points hold \(z.size) bytes, expected \(layout.scaleCount * 4)") }
                zeroPoints = z
            }
            record = EQMTensorRecord(name: name, shape: shape, sourceDType: sourceDType, encoding: .quantized(info),
                                     data: data, scales: scales, zeroPoints: zeroPoints)
        default:
            throw bad("\"encoding\" must be \"float\" or \"quantized\"")
        }
        guard record.data.size == record.expectedDataSize else {
            throw bad("data holds \(record.data.size) bytes, expected \(record.expectedDataSize) for shape \(shape)")
        }
        return record
    }
}

/// An `.eqm` file that cannot be used; `description` is one line naming the file and the
/// tensor or byte offset, and what to do.
public struct EQMError: Error, CustomStringConvertible, Equatable {
    public enum Problem: Equatable {
        case notEQM
        case unsupportedVersion(UInt16, UInt16)
        case badPreamble(headerOffset: UInt64, headerLength: UInt64, fileSize: Int)
        case headerJSON(reason: String, offset: Int)
        case badHeader(String)
        case badTensor(tensor: String, reason: String)
        case badBlob(owner: String, reason: String)
        case corruptBlob(owner: String, offset: Int, reason: String)
        case noSuchTensor(String)
        case unsupportedFeature(String)
    }
    public var path: String
    public var problem: Problem

    public var description: String {
        let remake = "the file is damaged; convert the model again with eqconvert"
        switch problem {
        case .notEQM:
            return "\(path): not an .eqm file (the first 8 bytes are not the EQM magic); give a file written by eqconvert"
        case let .unsupportedVersion(major, minor):
            return "\(path): format version \(major).\(minor) is not supported by this EasyQuant (reads 1.x); it was written by a newer EasyQuant, so upgrade"
        case let .badPreamble(o, l, size):
            return "\(path): header at byte \(o) of \(l) bytes does not end the \(size)-byte file (truncated?); \(remake)"
        case let .headerJSON(reason, offset):
            return "\(path): header is not valid JSON: \(reason) at byte \(offset); \(remake)"
        case .badHeader(let m):
            return "\(path): header: \(m); \(remake)"
        case let .badTensor(t, reason):
            return "\(path): tensor \(t): \(reason); \(remake)"
        case let .badBlob(owner, reason):
            return "\(path): \(owner): \(reason); \(remake)"
        case let .corruptBlob(owner, offset, reason):
            return "\(path): \(owner) at byte \(offset) is corrupt: \(reason); \(remake)"
        case .unsupportedFeature(let f):
            return "\(path): needs feature \"\(f)\", which this EasyQuant does not implement; it was written by a newer EasyQuant, so upgrade"
        case .noSuchTensor(let n):
            return "\(path): no tensor named \(n); list the tensors with eqinspect \(path)"
        }
    }
}
