/// Portable matrix products in pure Swift: packed panels, a register-blocked SIMD
/// kernel (`gemmMicroKernel`) and work split over threads with `Parallel`.
///
/// The int8 product runs on the float kernel: products of two int8 values are exact
/// in Float (|x·y| ≤ 2^14), and so is every partial sum while it stays below 2^24 in
/// magnitude, which `kcMax` = 256 guarantees (256·2^14 = 2^22). Each K block's float
/// tile is then converted to Int32 and added in integers, so results are exact for
/// any K. Swift's integer SIMD widenings (Int8→Int16→Int32) compile to out-of-line
/// calls in the baseline build, which made an integer kernel slower than this.
public struct SIMDBackend: MatrixBackend {
    /// "simd".
    public var name: String { "simd" }
    /// Threads each call uses.
    public let threads: Int

    /// A backend that spreads each product over `threads` threads.
    public init(threads: Int = Parallel.defaultThreads) {
        precondition(threads > 0, "SIMDBackend: threads must be positive")
        self.threads = threads
    }

    /// `C = alpha·op(A)·op(B) + beta·C` in float; see `MatrixBackend.sgemm`.
    public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        precheckGemmShape("sgemm", transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 {
            scaleMatrix(c, m: m, n: n, ldc: ldc, beta: beta)
            return
        }
        blockedGemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                    threads: threads) { tile, i0, j0, rows, cols, first in
            for r in 0..<rows {
                let t = tile + r * gemmNR
                let row = c + (i0 + r) * ldc + j0
                if !first {
                    for j in 0..<cols { row[j] += alpha * t[j] }
                } else if beta == 0 {
                    for j in 0..<cols { row[j] = alpha * t[j] }
                } else {
                    for j in 0..<cols { row[j] = beta * row[j] + alpha * t[j] }
                }
            }
        }
    }

    /// Exact `C = op(A)·op(B)` from int8 to int32; see `MatrixBackend.gemmS8S8S32`.
    public func gemmS8S8S32(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                            a: UnsafePointer<Int8>, lda: Int, b: UnsafePointer<Int8>, ldb: Int,
                            c: UnsafeMutablePointer<Int32>, ldc: Int) {
        precheckGemmShape("gemmS8S8S32", transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
            return
        }
        blockedGemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                    threads: threads) { tile, i0, j0, rows, cols, first in
            for r in 0..<rows {
                let t = tile + r * gemmNR
                let row = c + (i0 + r) * ldc + j0
                // The tile holds integers below 2^24 in magnitude, so Int32(t[j]) is exact.
                if first {
                    for j in 0..<cols { row[j] = Int32(t[j]) }
                } else {
                    for j in 0..<cols { row[j] &+= Int32(t[j]) }
                }
            }
        }
    }
}

/// Element types the SIMD backend packs into float panels.
protocol GemmPackable {
    var gemmFloat: Float { get }
}

extension Float: GemmPackable {
    @inline(__always) var gemmFloat: Float { self }
}

extension Int8: GemmPackable {
    @inline(__always) var gemmFloat: Float { Float(self) }
}

/// Depth of one packed block. At most 1024 keeps the int8 path's float sums exact
/// (see `SIMDBackend`); 256 keeps a B micro-panel (256×NR floats) in L1/L2.
let gemmKC = 256
/// Columns of B packed at once: kc×nc floats (512 KB at 256×512) fit a core's 1 MB L2
/// beside the A block. On Zen 4 256…4096 all measured within ~5% (the B micro-panel in
/// L1 is what matters); smaller blocks also give more tasks to share out.
let gemmNC = 512
/// Row panels of A one task computes against its B panels: 8 panels × 6 rows × 256 ×
/// 16 bytes (pre-broadcast) = 192 KB in the baseline build, 8 × 12 × 256 × 4 = 96 KB with
/// AVX-512; either way in a core's L2 next to the B block.
let gemmMCPanels = 8

