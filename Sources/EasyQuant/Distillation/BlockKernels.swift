/// The arithmetic every trainable block shares: matrix products split over threads, linear
/// layers in either storage order and their gradients, and causal attention with grouped-
/// query heads forward and backward. Products go through `Scalar.gemm` (oneDNN's sgemm for
/// Float, plain loops for Double).
struct BlockKernels<Scalar: TrainingScalar> {
    /// Backend and thread count (Double ignores the backend).
    let context: ComputeContext

    // MARK: Linear layers

    /// y = x·W + b for W stored [in, out] (`inputMajor`, GPT-2's Conv1D), y = x·Wᵀ + b for W
    /// stored [out, in] (PyTorch's Linear); y += … instead when `accumulate` (residuals).
    /// x is [n, k], y [n, m]; `bias` may be nil.
    func linear(_ x: UnsafePointer<Scalar>, rows n: Int, weight: UnsafePointer<Scalar>, bias: UnsafePointer<Scalar>?,
                inputs k: Int, outputs m: Int, inputMajor: Bool, into y: UnsafeMutablePointer<Scalar>, accumulate: Bool) {
        product(transA: false, transB: !inputMajor, m: n, n: m, k: k, alpha: 1, a: x, lda: k, b: weight, ldb: inputMajor ? m : k,
                beta: accumulate ? 1 : 0, c: y, ldc: m)
        if let bias { rows(n) { r in for j in 0..<m { y[r * m + j] += bias[j] } } }
    }

    /// The gradients of `linear` given dy [n, m]: ∂L/∂W = xᵀ·dy ([in, out]) or dyᵀ·x ([out, in]),
    /// written; ∂L/∂b = Σ_rows dy, added to `biasGradient` when there is a bias; ∂L/∂x = dy·Wᵀ
    /// or dy·W, written, or added when `accumulateInput` (an input read by several layers).
    func linearBackward(_ x: UnsafePointer<Scalar>, rows n: Int, weight: UnsafePointer<Scalar>, inputs k: Int, outputs m: Int,
                        inputMajor: Bool, outputGradient dy: UnsafePointer<Scalar>, weightGradient dW: UnsafeMutablePointer<Scalar>,
                        biasGradient db: UnsafeMutablePointer<Scalar>?, inputGradient dx: UnsafeMutablePointer<Scalar>,
                        accumulateInput: Bool) {
        if inputMajor {
            product(transA: true, transB: false, m: k, n: m, k: n, alpha: 1, a: x, lda: k, b: dy, ldb: m, beta: 0, c: dW, ldc: m)
        } else {
            product(transA: true, transB: false, m: m, n: k, k: n, alpha: 1, a: dy, lda: m, b: x, ldb: k, beta: 0, c: dW, ldc: k)
        }
        if let db { for r in 0..<n { for j in 0..<m { db[j] += dy[r * m + j] } } }
        product(transA: false, transB: inputMajor, m: n, n: k, k: m, alpha: 1, a: dy, lda: m, b: weight, ldb: inputMajor ? m : k,
                beta: accumulateInput ? 1 : 0, c: dx, ldc: k)
    }

    // MARK: Attention

    /// Row-major q [windows·tokens, heads·d], k and v [windows·tokens, kvHeads·d] with leading
    /// dimensions (q, k and v may be column ranges of one fused matrix, as GPT-2's q|k|v).
    struct Projections {
        var q: UnsafeMutablePointer<Scalar>, ldq: Int
        var k: UnsafeMutablePointer<Scalar>, ldk: Int
        var v: UnsafeMutablePointer<Scalar>, ldv: Int
    }

    /// Causal attention per (window, query head): P = softmax(Q·Kᵀ/√d) over the keys j ≤ i,
    /// o = P·V, where query head h reads key/value head h / (heads / kvHeads). P is kept in
    /// `probs` [windows, heads, T, T] (zero above the diagonal); o goes to `out` [n, heads·d].
    func causalAttention(_ x: Projections, windows: Int, tokens t: Int, heads: Int, kvHeads: Int, headSize d: Int,
                         probs: UnsafeMutablePointer<Scalar>, into out: UnsafeMutablePointer<Scalar>, ldo: Int) {
        let scale = 1 / Scalar(d).squareRoot(), group = heads / kvHeads
        Parallel.forEach(windows * heads, threads: context.threads) { item in
            let b = item / heads, h = item % heads
            let q = x.q + b * t * x.ldq + h * d, k = x.k + b * t * x.ldk + (h / group) * d, v = x.v + b * t * x.ldv + (h / group) * d
            let p = probs + item * t * t
            Scalar.gemm(context.backend, transA: false, transB: true, m: t, n: t, k: d, alpha: scale,
                        a: q, lda: x.ldq, b: k, ldb: x.ldk, beta: 0, c: p, ldc: t)
            for i in 0..<t {
                let row = p + i * t
                var top = -Scalar.infinity
                for j in 0...i { top = max(top, row[j]) }
                var sum: Scalar = 0
                for j in 0...i { row[j] = Scalar.exp(row[j] - top); sum += row[j] }
                let inv = 1 / sum
                for j in 0...i { row[j] *= inv }
                for j in (i + 1)..<t { row[j] = 0 }
            }
            Scalar.gemm(context.backend, transA: false, transB: false, m: t, n: d, k: t, alpha: 1,
                        a: p, lda: t, b: v, ldb: x.ldv, beta: 0, c: out + b * t * ldo + h * d, ldc: ldo)
        }
    }

