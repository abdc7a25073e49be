// Vectorised exponential for softmax, log-sum-exp and GELU.
//
// Foundation's expf/tanhf are scalar calls (~10–20 ns each); GPT-2 small at context
// 1024 evaluates GELU on 38M values and softmax on 75M scores per forward pass, so
// a SIMD exp matters. Accuracy: a 7th-order Taylor polynomial on |r| ≤ ln2/2 has
// truncation error below 6e-9 relative, so rounding (a few ulp, ~2e-7) dominates.

/// The vector type of the element-wise operations: as wide as the build's registers
/// allow (see SIMDGemmKernel.swift), and at least two SSE registers wide otherwise so
/// that independent halves overlap.
#if EASYQUANT_AVX512
typealias FloatVector = SIMD16<Float>
typealias IntVector = SIMD16<Int32>
#else
typealias FloatVector = SIMD8<Float>
typealias IntVector = SIMD8<Int32>
#endif

/// 1.5·2^23: adding it to a float of magnitude below 2^22 rounds to the nearest integer
/// (ties to even, the hardware default) and leaves that integer in the low mantissa bits.
let roundingMagic: Float = 12_582_912

/// Round-to-nearest-even of each lane, returned as integers; valid for |x| < 2^22.
@inline(__always)
func roundToInt(_ x: FloatVector) -> IntVector {
    let t = x + FloatVector(repeating: roundingMagic)
    return unsafeBitCast(t, to: IntVector.self) &- IntVector(repeating: 0x4B40_0000)
}

/// e^x per lane. Below −87 the result is e^-87 ≈ 1.6e-38 instead of a smaller value
/// (harmless next to the 1 that softmax and log-sum-exp always have after subtracting
/// the maximum, and it keeps results out of the slow denormal range); above 88.72,
/// where float overflows, it is +∞.
@inline(__always)
func vexp(_ x: FloatVector) -> FloatVector {
    let log2e: Float = 1.442_695_040_888_963_4
    // ln 2 split in two so that n·ln2Hi is exact for |n| ≤ 2^9 (ln2Hi has 9 significant bits).
    let ln2Hi: Float = 0.693_359_375
    let ln2Lo: Float = -2.121_944_400_546_905_8e-4
    // Clamp with comparisons: `clamped` keeps NaN rules that compile to scalar code.
    // 88.37 is the largest input whose n = round(x·log2 e) is still 127.
    var xc = x.replacing(with: -87, where: x .< -87)
    xc.replace(with: 88.37, where: xc .> 88.37)
    // n = round(x·log2 e), both as a float and as integer lanes, by the magic-number
    // trick (Swift's Int32→Float vector conversion is an out-of-line call in some builds).
    let t = xc * log2e + FloatVector(repeating: roundingMagic)
    let nf = t - FloatVector(repeating: roundingMagic)
    let n = unsafeBitCast(t, to: IntVector.self) &- IntVector(repeating: 0x4B40_0000)
    // r = x − n·ln2, |r| ≤ ln2/2 (plus rounding).
    var r = xc - nf * ln2Hi
    r = r - nf * ln2Lo
    // e^r = 1 + r + r²(1/2 + r(1/6 + r(1/24 + r(1/120 + r(1/720 + r/5040))))).
    var p = FloatVector(repeating: 1.0 / 5040)
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * (r * r) + r + 1
    // 2^n built from its bit pattern: n + 127 in the exponent field (n ∈ [-126, 127]).
    let scale = unsafeBitCast((n &+ 127) &<< 23, to: FloatVector.self)
    return (p * scale).replacing(with: .infinity, where: x .> 88.72)
}

extension FloatVector {
    /// Loads `Self.scalarCount` floats from a possibly unaligned address.
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> FloatVector {
        UnsafeRawPointer(p).loadUnaligned(as: FloatVector.self)
    }

    /// Stores the lanes at a possibly unaligned address.
    @inline(__always)
    func store(_ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: self, as: FloatVector.self)
    }

    /// The lanes of `p[0..<count]`, the rest filled with `fill`, for loop tails.
    @inline(__always)
    static func loadPartial(_ p: UnsafePointer<Float>, count: Int, fill: Float) -> FloatVector {
        var v = FloatVector(repeating: fill)
        for i in 0..<count { v[i] = p[i] }
        return v
    }

    /// Stores the first `count` lanes, for loop tails.
    @inline(__always)
    func storePartial(_ p: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { p[i] = self[i] }
    }
}
