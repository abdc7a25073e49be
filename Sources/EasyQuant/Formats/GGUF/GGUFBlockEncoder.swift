/// Encodes f32 values into ggml's block formats (layouts: docs/GGUF.md), the inverse of
/// `GGUFBlockDecoder` for the types EasyQuant writes.
///
/// F32 is copied; F16 and BF16 round each value to nearest, ties to even (through
/// `FloatConversion`). Q8_0, Q4_0 and Q4_1 follow ggml's reference quantizers
/// (`quantize_row_q8_0_ref`, `_q4_0_ref`, `_q4_1_ref` in ggml-quants.c) operation by operation
/// in f32: the block's range, the step `d`, its reciprocal, then each code from `x · (1/d)`.
/// Done in that order the bytes equal `gguf.quants.quantize`'s (GGUFWriterTests).
///
/// Nothing encoded here turns into an infinity: a value (F16, BF16) or a block's `d` or `m`
/// (f16) that would round to ±inf is reported instead, so a file EasyQuant writes is one its
/// own reader accepts. Inputs must be finite; the caller checks that first.
enum GGUFBlockEncoder {
    /// The types `encode` writes.
    static let encodable: [GGMLType] = [.F32, .F16, .BF16, .Q8_0, .Q4_0, .Q4_1]

    /// Why a run of values could not be encoded.
    enum Failure: Equatable {
        /// Element `index` is finite but beyond the type's range (F16 above 65504, BF16 near f32's maximum).
        case valueOverflow(index: Int)
        /// Block `block`'s step or minimum, `value`, is beyond f16's range.
        case scaleOverflow(block: Int, value: Float)
    }

    /// Encodes `count` finite floats at `x` (a multiple of `type.blockSize`) as `type` into
    /// `out`, which has room for `count / type.blockSize × type.bytesPerBlock` bytes.
    /// Returns nil on success.
    static func encode(_ type: GGMLType, _ x: UnsafePointer<Float>, count: Int,
                       into out: UnsafeMutableRawPointer) -> Failure? {
        switch type {
        case .F32:
            out.copyMemory(from: x, byteCount: count &* 4)
            return nil
        case .F16, .BF16:
            FloatConversion.fromFloat(UnsafeBufferPointer(start: x, count: count), to: type == .F16 ? .f16 : .bf16, into: out)
            // An infinite result came from a finite input too large for the type.
            let infinity: UInt16 = type == .F16 ? 0x7C00 : 0x7F80
            for i in 0..<count where out.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self) & 0x7FFF == infinity {
                return .valueOverflow(index: i)
            }
            return nil
        case .Q8_0, .Q4_0, .Q4_1:
            let block: (UnsafePointer<Float>, UnsafeMutableRawPointer) -> Float?
            switch type {
            case .Q8_0: block = q8_0
            case .Q4_0: block = q4_0
            default: block = q4_1
            }
            for b in 0..<(count / 32) {
                if let bad = block(x + b &* 32, out + b &* type.bytesPerBlock) { return .scaleOverflow(block: b, value: bad) }
            }
            return nil
        default:
            preconditionFailure("GGUFBlockEncoder cannot write \(type.name); callers check `encodable`")
        }
    }

    // MARK: Fields

    /// Stores `value` as a little-endian f16 at `offset`, or returns false if it rounds to ±inf.
    @inline(__always) static func storeHalf(_ value: Float, _ y: UnsafeMutableRawPointer, _ offset: Int) -> Bool {
        let h = Float16(value)
        y.storeBytes(of: h.bitPattern.littleEndian, toByteOffset: offset, as: UInt16.self)
        return !h.isInfinite
    }

    /// A 4-bit code from `v` as ggml gets it: truncated toward zero (`(int8_t)v`), at most 15.
    ///
    /// Finite steps give v in [0, 16.5]. A step so small (block maximum below ~3.7e-37)
    /// that its reciprocal overflows makes v infinite or NaN; C's conversion of those is
    /// undefined, and on x86 (cvttss2si) gives 0, as does numpy: so 0 here, not a trap.
    @inline(__always) static func nibble(_ v: Float) -> UInt8 {
        guard v.isFinite, v >= 0 else { return 0 }
        return v >= 15 ? 15 : UInt8(v)
    }

    /// An 8-bit code from a rounded `v`: non-finite values become 0 as in `nibble`; finite
    /// ones lie within ±127 (and a hair), clamped only to rule out a trap.
    @inline(__always) static func int8Code(_ v: Float) -> Int8 {
        guard v.isFinite else { return 0 }
        return Int8(Swift.min(Swift.max(v, -128), 127))
    }

    // MARK: 32-element blocks

    /// Q8_0: d = max|x| / 127; q = round(x · (1/d)), halves away from zero (C's `roundf`).
    /// Returns d if it overflows f16.
    static func q8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) -> Float? {
        var amax: Float = 0
        for j in 0..<32 { amax = Swift.max(amax, abs(x[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        guard storeHalf(d, y, 0) else { return d }
        for j in 0..<32 {
            let code = int8Code((x[j] * id).rounded(.toNearestOrAwayFromZero))
            y.storeBytes(of: UInt8(bitPattern: code), toByteOffset: 2 &+ j, as: UInt8.self)
        }
        return nil
    }

    /// Q4_0: the value of largest magnitude `max` (the first, if two tie) sets d = max / −8;
    /// q = min(15, trunc(x · (1/d) + 8.5)). Low nibbles hold elements 0-15, high 16-31.
    static func q4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) -> Float? {
        var amax: Float = 0, max: Float = 0
        for j in 0..<32 where amax < abs(x[j]) {
            amax = abs(x[j])
            max = x[j]
        }
        let d = max / -8
        let id: Float = d != 0 ? 1 / d : 0
        guard storeHalf(d, y, 0) else { return d }
        for j in 0..<16 {
            let lo = nibble(x[j] * id + 8.5), hi = nibble(x[j &+ 16] * id + 8.5)
            y.storeBytes(of: lo | hi << 4, toByteOffset: 2 &+ j, as: UInt8.self)
        }
        return nil
    }

    /// Q4_1: d = (max − min) / 15, m = min; q = min(15, trunc((x − min) · (1/d) + 0.5)).
    static func q4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) -> Float? {
        var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            if x[j] < lo { lo = x[j] }
            if x[j] > hi { hi = x[j] }
        }
        let d = (hi - lo) / 15
        let id: Float = d != 0 ? 1 / d : 0
        guard storeHalf(d, y, 0) else { return d }
        guard storeHalf(lo, y, 2) else { return lo }
        for j in 0..<16 {
            let a = nibble((x[j] - lo) * id + 0.5), b = nibble((x[j &+ 16] - lo) * id + 0.5)
            y.storeBytes(of: a | b << 4, toByteOffset: 4 &+ j, as: UInt8.self)
        }
        return nil
    }
}
