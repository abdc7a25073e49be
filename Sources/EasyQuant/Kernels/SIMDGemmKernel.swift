// The register-blocked inner kernel of the portable SIMD backend and its tile geometry.
//
// Swift compiles for baseline x86-64 (SSE2) unless the package is built with a target
// CPU (see Package.swift: EASYQUANT_SIMD=avx2 or avx512). The vector width is chosen to
// match the registers the build may use, so that the accumulators (MR rows × two
// vectors) plus two B vectors and one broadcast A value never spill:
//   baseline: SIMD4<Float>  (xmm, 16 registers)  → 6×8 tile, 15 registers
//   avx2:     SIMD8<Float>  (ymm, 16 registers)  → 6×16 tile, 15 registers, FMA
//   avx512:   SIMD16<Float> (zmm, 32 registers)  → 12×32 tile, 27 registers, FMA
// (12 rows instead of 6 halves the B loads per FMA; measured ~1.4× faster on Zen 4.)
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
#if EASYQUANT_AVX512
let gemmMR = 12
#else
let gemmMR = 6
#endif
/// Columns of C computed by one kernel call (two vectors).
let gemmNR = 2 * GemmVector.scalarCount
/// Copies of each A value in a packed A panel: the baseline kernel loads A pre-broadcast
/// (one vector per value); AVX2 and AVX-512 broadcast straight from memory.
#if EASYQUANT_AVX2 || EASYQUANT_AVX512
let gemmARepeat = 1
#else
let gemmARepeat = GemmVector.scalarCount
#endif

