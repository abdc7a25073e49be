/// An `.eqm` file, memory-mapped and validated (docs/FORMAT.md §1, §7).
///
/// Opening checks the preamble, the header and every blob's place; nothing is decoded
/// until asked for. Each tensor then decodes on its own, so callers may load tensors
/// lazily and in parallel, and a corrupt blob names its tensor.
///
/// Decoding allocates only what the header says a tensor needs (its shape × its element
/// size, its block count × 4), after checking that the zstd frame declares exactly that much
/// and could hold it, and that it fits in `maxDecodedBytes`; values are decoded straight into
/// arrays of that size.
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
    /// The most bytes one decoded blob (or one dequantized tensor) may take; larger ones are
    /// refused with an error rather than handed to an allocator that would abort.
    public let maxDecodedBytes: Int
    private let index: [String: Int]

    /// Largest embedded tokenizer file accepted: 64 MiB (GPT-2's vocab.json is 1 MB, the
    /// largest real tokenizer.json files about 9 MB).
    public static let maxTokenizerFileSize = 64 << 20

    public convenience init(path: String, maxDecodedBytes: Int = SystemMemory.physicalBytes) throws {
        try self.init(file: MappedFile(path: path), maxDecodedBytes: maxDecodedBytes)
    }

    public init(file: MappedFile, maxDecodedBytes: Int = SystemMemory.physicalBytes) throws {
        self.file = file
        self.maxDecodedBytes = maxDecodedBytes
        path = file.path
        let bytes = file.bytes
        let path = file.path
        func fail(_ p: EQMError.Problem) -> EQMError { EQMError(path: path, problem: p) }

        guard bytes.count >= 8, bytes.prefix(8).elementsEqual(EQMFormat.magic) else {
            if let other = ModelFileFormat.sniff(UnsafeRawBufferPointer(rebasing: bytes.prefix(ModelFileFormat.sniffLength)), fileSize: bytes.count) {
                throw fail(.otherFormat(other))
            }
            throw fail(.notEQM)
        }
        guard bytes.count >= EQMFormat.preambleSize else { throw fail(.truncatedPreamble(fileSize: bytes.count)) }
        majorVersion = bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self).littleEndian
        minorVersion = bytes.loadUnaligned(fromByteOffset: 10, as: UInt16.self).littleEndian
        guard majorVersion == EQMFormat.majorVersion else {
            if majorVersion == 0 { throw fail(.neverWrittenVersion(majorVersion, minorVersion)) }
            throw fail(.unsupportedVersion(majorVersion, minorVersion))
        }
        let headerOffset = bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian
        let headerLength = bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian
        guard headerLength <= UInt64(EQMFormat.maxHeaderLength) else { throw fail(.headerTooLarge(length: headerLength)) }
        guard headerOffset >= UInt64(EQMFormat.preambleSize) else { throw fail(.headerInPreamble(offset: headerOffset)) }
        guard headerOffset <= UInt64(bytes.count), headerLength == UInt64(bytes.count) - headerOffset else {
            throw fail(.badPreamble(headerOffset: headerOffset, headerLength: headerLength, fileSize: bytes.count))
        }
        headerRange = Int(headerOffset)..<bytes.count

        let header: JSONValue
        do { header = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: bytes[headerRange])) } catch let e as JSONParseError {
            throw fail(.headerJSON(reason: e.reason, offset: headerRange.lowerBound + e.offset))
        }
        guard header.objectMembers != nil else { throw fail(.badHeader("the header is not a JSON object")) }
        guard let alignment = header["alignment"]?.intValue, alignment >= 8, alignment & (alignment - 1) == 0 else {
            throw fail(.badHeader("\"alignment\" must be a power of two >= 8"))
        }
        self.alignment = alignment
        // Features that change what the tensors compute must be known (docs/FORMAT.md §2).
        if let requires = header["requires"] {
            guard let items = requires.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                throw fail(.badHeader("\"requires\" must be a list of strings"))
            }
            if let unknown = items.compactMap(\.stringValue).first(where: { !EQMFormat.knownFeatures.contains($0) }) {
                throw fail(.unsupportedFeature(unknown))
            }
        }
        guard let metadata = header["metadata"], metadata.objectMembers != nil else {
            throw fail(.badHeader("\"metadata\" must be an object"))
        }
        self.metadata = metadata
        guard let list = header["tensors"]?.arrayValue else { throw fail(.badHeader("\"tensors\" must be a list")) }

        var records: [EQMTensorRecord] = []
        var names = [String: Int]()
        records.reserveCapacity(list.count)
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
        let blobArea = EQMFormat.preambleSize..<headerRange.lowerBound
        var spans: [(range: Range<Int>, owner: String)] = []
        for r in records {
            for (what, blob) in [("data", r.data), ("scales", r.scales), ("zero_points", r.zeroPoints)] {
                let owner = "tensor \(MessageText.clean(r.name)) \(what)"
                if let blob { spans.append((try Self.place(blob, owner: owner, in: blobArea, alignment: alignment, fail: fail), owner)) }
            }
        }
        if let files = metadata["tokenizer"]?["files"]?.objectMembers {
            for (name, value) in files {
                let owner = "tokenizer file \(MessageText.clean(name))"
                guard let blob = EQMRecordParser.blob(value) else { throw fail(.badHeader("\(owner) is not a blob")) }
                guard blob.size <= Self.maxTokenizerFileSize else {
                    throw fail(.badBlob(owner: owner, reason: "declares \(blob.size) bytes, more than the \(Self.maxTokenizerFileSize >> 20) MiB a tokenizer file may have"))
                }
                spans.append((try Self.place(blob, owner: owner, in: blobArea, alignment: alignment, fail: fail), owner))
            }
        }
        spans.sort { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        for (a, b) in zip(spans, spans.dropFirst()) where b.range.lowerBound < a.range.upperBound {
            throw fail(.badBlob(owner: b.owner, reason: "its bytes at \(b.range.lowerBound) overlap those of \(a.owner)"))
        }
    }

    /// The byte range of `blob`, checked to lie inside the blob area at an aligned offset.
    private static func place(_ blob: EQMBlob, owner: String, in area: Range<Int>, alignment: Int,
                              fail: (EQMError.Problem) -> EQMError) throws -> Range<Int> {
        guard blob.offset >= area.lowerBound, blob.offset <= area.upperBound, blob.length <= area.upperBound - blob.offset else {
            throw fail(.badBlob(owner: owner, reason: "\(blob.length) bytes at byte \(blob.offset) do not lie inside the blob area \(area.lowerBound)..<\(area.upperBound)"))
        }
        guard blob.offset % alignment == 0 else {
            throw fail(.badBlob(owner: owner, reason: "offset \(blob.offset) is not a multiple of the alignment \(alignment)"))
        }
        return blob.offset..<(blob.offset + blob.length)
    }

    /// The record named `name`, if present.
    public func record(_ name: String) -> EQMTensorRecord? { index[name].map { tensors[$0] } }

    /// The record named `name`, or an error that lists what the file holds.
    public func requireRecord(_ name: String) throws -> EQMTensorRecord {
        guard let r = record(name) else { throw EQMError(path: path, problem: .noSuchTensor(name)) }
        return r
    }

    /// This file's own copy of `record` (the only kind whose sizes were checked), or an error.
    private func owned(_ record: EQMTensorRecord) throws -> EQMTensorRecord {
        guard let i = index[record.name], tensors[i] == record else {
            throw EQMError(path: path, problem: .noSuchTensor(record.name))
        }
        return tensors[i]
    }

    // MARK: Metadata

    /// The model's config.json as embedded by the converter.
    public var modelConfig: JSONValue? { metadata["model"]?["config"] }
    /// The conversion's description (`metadata.quantization`).
    public var quantizationInfo: JSONValue? { metadata["quantization"] }
    /// Names of the embedded tokenizer files.
    public var tokenizerFileNames: [String] { metadata["tokenizer"]?["files"]?.objectMembers?.map(\.key) ?? [] }

    /// The bytes of an embedded tokenizer file (at most `maxTokenizerFileSize`), checked.
    public func tokenizerFile(_ name: String) throws -> [UInt8]? {
        guard let value = metadata["tokenizer"]?["files"]?[name], let blob = EQMRecordParser.blob(value) else { return nil }
        return try decode(blob, owner: "tokenizer file \(name)")
    }

    // MARK: Decoding

    /// The frame of `blob`, checked to lie inside the blob area (records from this file always
    /// do; a blob built by the caller may not).
    private func frame(of blob: EQMBlob, owner: String) throws -> UnsafeRawBufferPointer {
        let area = EQMFormat.preambleSize..<headerRange.lowerBound
        guard blob.offset >= area.lowerBound, blob.offset <= area.upperBound, blob.length <= area.upperBound - blob.offset else {
            throw EQMError(path: path, problem: .badBlob(owner: owner, reason: "\(blob.length) bytes at byte \(blob.offset) do not lie inside the blob area \(area.lowerBound)..<\(area.upperBound)"))
        }
        return UnsafeRawBufferPointer(rebasing: file.bytes[blob.offset..<(blob.offset + blob.length)])
    }

    /// Refuses `bytes` of decoded output when they exceed `maxDecodedBytes`.
    private func checkBudget(_ bytes: Int, owner: String) throws {
        guard bytes <= maxDecodedBytes else {
            throw EQMError(path: path, problem: .tooLargeToDecode(owner: owner, bytes: bytes, limit: maxDecodedBytes))
        }
    }

    /// Decodes `blob` into `output` (exactly `blob.size` bytes), naming `owner` if it is corrupt.
    private func decode(_ blob: EQMBlob, owner: String, into output: UnsafeMutableRawBufferPointer) throws {
        let frame = try frame(of: blob, owner: owner)
        // The compressed pages are not needed once decoded: keep them out of the resident set.
        defer { file.release(blob.offset..<(blob.offset + blob.length)) }
        do { try Zstd.decompress(frame, into: output) } catch let e as Zstd.Failure {
            throw EQMError(path: path, problem: .corruptBlob(owner: owner, offset: blob.offset, reason: e.description))
        }
    }

    /// Checks everything about `blob` that can be checked before its output is allocated.
    private func precheck(_ blob: EQMBlob, owner: String) throws {
        try checkBudget(blob.size, owner: owner)
        do { try Zstd.checkFrame(try frame(of: blob, owner: owner), size: blob.size) } catch let e as Zstd.Failure {
            throw EQMError(path: path, problem: .corruptBlob(owner: owner, offset: blob.offset, reason: e.description))
        }
    }

    /// Decodes one blob into a new array of its declared size, naming `owner` if it is corrupt.
    public func decode(_ blob: EQMBlob, owner: String) throws -> [UInt8] {
        try precheck(blob, owner: owner)
        return try [UInt8](unsafeUninitializedCapacity: blob.size) { buffer, initialized in
            try decode(blob, owner: owner, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = blob.size
        }
    }

    /// Decodes a blob of `count` little-endian F32 values straight into a Float array,
    /// refusing non-finite values when `finite` (EasyQuant never writes them).
    private func decodeFloat32(_ blob: EQMBlob, count: Int, owner: String, finite: Bool) throws -> [Float] {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: 4)
        guard !overflow, bytes == blob.size else {
            throw EQMError(path: path, problem: .badBlob(owner: owner, reason: "holds \(blob.size) bytes, expected \(count) F32 values"))
        }
        try precheck(blob, owner: owner)
        let values = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try decode(blob, owner: owner, into: UnsafeMutableRawBufferPointer(buffer))
            #if _endian(big)
            for i in 0..<count { buffer[i] = Float(bitPattern: UInt32(littleEndian: buffer[i].bitPattern)) }
            #endif
            initialized = count
        }
        if finite { try refuseNonFinite(values, blob: blob, owner: owner) }
        return values
    }

    private func refuseNonFinite(_ values: [Float], blob: EQMBlob, owner: String) throws {
        guard !values.allSatisfy(\.isFinite), let bad = values.firstIndex(where: { !$0.isFinite }) else { return }
        throw EQMError(path: path, problem: .corruptBlob(owner: owner, offset: blob.offset,
                                                         reason: "value \(bad) is \(values[bad]); EasyQuant never writes non-finite values"))
    }

    /// The quantized form of a tensor (codes, scales, zero points), without dequantizing.
    public func quantizedTensor(_ record: EQMTensorRecord) throws -> QuantizedTensor {
        let record = try owned(record)
        guard case .quantized(let q) = record.encoding, let scaleBlob = record.scales else {
            throw EQMError(path: path, problem: .badTensor(tensor: record.name, reason: "is not quantized"))
        }
        let codes = try decode(record.data, owner: "tensor \(record.name) data")
        let blocks = q.layout.scaleCount
        let scales = try decodeFloat32(scaleBlob, count: blocks, owner: "tensor \(record.name) scales", finite: true)
        let zeroPoints = try record.zeroPoints.map { try decodeFloat32($0, count: blocks, owner: "tensor \(record.name) zero_points", finite: true) }
        return QuantizedTensor(shape: record.shape, method: q.method, bits: q.bits, isSigned: q.isSigned,
                               isSymmetric: q.isSymmetric, layout: q.layout, codes: codes, scales: scales, zeroPoints: zeroPoints)
    }

    /// A tensor's values as floats: dequantized if quantized, converted if stored in F16/BF16.
    /// Float tensors with a non-finite value are refused (EasyQuant never writes one).
    public func floats(_ record: EQMTensorRecord) throws -> [Float] {
        let record = try owned(record)
        let owner = "tensor \(record.name) data"
        let count = record.elementCount
        // The shape rule (checked at open) keeps count × 4 far from overflowing.
        try checkBudget(count * 4, owner: "tensor \(record.name)")
        switch record.encoding {
        case .float(.f32):
            return try decodeFloat32(record.data, count: count, owner: owner, finite: true)
        case .float(let dtype):
            let stored = try decode(record.data, owner: owner)
            let values = stored.withUnsafeBytes { raw in
                [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    if count > 0 { FloatConversion.toFloat(raw.baseAddress!, dtype: dtype, count: count, into: buffer.baseAddress!) }
                    initialized = count
                }
            }
            try refuseNonFinite(values, blob: record.data, owner: owner)
            return values
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
        let shape = dims.compactMap { $0.intValue }
        guard shape.count == dims.count else {
            throw bad("shape \(MessageText.clean(JSONValue.array(dims).serialized())) is not a list of integers")
        }
        let count: Int
        switch ShapeRule.elementCount(shape) {
        case .success(let n): count = n
        case .failure(let violation): throw bad(violation.description)
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
            let info = try quantization(entry["quantization"], shape: shape, bad: bad)
            let blocks = info.layout.scaleCount
            // At most one block per element (or none, for an empty tensor): no overflow.
            let scaleBytes = blocks * 4
            guard let scales = Self.blob(entry["scales"]?["data"]) else { throw bad("missing \"scales\"") }
            guard scales.size == scaleBytes else {
                throw bad("scales hold \(scales.size) bytes, expected \(scaleBytes) for \(blocks) blocks")
            }
            var zeroPoints: EQMBlob?
            if !info.isSymmetric {
                guard let z = Self.blob(entry["zero_points"]?["data"]) else { throw bad("asymmetric but no \"zero_points\"") }
                guard z.size == scaleBytes else { throw bad("zero_points hold \(z.size) bytes, expected \(scaleBytes) for \(blocks) blocks") }
                zeroPoints = z
            }
            record = EQMTensorRecord(name: name, shape: shape, sourceDType: sourceDType, encoding: .quantized(info),
                                     data: data, scales: scales, zeroPoints: zeroPoints)
        default:
            throw bad("\"encoding\" must be \"float\" or \"quantized\"")
        }
        let expected = record.expectedDataSize(elementCount: count)
        guard record.data.size == expected else {
            throw bad("data holds \(record.data.size) bytes, expected \(expected) for shape \(shape)")
        }
        return record
    }

    /// The `quantization` object of a 2-D tensor of `shape`, every field checked.
    func quantization(_ q: JSONValue?, shape: [Int], bad: (String) -> EQMError) throws -> EQMQuantization {
        guard let q, let method = q["method"]?.stringValue,
              let bits = q["bits"]?.intValue, (2...8).contains(bits),
              let signed = q["signed"]?.boolValue, let scheme = q["scheme"]?.stringValue,
              scheme == "symmetric" || scheme == "asymmetric",
              let groupSize = q["group_size"]?.intValue,
              let blockItems = q["block"]?.arrayValue
        else { throw bad("malformed \"quantization\" (needs method, bits 2-8, signed, scheme, axis, group_size, block)") }
        let block = blockItems.compactMap(\.intValue)
        guard block.count == 2, blockItems.count == 2, block.allSatisfy({ (1...ShapeRule.maxDimension).contains($0) }) else {
            throw bad("block \(MessageText.clean(JSONValue.array(blockItems).serialized())) is not two integers from 1 to \(ShapeRule.maxDimension)")
        }
        guard (0...ShapeRule.maxDimension).contains(groupSize) else {
            throw bad("group_size \(groupSize) is not from 0 to \(ShapeRule.maxDimension)")
        }
        var axis: Int?
        switch q["axis"] {
        case nil, .null?: axis = nil
        case let value?:
            guard let a = value.intValue, a == 0 || a == 1 else { throw bad("axis \(MessageText.clean(value.serialized())) is not 0, 1 or null") }
            axis = a
        }
        let layout = BlockLayout(shape: shape, block: block, axis: axis, groupSize: groupSize)
        return EQMQuantization(method: method, bits: bits, isSigned: signed, isSymmetric: scheme == "symmetric", layout: layout)
    }
}

