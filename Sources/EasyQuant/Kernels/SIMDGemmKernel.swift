// The register-blocked inner kernel of the portable SIMD backend and its tile geometry.
//
// Swift compiles for baseline x86-64 (SSE2) unless the package is built with a target
// CPU (see Package.swift: EASYQUANT_SIMD=avx2 or avx512). The vector width is chosen to
// match the registers the build may use, so the 6×2 accumulator tile plus two B
// vectors and one broadcast A value (15 registers) never spills:
//   baseline: SIMD4<Float>  (xmm, 16 registers)  → 6×8 tile
//   avx2:     SIMD8<Float>  (ymm, 16 registers)  → 6×16 tile, fused multiply-add
//   avx512:   SIMD16<Float> (zmm, 32 registers)  → 6×32 tile, fused multiply-add
// Without FMA in the target, `addingProduct` must stay exactly rounded and becomes a
// libm call per lane, so the baseline kernel multiplies and adds separately.

#if EASYQUANT_AVX512
typealias GemmVector = SIMD16<Float>
#elseif EASYQUANT_AVX2
typealias GemmVector = SIMD8<Float>
#else
typealias GemmVector = SIMD4<Float>
#endif

/// Rows of C computed by one kernel call.
let gemmMR = 6
/// Columns of C computed by one kernel call (two vectors).
let gemmNR = 2 * GemmVector.scalarCount

/// A short description of the SIMD build, for benchmark reports.
public enum SIMDKernelInfo {
    /// e.g. "baseline x86-64 (SSE2), 6x8 float tile".
    public static var description: String {
        #if EASYQUANT_AVX512
        let isa = "AVX-512 build (EASYQUANT_SIMD=avx512), FMA"
        #elseif EASYQUANT_AVX2
        let isa = "AVX2 build (EASYQUANT_SIMD=avx2), FMA"
        #else
        let isa = "baseline build (no target CPU), mul+add"
        #endif
        return "\(isa), \(gemmMR)x\(gemmNR) float tile"
    }
}

@inline(__always)
private func mulAdd(_ acc: inout GemmVector, _ x: GemmVector, _ y: GemmVector) {
    #if EASYQUANT_AVX2 || EASYQUANT_AVX512
    acc.addProduct(x, y)
    #else
    acc += x * y
    #endif
}

/// tile[r·NR + c] = Σ_k a[k·MR + r] · b[k·NR + c] for an MR×NR tile.
///
/// `a` is a packed MR-row panel (k-major), `b` a packed NR-column panel (k-major); both
/// are padded with zeros, so the kernel never needs an edge case.
@inline(never)
func gemmMicroKernel(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) {
    let w = GemmVector.scalarCount
    var c00 = GemmVector(), c01 = GemmVector()
    var c10 = GemmVector(), c11 = GemmVector()
    var c20 = GemmVector(), c21 = GemmVector()
    var c30 = GemmVector(), c31 = GemmVector()
    var c40 = GemmVector(), c41 = GemmVector()
    var c50 = GemmVector(), c51 = GemmVector()
    var pa = a
    var pb = UnsafeRawPointer(b)
    for _ in 0..<kc {
        let b0 = pb.loadUnaligned(as: GemmVector.self)
        let b1 = pb.loadUnaligned(fromByteOffset: w * 4, as: GemmVector.self)
        var x = GemmVector(repeating: pa[0])
        mulAdd(&c00, x, b0); mulAdd(&c01, x, b1)
        x = GemmVector(repeating: pa[1])
        mulAdd(&c10, x, b0); mulAdd(&c11, x, b1)
        x = GemmVector(repeating: pa[2])
        mulAdd(&c20, x, b0); mulAdd(&c21, x, b1)
        x = GemmVector(repeating: pa[3])
        mulAdd(&c30, x, b0); mulAdd(&c31, x, b1)
        x = GemmVector(repeating: pa[4])
        mulAdd(&c40, x, b0); mulAdd(&c41, x, b1)
        x = GemmVector(repeating: pa[5])
        mulAdd(&c50, x, b0); mulAdd(&c51, x, b1)
        pa += 6
        pb += 2 * w * 4
    }
    let t = UnsafeMutableRawPointer(tile)
    let row = 2 * w * 4
    t.storeBytes(of: c00, toByteOffset: 0 * row, as: GemmVector.self)
    t.storeBytes(of: c01, toByteOffset: 0 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c10, toByteOffset: 1 * row, as: GemmVector.self)
    t.storeBytes(of: c11, toByteOffset: 1 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c20, toByteOffset: 2 * row, as: GemmVector.self)
    t.storeBytes(of: c21, toByteOffset: 2 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c30, toByteOffset: 3 * row, as: GemmVector.self)
    t.storeBytes(of: c31, toByteOffset: 3 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c40, toByteOffset: 4 * row, as: GemmVector.self)
    t.storeBytes(of: c41, toByteOffset: 4 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c50, toByteOffset: 5 * row, as: GemmVector.self)
    t.storeBytes(of: c51, toByteOffset: 5 * row + w * 4, as: GemmVector.self)
}