/// A short description of the SIMD build, for benchmark reports.
public enum SIMDKernelInfo {
    /// e.g. "baseline build (no target CPU), mul+add, 6x8 float tile".
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

/// Row r's A value of the current k step as a vector: one broadcast load with AVX, or
/// in the baseline build a plain load of the pre-broadcast copies (SSE2 has no broadcast
/// load, and load + shuffle measured ~1.3× slower in the kernel).
@inline(__always)
private func loadA(_ pa: UnsafeRawPointer, _ r: Int) -> GemmVector {
    #if EASYQUANT_AVX2 || EASYQUANT_AVX512
    return GemmVector(repeating: pa.load(fromByteOffset: r * 4, as: Float.self))
    #else
    return pa.loadUnaligned(fromByteOffset: r * GemmVector.scalarCount * 4, as: GemmVector.self)
    #endif
}

/// tile[r·NR + c] = Σ_k a[(k·MR + r)·ARepeat] · b[k·NR + c] for an MR×NR tile.
///
/// `a` is a packed MR-row panel (k-major, each value `gemmARepeat` times), `b` a packed
/// NR-column panel (k-major); both are padded with zeros, so the kernel never needs an
/// edge case.
@inline(never)
func gemmMicroKernel(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) {
#if EASYQUANT_AVX512
    let w = GemmVector.scalarCount
    var c0a = GemmVector(), c0b = GemmVector()
    var c1a = GemmVector(), c1b = GemmVector()
    var c2a = GemmVector(), c2b = GemmVector()
    var c3a = GemmVector(), c3b = GemmVector()
    var c4a = GemmVector(), c4b = GemmVector()
    var c5a = GemmVector(), c5b = GemmVector()
    var c6a = GemmVector(), c6b = GemmVector()
    var c7a = GemmVector(), c7b = GemmVector()
    var c8a = GemmVector(), c8b = GemmVector()
    var c9a = GemmVector(), c9b = GemmVector()
    var c10a = GemmVector(), c10b = GemmVector()
    var c11a = GemmVector(), c11b = GemmVector()
    var pa = UnsafeRawPointer(a)
    var pb = UnsafeRawPointer(b)
    for _ in 0..<kc {
        let b0 = pb.loadUnaligned(as: GemmVector.self)
        let b1 = pb.loadUnaligned(fromByteOffset: w * 4, as: GemmVector.self)
        var x = loadA(pa, 0)
        mulAdd(&c0a, x, b0); mulAdd(&c0b, x, b1)
        x = loadA(pa, 1)
        mulAdd(&c1a, x, b0); mulAdd(&c1b, x, b1)
        x = loadA(pa, 2)
        mulAdd(&c2a, x, b0); mulAdd(&c2b, x, b1)
        x = loadA(pa, 3)
        mulAdd(&c3a, x, b0); mulAdd(&c3b, x, b1)
        x = loadA(pa, 4)
        mulAdd(&c4a, x, b0); mulAdd(&c4b, x, b1)
        x = loadA(pa, 5)
        mulAdd(&c5a, x, b0); mulAdd(&c5b, x, b1)
        x = loadA(pa, 6)
        mulAdd(&c6a, x, b0); mulAdd(&c6b, x, b1)
        x = loadA(pa, 7)
        mulAdd(&c7a, x, b0); mulAdd(&c7b, x, b1)
        x = loadA(pa, 8)
        mulAdd(&c8a, x, b0); mulAdd(&c8b, x, b1)
        x = loadA(pa, 9)
        mulAdd(&c9a, x, b0); mulAdd(&c9b, x, b1)
        x = loadA(pa, 10)
        mulAdd(&c10a, x, b0); mulAdd(&c10b, x, b1)
        x = loadA(pa, 11)
        mulAdd(&c11a, x, b0); mulAdd(&c11b, x, b1)
        pa += 12 * gemmARepeat * 4
        pb += 2 * w * 4
    }
    let t = UnsafeMutableRawPointer(tile)
    let row = 2 * w * 4
    t.storeBytes(of: c0a, toByteOffset: 0 * row, as: GemmVector.self)
    t.storeBytes(of: c0b, toByteOffset: 0 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c1a, toByteOffset: 1 * row, as: GemmVector.self)
    t.storeBytes(of: c1b, toByteOffset: 1 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c2a, toByteOffset: 2 * row, as: GemmVector.self)
    t.storeBytes(of: c2b, toByteOffset: 2 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c3a, toByteOffset: 3 * row, as: GemmVector.self)
    t.storeBytes(of: c3b, toByteOffset: 3 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c4a, toByteOffset: 4 * row, as: GemmVector.self)
    t.storeBytes(of: c4b, toByteOffset: 4 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c5a, toByteOffset: 5 * row, as: GemmVector.self)
    t.storeBytes(of: c5b, toByteOffset: 5 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c6a, toByteOffset: 6 * row, as: GemmVector.self)
    t.storeBytes(of: c6b, toByteOffset: 6 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c7a, toByteOffset: 7 * row, as: GemmVector.self)
    t.storeBytes(of: c7b, toByteOffset: 7 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c8a, toByteOffset: 8 * row, as: GemmVector.self)
    t.storeBytes(of: c8b, toByteOffset: 8 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c9a, toByteOffset: 9 * row, as: GemmVector.self)
    t.storeBytes(of: c9b, toByteOffset: 9 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c10a, toByteOffset: 10 * row, as: GemmVector.self)
    t.storeBytes(of: c10b, toByteOffset: 10 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c11a, toByteOffset: 11 * row, as: GemmVector.self)
    t.storeBytes(of: c11b, toByteOffset: 11 * row + w * 4, as: GemmVector.self)
#else
    let w = GemmVector.scalarCount
    var c0a = GemmVector(), c0b = GemmVector()
    var c1a = GemmVector(), c1b = GemmVector()
    var c2a = GemmVector(), c2b = GemmVector()
    var c3a = GemmVector(), c3b = GemmVector()
    var c4a = GemmVector(), c4b = GemmVector()
    var c5a = GemmVector(), c5b = GemmVector()
    var pa = UnsafeRawPointer(a)
    var pb = UnsafeRawPointer(b)
    for _ in 0..<kc {
        let b0 = pb.loadUnaligned(as: GemmVector.self)
        let b1 = pb.loadUnaligned(fromByteOffset: w * 4, as: GemmVector.self)
        var x = loadA(pa, 0)
        mulAdd(&c0a, x, b0); mulAdd(&c0b, x, b1)
        x = loadA(pa, 1)
        mulAdd(&c1a, x, b0); mulAdd(&c1b, x, b1)
        x = loadA(pa, 2)
        mulAdd(&c2a, x, b0); mulAdd(&c2b, x, b1)
        x = loadA(pa, 3)
        mulAdd(&c3a, x, b0); mulAdd(&c3b, x, b1)
        x = loadA(pa, 4)
        mulAdd(&c4a, x, b0); mulAdd(&c4b, x, b1)
        x = loadA(pa, 5)
        mulAdd(&c5a, x, b0); mulAdd(&c5b, x, b1)
        pa += 6 * gemmARepeat * 4
        pb += 2 * w * 4
    }
    let t = UnsafeMutableRawPointer(tile)
    let row = 2 * w * 4
    t.storeBytes(of: c0a, toByteOffset: 0 * row, as: GemmVector.self)
    t.storeBytes(of: c0b, toByteOffset: 0 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c1a, toByteOffset: 1 * row, as: GemmVector.self)
    t.storeBytes(of: c1b, toByteOffset: 1 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c2a, toByteOffset: 2 * row, as: GemmVector.self)
    t.storeBytes(of: c2b, toByteOffset: 2 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c3a, toByteOffset: 3 * row, as: GemmVector.self)
    t.storeBytes(of: c3b, toByteOffset: 3 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c4a, toByteOffset: 4 * row, as: GemmVector.self)
    t.storeBytes(of: c4b, toByteOffset: 4 * row + w * 4, as: GemmVector.self)
    t.storeBytes(of: c5a, toByteOffset: 5 * row, as: GemmVector.self)
    t.storeBytes(of: c5b, toByteOffset: 5 * row + w * 4, as: GemmVector.self)
#endif
}