/// An `.eqm` file that cannot be used; `description` is one line naming the file and the
/// tensor or byte offset, and what to do.
public struct EQMError: Error, CustomStringConvertible, Equatable {
    public enum Problem: Equatable {
        case notEQM
        /// Another model format (safetensors or GGUF) given where an `.eqm` file is expected.
        case otherFormat(ModelFileFormat)
        /// The magic is there but the file ends inside the 32-byte preamble.
        case truncatedPreamble(fileSize: Int)
        /// A major version newer than this reader's.
        case unsupportedVersion(UInt16, UInt16)
        /// A version no EasyQuant has written (major 0).
        case neverWrittenVersion(UInt16, UInt16)
        /// A header length above `EQMFormat.maxHeaderLength`.
        case headerTooLarge(length: UInt64)
        /// A header offset inside the preamble.
        case headerInPreamble(offset: UInt64)
        /// A header that does not end exactly at the end of the file.
        case badPreamble(headerOffset: UInt64, headerLength: UInt64, fileSize: Int)
        case headerJSON(reason: String, offset: Int)
        case badHeader(String)
        case badTensor(tensor: String, reason: String)
        case badBlob(owner: String, reason: String)
        case corruptBlob(owner: String, offset: Int, reason: String)
        /// Decoding would need more memory than `EQMFile.maxDecodedBytes`.
        case tooLargeToDecode(owner: String, bytes: Int, limit: Int)
        case noSuchTensor(String)
        case unsupportedFeature(String)
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
        let remake = "the file is damaged; convert the model again with eqconvert"
        let path = MessageText.path(self.path)
        func clean(_ s: String) -> String { MessageText.clean(s) }
        switch problem {
        case .notEQM:
            return "\(path): not an .eqm file (the first 8 bytes are not the EQM magic); give a file written by eqconvert"
        case .otherFormat(let format):
            let what = format == .safetensors ? "convert it with eqconvert first" : "EasyQuant converts safetensors models; give an .eqm file written by eqconvert"
            return "\(path): this is a \(format.displayName) file, not an .eqm file; \(what)"
        case .truncatedPreamble(let size):
            return "\(path): only \(size) bytes, shorter than the 32-byte .eqm preamble (truncated?); \(remake)"
        case let .unsupportedVersion(major, minor):
            return "\(path): format version \(major).\(minor) is not supported by this EasyQuant (reads 1.x); it was written by a newer EasyQuant, so upgrade"
        case let .neverWrittenVersion(major, minor):
            return "\(path): format version \(major).\(minor) is not a version any EasyQuant writes (this reader reads 1.x); \(remake)"
        case .headerTooLarge(let length):
            return "\(path): header length \(length) exceeds the \(EQMFormat.maxHeaderLength >> 20) MiB limit; \(remake)"
        case .headerInPreamble(let offset):
            return "\(path): header offset \(offset) lies inside the 32-byte preamble; \(remake)"
        case let .badPreamble(o, l, size):
            return "\(path): header at byte \(o) of \(l) bytes does not end the \(size)-byte file (truncated?); \(remake)"
        case let .headerJSON(reason, offset):
            return "\(path): header is not valid JSON: \(reason) at byte \(offset); \(remake)"
        case .badHeader(let m):
            return "\(path): header: \(m); \(remake)"
        case let .badTensor(t, reason):
            return "\(path): tensor \(clean(t)): \(reason); \(remake)"
        case let .badBlob(owner, reason):
            return "\(path): \(clean(owner)): \(reason); \(remake)"
        case let .corruptBlob(owner, offset, reason):
            return "\(path): \(clean(owner)) at byte \(offset) is corrupt: \(reason); \(remake)"
        case let .tooLargeToDecode(owner, bytes, limit):
            return "\(path): \(clean(owner)) needs \(bytes) bytes decoded, more than the \(limit) this reader may allocate at once (the machine's memory); use a machine with more memory, or check that the file is what you think"
        case .unsupportedFeature(let f):
            return "\(path): needs feature \"\(clean(f))\", which this EasyQuant does not implement; it was written by a newer EasyQuant, so upgrade"
        case .noSuchTensor(let n):
            return "\(path): no tensor named \(clean(n)); list the tensors with eqinspect \(path)"
        }
    }
}
