/// The element types a GGUF tensor can have (ggml's `enum ggml_type`; numbers as stored in
/// the file).
///
/// Every type stores a row as whole blocks: `blockSize` elements in `bytesPerBlock` bytes
/// (1 element per block for the plain types). The sizes follow ggml's `ggml-common.h`, which
/// is what writes and reads the files; where the Python `gguf` package disagrees (Q8_1, 40
/// bytes there, 36 in ggml) ggml wins. Numbers ggml retired (4, 5, 31-33, 36-38) are not
/// cases: a file that uses them is refused as holding an unknown type.
public enum GGMLType: UInt32, CaseIterable, Sendable {
    case F32 = 0, F16 = 1
    case Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9
    case Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15
    case IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23
    case I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28
    case IQ1_M = 29, BF16 = 30
    case TQ1_0 = 34, TQ2_0 = 35
    case MXFP4 = 39, NVFP4 = 40, Q1_0 = 41, Q2_0 = 42

    /// Elements per block (the "super-block" of 256 for the K- and IQ-quants).
    public var blockSize: Int {
        switch self {
        case .F32, .F16, .BF16, .F64, .I8, .I16, .I32, .I64: return 1
        case .Q4_0, .Q4_1, .Q5_0, .Q5_1, .Q8_0, .Q8_1, .IQ4_NL, .MXFP4: return 32
        case .NVFP4, .Q2_0: return 64
        case .Q1_0: return 128
        case .Q2_K, .Q3_K, .Q4_K, .Q5_K, .Q6_K, .Q8_K, .IQ2_XXS, .IQ2_XS, .IQ3_XXS, .IQ1_S, .IQ3_S, .IQ2_S,
             .IQ4_XS, .IQ1_M, .TQ1_0, .TQ2_0:
            return 256
        }
    }

    /// Bytes one block takes in the file.
    public var bytesPerBlock: Int {
        switch self {
        case .F32, .I32: return 4
        case .F16, .BF16, .I16: return 2
        case .F64, .I64: return 8
        case .I8: return 1
        case .Q4_0: return 18          // f16 d, 16 bytes of 4-bit codes
        case .Q4_1: return 20          // f16 d, f16 m, 16 bytes of 4-bit codes
        case .Q5_0: return 22          // f16 d, 4 bytes of 5th bits, 16 bytes of low nibbles
        case .Q5_1: return 24          // f16 d, f16 m, 4 bytes of 5th bits, 16 bytes of low nibbles
        case .Q8_0: return 34          // f16 d, 32 int8 codes
        case .Q8_1: return 36          // f16 d, f16 s, 32 int8 codes
        case .Q2_K: return 84          // 16 packed scales/mins, 64 bytes of 2-bit codes, f16 d, f16 dmin
        case .Q3_K: return 110         // 32 bytes of high bits, 64 bytes of 2-bit codes, 12 bytes of 6-bit scales, f16 d
        case .Q4_K: return 144         // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of 4-bit codes
        case .Q5_K: return 176         // as Q4_K plus 32 bytes of 5th bits
        case .Q6_K: return 210         // 128 bytes of low nibbles, 64 bytes of high 2 bits, 16 int8 scales, f16 d
        case .Q8_K: return 292         // f32 d, 256 int8 codes, 16 int16 block sums
        case .IQ2_XXS: return 66
        case .IQ2_XS: return 74
        case .IQ3_XXS: return 98
        case .IQ1_S: return 50
        case .IQ4_NL: return 18
        case .IQ3_S: return 110
        case .IQ2_S: return 82
        case .IQ4_XS: return 136
        case .IQ1_M: return 56
        case .TQ1_0: return 54
        case .TQ2_0: return 66
        case .MXFP4: return 17
        case .NVFP4: return 36
        case .Q1_0: return 18
        case .Q2_0: return 18
        }
    }

    /// ggml's name for the type, as llama.cpp prints it (`Q4_K`, `BF16`).
    public var name: String { String(describing: self) }

    /// Whether EasyQuant can dequantize tensors of this type to f32.
    public var canDequantize: Bool {
        switch self {
        case .F32, .F16, .BF16, .Q4_0, .Q4_1, .Q5_0, .Q5_1, .Q8_0, .Q2_K, .Q3_K, .Q4_K, .Q5_K, .Q6_K: return true
        default: return false
        }
    }

    /// Stored bits per element (block overhead included).
    public var bitsPerWeight: Double { Double(bytesPerBlock * 8) / Double(blockSize) }

    /// The types `floats(of:)` handles, for messages.
    public static var dequantizable: [GGMLType] { allCases.filter(\.canDequantize) }
}
