/// The fixed facts of the `.eqm` format (docs/FORMAT.md §1).
public enum EQMFormat {
    public static let magic: [UInt8] = [0x89, 0x45, 0x51, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A]
    public static let majorVersion: UInt16 = 1
    public static let minorVersion: UInt16 = 0
    public static let preambleSize = 32
    public static let defaultAlignment = 64
    public static let maxHeaderLength = 64 << 20
    /// Features of `requires` this reader implements (docs/FORMAT.md §2, §5.3).
    public static let knownFeatures: Set<String> = ["outliers"]
}

/// A zstd frame inside the file (docs/FORMAT.md §4).
public struct EQMBlob: Equatable, Sendable {
    /// Absolute byte offset of the frame.
    public var offset: Int
    /// Compressed length in bytes.
    public var length: Int
    /// Decoded size in bytes.
    public var size: Int

    public init(offset: Int, length: Int, size: Int) {
        self.offset = offset; self.length = length; self.size = size
    }

    var json: JSONValue {
        .makeObject([("offset", JSONValue(offset)), ("length", JSONValue(length)), ("size", JSONValue(size))])
    }
}

/// How a quantized tensor's codes are to be read (docs/FORMAT.md §5.2).
public struct EQMQuantization: Equatable, Sendable {
    public var method: String
    public var bits: Int
    public var isSigned: Bool
    public var isSymmetric: Bool
    public var layout: BlockLayout
}

/// What a tensor record stores.
public enum EQMEncoding: Equatable, Sendable {
    case float(DType)
    case quantized(EQMQuantization)
}

/// One entry of the header's `tensors` list (docs/FORMAT.md §5).
public struct EQMTensorRecord: Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public var sourceDType: DType
    public var encoding: EQMEncoding
    public var data: EQMBlob
    /// Present for quantized tensors.
    public var scales: EQMBlob?
    /// Present for asymmetric quantized tensors.
    public var zeroPoints: EQMBlob?

    public var elementCount: Int { elementCountOrZero(shape) }

    /// Bytes the record takes in the file (all its blobs).
    public var storedBytes: Int { data.length + (scales?.length ?? 0) + (zeroPoints?.length ?? 0) }

    public var quantization: EQMQuantization? {
        if case .quantized(let q) = encoding { return q }
        return nil
    }

    /// The decoded size the data blob must have for `elementCount` elements (which the shape
    /// rule keeps small enough for the products not to overflow).
    func expectedDataSize(elementCount: Int) -> Int {
        switch encoding {
        case .float(let dtype): return elementCount * dtype.byteSize
        case .quantized(let q): return CodePacking.storedSize(count: elementCount, bits: q.bits)
        }
    }

    var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("name", .string(name)),
            ("shape", JSONValue(shape)),
            ("source_dtype", .string(sourceDType.rawValue)),
        ]
        switch encoding {
        case .float(let dtype):
            members.append(("encoding", "float"))
            members.append(("dtype", .string(dtype.rawValue)))
            members.append(("data", data.json))
        case .quantized(let q):
            members.append(("encoding", "quantized"))
            members.append(("quantization", .makeObject([
                ("method", .string(q.method)),
                ("bits", JSONValue(q.bits)),
                ("signed", .bool(q.isSigned)),
                ("scheme", q.isSymmetric ? "symmetric" : "asymmetric"),
                ("axis", q.layout.axis.map { JSONValue($0) } ?? .null),
                ("group_size", JSONValue(q.layout.groupSize)),
                ("block", JSONValue(q.layout.block)),
            ])))
            members.append(("data", data.json))
            let scaleShape = JSONValue(q.layout.scaleShape)
            if let scales {
                members.append(("scales", .makeObject([("dtype", "F32"), ("shape", scaleShape), ("data", scales.json)])))
            }
            if let zeroPoints {
                members.append(("zero_points", .makeObject([("dtype", "F32"), ("shape", scaleShape), ("data", zeroPoints.json)])))
            }
        }
        return .makeObject(members)
    }
}

func elementCountOrZero(_ shape: [Int]) -> Int { elementCount(shape) ?? 0 }
