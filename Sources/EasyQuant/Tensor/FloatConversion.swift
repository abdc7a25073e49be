/// Conversions between the stored float formats and Float, the type all computation uses.
///
/// Sources are read straight from memory-mapped files, where a tensor's bytes need not be
/// aligned for its type, so every load here is an unaligned load.
public enum FloatConversion {
    /// bfloat16 is the top half of a float32.
    @inline(__always) public static func bf16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Rounds to nearest, ties to even; NaN stays NaN.
    @inline(__always) public static func floatToBF16(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    /// Converts `count` elements of `dtype` starting at `source` into `destination`.
    /// Integer types convert exactly where Float can hold them.
    public static func toFloat(_ source: UnsafeRawPointer, dtype: DType, count: Int,
                               into destination: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        case .f16:
            for i in 0..<count {
                destination[i] = Float(Float16(bitPattern: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .bf16:
            for i in 0..<count {
                destination[i] = bf16ToFloat(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            }
        case .f64:
            for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .i64:
            for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .i32:
            for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .i16:
            for i in 0..<count { destination[i] = Float(source.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
        case .i8:
            for i in 0..<count { destination[i] = Float(source.load(fromByteOffset: i, as: Int8.self)) }
        case .u8, .bool:
            for i in 0..<count { destination[i] = Float(source.load(fromByteOffset: i, as: UInt8.self)) }
        }
    }

    /// Converts floats to the little-endian bytes of `dtype` (F32, F16 or BF16).
    public static func fromFloat(_ source: UnsafeBufferPointer<Float>, to dtype: DType,
                                 into destination: UnsafeMutableRawPointer) {
        switch dtype {
        case .f32:
            destination.copyMemory(from: source.baseAddress!, byteCount: source.count * 4)
        case .f16:
            for i in 0..<source.count {
                destination.storeBytes(of: Float16(source[i]).bitPattern, toByteOffset: 2 * i, as: UInt16.self)
            }
        case .bf16:
            for i in 0..<source.count {
                destination.storeBytes(of: floatToBF16(source[i]), toByteOffset: 2 * i, as: UInt16.self)
            }
        default:
            preconditionFailure("fromFloat supports F32, F16 and BF16, not \(dtype.rawValue)")
        }
    }
}