    /// The gradients of `causalAttention` given ∂L/∂o (`outputGradient`, leading dimension
    /// `ldo`), written to `gradients` (laid out as the projections). Per query head, with
    /// S = Q·Kᵀ/√d: dP = do·Vᵀ, dV = Pᵀ·do; the softmax Jacobian gives dS_ij = P_ij(dP_ij −
    /// Σ_k P_ik dP_ik) (0 where masked, since P is 0 there); dQ = dS·K/√d, dK = dSᵀ·Q/√d.
    /// A key/value head shared by a group of query heads gets the sum of their dK and dV, so
    /// the work is split by (window, kv head), each item walking its group in order.
    func causalAttentionBackward(_ x: Projections, windows: Int, tokens t: Int, heads: Int, kvHeads: Int, headSize d: Int,
                                 probs: UnsafePointer<Scalar>, outputGradient dOut: UnsafePointer<Scalar>, ldo: Int,
                                 into g: Projections) {
        let scale = 1 / Scalar(d).squareRoot(), group = heads / kvHeads
        Parallel.forEach(windows * kvHeads, threads: context.threads) { item in
            let b = item / kvHeads, kvHead = item % kvHeads
            let k = x.k + b * t * x.ldk + kvHead * d, v = x.v + b * t * x.ldv + kvHead * d
            let dk = g.k + b * t * g.ldk + kvHead * d, dv = g.v + b * t * g.ldv + kvHead * d
            let ds = UnsafeMutablePointer<Scalar>.allocate(capacity: t * t)
            defer { ds.deallocate() }
            let serial = context.backend
            for h in (kvHead * group)..<((kvHead + 1) * group) {
                let first: Scalar = h == kvHead * group ? 0 : 1   // later heads of the group add to dK and dV
                let q = x.q + b * t * x.ldq + h * d, dq = g.q + b * t * g.ldq + h * d
                let dO = dOut + b * t * ldo + h * d
                let p = probs + (b * heads + h) * t * t
                Scalar.gemm(serial, transA: false, transB: true, m: t, n: t, k: d, alpha: 1, a: dO, lda: ldo, b: v, ldb: x.ldv,
                            beta: 0, c: ds, ldc: t)                                                     // dP
                Scalar.gemm(serial, transA: true, transB: false, m: t, n: d, k: t, alpha: 1, a: p, lda: t, b: dO, ldb: ldo,
                            beta: first, c: dv, ldc: g.ldv)                                             // dV
                for i in 0..<t {
                    let pr = p + i * t, sr = ds + i * t
                    var dot: Scalar = 0
                    for j in 0...i { dot += pr[j] * sr[j] }
                    for j in 0...i { sr[j] = pr[j] * (sr[j] - dot) }
                    for j in (i + 1)..<t { sr[j] = 0 }
                }
                Scalar.gemm(serial, transA: false, transB: false, m: t, n: d, k: t, alpha: scale, a: ds, lda: t, b: k, ldb: x.ldk,
                            beta: 0, c: dq, ldc: g.ldq)                                                 // dQ
                Scalar.gemm(serial, transA: true, transB: false, m: t, n: d, k: t, alpha: scale, a: ds, lda: t, b: q, ldb: x.ldq,
                            beta: first, c: dk, ldc: g.ldk)                                             // dK
            }
        }
    }

    // MARK: Work splitting

    /// A matrix product split by rows of C over the context's threads, each part on the
    /// single-threaded backend. (Mixing oneDNN's own OpenMP threads with the Dispatch threads
    /// of the attention and elementwise loops made OpenMP's idle threads spin against them.)
    func product(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Scalar, a: UnsafePointer<Scalar>, lda: Int,
                 b: UnsafePointer<Scalar>, ldb: Int, beta: Scalar, c: UnsafeMutablePointer<Scalar>, ldc: Int) {
        Parallel.forRanges(m, threads: context.threads, minimumChunk: 16) { rows in
            // Rows i of op(A) are rows of A, or columns of the stored A when transposed.
            Scalar.gemm(context.backend, transA: transA, transB: transB, m: rows.count, n: n, k: k, alpha: alpha,
                        a: transA ? a + rows.lowerBound : a + rows.lowerBound * lda, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: c + rows.lowerBound * ldc, ldc: ldc)
        }
    }

    /// Runs `body` for every row in 0..<n, split over the context's threads.
    func rows(_ n: Int, _ body: (Int) -> Void) {
        Parallel.forRanges(n, threads: context.threads, minimumChunk: 32) { range in for r in range { body(r) } }
    }

    /// Runs `body` over 0..<count in chunks, for elementwise work.
    func elements(_ count: Int, _ body: (Range<Int>) -> Void) {
        Parallel.forRanges(count, threads: context.threads, minimumChunk: 4096, body)
    }
}
