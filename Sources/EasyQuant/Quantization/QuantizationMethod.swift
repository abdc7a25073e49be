/// The numbers that turn one block of floats into codes and back:
/// `code = method.code(x, p)` and `x ≈ (code - p.zeroPoint) * p.scale`.
public struct BlockParameters: Sendable, Equatable {
    /// The dequantization step: what one code unit is worth.
    public var scale: Float
    /// The code that represents 0 (an integer; 0 for symmetric methods).
    public var zeroPoint: Float
    /// The method's own quantization factor, in whatever form its formula uses
    /// (a step to divide by, or a multiplier); only `code(_:_:)` reads it.
    public var factor: Float

    public init(scale: Float, zeroPoint: Float, factor: Float) {
        self.scale = scale; self.zeroPoint = zeroPoint; self.factor = factor
    }
}

/// A weight quantization method: how a block's range becomes parameters, and how one value
/// becomes a code. Each method is a small type of its own (see `Methods/`); the shared
/// machinery in `TensorQuantizer` does the walking over blocks, so adding a method means
/// adding one file and one line in `QuantizationMethods.make`.
public protocol QuantizationMethod: Sendable {
    /// The name used on the command line and recorded in files.
    static var name: String { get }
    /// Code width in bits (2...8).
    var bits: Int { get }
    /// Codes are two's-complement if true, unsigned otherwise.
    var isSigned: Bool { get }
    /// Symmetric methods have no zero point (it is always 0).
    var isSymmetric: Bool { get }
    /// Parameters for a block whose values lie in `minimum...maximum` (both finite).
    func parameters(minimum: Float, maximum: Float) -> BlockParameters
    /// The code of `x` in a block with parameters `p`, already clamped to the code range.
    func code(_ x: Float, _ p: BlockParameters) -> Int32
}

extension QuantizationMethod {
    public var name: String { Self.name }
    /// The representable codes.
    public var codeRange: ClosedRange<Int32> {
        isSigned ? -(Int32(1) << (bits - 1))...((Int32(1) << (bits - 1)) - 1) : 0...((Int32(1) << bits) - 1)
    }
}

/// Rounds half to even, as `torch.round` and the IEEE default do.
///
/// Adding and subtracting 1.5·2^23 leaves a float in [−2^22, 2^22] rounded to an integer by
/// the FPU's own round-to-nearest-even, with plain adds that vectorise; `rounded()` would be
/// a call to `rintf` per weight on the baseline x86-64 the package compiles for (no SSE4.1).
/// Inputs are first clamped to ±2^22, far outside every code range, so the result is the
/// same as `x.rounded(.toNearestOrEven)` wherever it matters.
@inline(__always) func roundToCode(_ x: Float) -> Float {
    let magic: Float = 12_582_912  // 1.5 · 2^23
    let y = Swift.min(Swift.max(x, -4_194_304), 4_194_304)
    return (y + magic) - magic
}

/// Clamps a rounded code to [lo, hi] and converts it to an integer.
///
/// The clamp happens in float, so the value is an integer within ±2^22; adding 1.5·2^23
/// puts it where one unit of the mantissa is 1, and the integer is read off the bit pattern.
/// That is exact, costs two adds, and needs no checked float-to-integer conversion (which
/// would trap on NaN; NaN weights are refused before any code is computed).
@inline(__always) func clampCode(_ x: Float, _ lo: Int32, _ hi: Int32) -> Int32 {
    let magic: Float = 12_582_912  // 1.5 · 2^23
    let clamped = Swift.min(Swift.max(x, Float(lo)), Float(hi))
    return Int32(bitPattern: (clamped + magic).bitPattern) &- Int32(bitPattern: magic.bitPattern)
}

/// Looks methods up by name.
public enum QuantizationMethods {
    /// The weight-only methods this version knows.
    public static let names = ["absmax", "zeropoint", "symquant", "simquant"]

    /// Why a method could not be made.
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unknownMethod(String)
        case unsupportedBits(method: String, bits: Int)
        public var description: String {
            switch self {
            case .unknownMethod(let m):
                return "unknown method \"\(m)\"; choose one of: \(QuantizationMethods.names.joined(separator: ", "))"
            case let .unsupportedBits(m, b):
                return "\(m) does not support --bits \(b); use 2 to 8"
            }
        }
    }

    /// The method named `name` at `bits` bits.
    public static func make(_ name: String, bits: Int = 8) throws -> any QuantizationMethod {
        guard (2...8).contains(bits) else { throw Failure.unsupportedBits(method: name, bits: bits) }
        switch name {
        case AbsMax.name: return AbsMax(bits: bits)
        case ZeroPoint.name: return ZeroPoint(bits: bits)
        case SymQuant.name: return SymQuant(bits: bits)
        case SimQuant.name: return SimQuant(bits: bits)
        default: throw Failure.unknownMethod(name)
        }
    }
}
