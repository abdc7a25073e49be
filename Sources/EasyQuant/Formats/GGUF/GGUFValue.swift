/// The type tag of a GGUF metadata value, as stored in the file (`gguf_metadata_value_type`).
public enum GGUFValueType: UInt32, CaseIterable, Sendable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Short name for display: `u8`, `i32`, `f32`, `bool`, `string`, `array`.
    public var name: String {
        switch self {
        case .uint8: return "u8"
        case .int8: return "i8"
        case .uint16: return "u16"
        case .int16: return "i16"
        case .uint32: return "u32"
        case .int32: return "i32"
        case .uint64: return "u64"
        case .int64: return "i64"
        case .float32: return "f32"
        case .float64: return "f64"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        }
    }

    /// The fewest bytes one value of this type takes in the file: its whole size for the
    /// fixed-size types, the length prefix for a string, the element type and count for an
    /// array. Bounds an array's length by the bytes that remain before anything is allocated.
    var minimumEncodedSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64, .string: return 8
        case .array: return 12
        }
    }
}

/// One GGUF metadata value. Arrays keep their element type, so an empty array still says
/// what it would hold, and may nest.
///
/// Not declared `indirect`: the array case already stores its elements on the heap, and
/// boxing every scalar would cost one allocation per element of a 150k-entry vocabulary.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16)
    case uint32(UInt32), int32(Int32), uint64(UInt64), int64(Int64)
    case float32(Float), float64(Double)
    case bool(Bool)
    case string(String)
    case array(GGUFValueType, [GGUFValue])

    /// The value's type tag.
    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// The string, for a string value.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer, for a value of any integer type that fits in `Int` (not a bool, not a float).
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// The number, for a value of any integer or float type (large 64-bit integers rounded).
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        case .uint64(let v): return Double(v)
        case .int64(let v): return Double(v)
        default: return intValue.map(Double.init)
        }
    }

    /// The flag, for a bool value.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements, for an array.
    public var arrayValue: [GGUFValue]? {
        if case .array(_, let elements) = self { return elements }
        return nil
    }

    /// The element type, for an array.
    public var elementType: GGUFValueType? {
        if case .array(let t, _) = self { return t }
        return nil
    }

    /// The strings, for an array of strings.
    public var stringArray: [String]? {
        guard case .array(.string, let elements) = self else { return nil }
        return elements.map { if case .string(let s) = $0 { return s } else { return "" } }
    }

    /// The integers, for an array of an integer type whose every element fits in `Int`.
    public var intArray: [Int]? {
        guard case .array(let t, let elements) = self, t != .float32, t != .float64, t != .bool,
              t != .string, t != .array else { return nil }
        var out: [Int] = []
        out.reserveCapacity(elements.count)
        for e in elements {
            guard let v = e.intValue else { return nil }
            out.append(v)
        }
        return out
    }

    /// The numbers as Float, for an array of any integer or float type.
    public var floatArray: [Float]? {
        guard case .array(let t, let elements) = self, t != .bool, t != .string, t != .array else { return nil }
        var out: [Float] = []
        out.reserveCapacity(elements.count)
        for e in elements {
            guard let v = e.doubleValue else { return nil }
            out.append(Float(v))
        }
        return out
    }

    /// A one-line description for display: the type and the value, strings quoted and cut
    /// short; arrays as `[string × 49152] "<|endoftext|>", "<|im_start|>", …`.
    public var summary: String {
        switch self {
        case .array(let t, let elements):
            let head = "[\(t.name) × \(elements.count)]"
            guard !elements.isEmpty else { return head }
            let shown = elements.prefix(Self.summaryElements).map(\.element)
            return head + " " + shown.joined(separator: ", ") + (elements.count > Self.summaryElements ? ", …" : "")
        default:
            return type.name + " " + element
        }
    }

    /// Elements an array's summary shows.
    static let summaryElements = 4
    /// Characters of a string a summary shows.
    static let summaryCharacters = 60

    /// The value alone, as it appears inside a summary (a nested array shows its type and length).
    private var element: String {
        switch self {
        case .uint8(let v): return String(v)
        case .int8(let v): return String(v)
        case .uint16(let v): return String(v)
        case .int16(let v): return String(v)
        case .uint32(let v): return String(v)
        case .int32(let v): return String(v)
        case .uint64(let v): return String(v)
        case .int64(let v): return String(v)
        case .float32(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return Self.quoted(s)
        case .array(let t, let elements): return "[\(t.name) × \(elements.count)]"
        }
    }

    /// `s` in double quotes, control characters escaped, cut after `summaryCharacters`.
    static func quoted(_ s: String) -> String {
        var out = "\""
        var n = 0
        for scalar in s.unicodeScalars {
            if n == summaryCharacters { out += "…"; break }
            n += 1
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