/// Classic Goto-style blocking: for each K block, pack all of A's rows; for each block
/// of N columns, pack B; then tasks of (row panels × column panels) run the kernel and
/// hand each MR×NR tile to `store(tile, i0, j0, rows, cols, firstKBlock)`.
func blockedGemm<T: GemmPackable>(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                  a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
                                  threads: Int,
                                  store: (UnsafePointer<Float>, Int, Int, Int, Int, Bool) -> Void) {
    let mr = gemmMR, nr = gemmNR
    let mPanels = (m + mr - 1) / mr
    let kcMax = min(k, gemmKC)
    let ncMax = min(gemmNC, (n + nr - 1) / nr * nr)
    let aPanel = mr * gemmARepeat // floats per k step of a packed A panel
    let packedA = UnsafeMutableRawPointer.allocate(byteCount: mPanels * aPanel * kcMax * 4, alignment: 64)
        .bindMemory(to: Float.self, capacity: mPanels * aPanel * kcMax)
    let packedB = UnsafeMutableRawPointer.allocate(byteCount: ncMax * kcMax * 4, alignment: 64)
        .bindMemory(to: Float.self, capacity: ncMax * kcMax)
    defer {
        packedA.deallocate()
        packedB.deallocate()
    }

    var pc = 0
    while pc < k {
        let kc = min(kcMax, k - pc)
        // Pack A[:, pc..<pc+kc] as MR-row panels, k-major, zero-padded past row m.
        Parallel.forRanges(mPanels, threads: threads, minimumChunk: 8) { panels in
            for p in panels {
                packA(transA: transA, a: a, lda: lda, i0: p * mr, rows: min(mr, m - p * mr),
                      p0: pc, kc: kc, into: packedA + p * aPanel * kc)
            }
        }
        var jc = 0
        while jc < n {
            let nc = min(ncMax, n - jc)
            let nPanels = (nc + nr - 1) / nr
            Parallel.forRanges(nPanels, threads: threads, minimumChunk: 8) { panels in
                for q in panels {
                    let j0 = jc + q * nr
                    packB(transB: transB, b: b, ldb: ldb, j0: j0, cols: min(nr, n - j0),
                          p0: pc, kc: kc, into: packedB + q * nr * kc)
                }
            }
            // Tasks: row groups of up to gemmMCPanels panels × column groups; split the
            // columns finer when there are few rows so both cores get work.
            let rowGroups = (mPanels + gemmMCPanels - 1) / gemmMCPanels
            let colGroups = max(1, min(nPanels, (4 * threads + rowGroups - 1) / rowGroups))
            let panelsPerColGroup = (nPanels + colGroups - 1) / colGroups
            let first = pc == 0
            Parallel.forEach(rowGroups * colGroups, threads: threads) { task in
                let rg = task / colGroups, cg = task % colGroups
                let tileBuffer = UnsafeMutableRawPointer.allocate(byteCount: mr * nr * 4, alignment: 64)
                    .bindMemory(to: Float.self, capacity: mr * nr)
                defer { tileBuffer.deallocate() }
                let pLo = rg * gemmMCPanels, pHi = min(mPanels, pLo + gemmMCPanels)
                let qLo = cg * panelsPerColGroup, qHi = min(nPanels, qLo + panelsPerColGroup)
                if qLo >= qHi { return }
                for q in qLo..<qHi {
                    let j0 = jc + q * nr
                    let bPanel = packedB + q * nr * kc
                    for p in pLo..<pHi {
                        gemmMicroKernel(kc: kc, a: packedA + p * aPanel * kc, b: bPanel, tile: tileBuffer)
                        store(tileBuffer, p * mr, j0, min(mr, m - p * mr), min(nr, n - j0), first)
                    }
                }
            }
            jc += nc
        }
        pc += kc
    }
}

/// Packs rows i0..<i0+rows, depth p0..<p0+kc of op(A) as dst[(k·MR + r)·R + l] for each
/// of R = `gemmARepeat` copies, zero-filling rows past `rows`.
@inline(__always)
private func packA<T: GemmPackable>(transA: Bool, a: UnsafePointer<T>, lda: Int, i0: Int, rows: Int,
                                    p0: Int, kc: Int, into dst: UnsafeMutablePointer<Float>) {
    let mr = gemmMR, rep = gemmARepeat
    if rows < mr { dst.update(repeating: 0, count: mr * rep * kc) }
    if transA {
        // op(A)(i, p) = a[p·lda + i]: each k step reads `rows` consecutive values.
        for p in 0..<kc {
            let src = a + (p0 + p) * lda + i0
            for r in 0..<rows {
                let v = src[r].gemmFloat
                for l in 0..<rep { dst[(p * mr + r) * rep + l] = v }
            }
        }
    } else {
        for r in 0..<rows {
            let src = a + (i0 + r) * lda + p0
            for p in 0..<kc {
                let v = src[p].gemmFloat
                for l in 0..<rep { dst[(p * mr + r) * rep + l] = v }
            }
        }
    }
}

/// Packs columns j0..<j0+cols, depth p0..<p0+kc of op(B) as dst[k·NR + c], zero-filling
/// columns past `cols`.
@inline(__always)
private func packB<T: GemmPackable>(transB: Bool, b: UnsafePointer<T>, ldb: Int, j0: Int, cols: Int,
                                    p0: Int, kc: Int, into dst: UnsafeMutablePointer<Float>) {
    let nr = gemmNR
    if cols < nr { dst.update(repeating: 0, count: nr * kc) }
    if transB {
        // op(B)(p, j) = b[j·ldb + p]: read each stored row contiguously.
        for c in 0..<cols {
            let src = b + (j0 + c) * ldb + p0
            for p in 0..<kc { dst[p * nr + c] = src[p].gemmFloat }
        }
    } else {
        for p in 0..<kc {
            let src = b + (p0 + p) * ldb + j0
            let row = dst + p * nr
            for c in 0..<cols { row[c] = src[c].gemmFloat }
        }
    }
}
