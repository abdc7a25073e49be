import Foundation

/// Memory for one activation or gradient tensor, freed with its owner.
final class TrainingBuffer<S: TrainingScalar>: @unchecked Sendable {
    let p: UnsafeMutablePointer<S>
    let count: Int
    init(_ count: Int) {
        self.count = count
        p = .allocate(capacity: max(1, count))
        p.initialize(repeating: 0, count: max(1, count))
    }
    deinit { p.deallocate() }
    var array: [S] { Array(UnsafeBufferPointer(start: p, count: count)) }
}

/// One GPT-2 block with a forward pass that keeps its activations and a backward pass that
/// turns the gradient of the output into gradients for every parameter and for the input.
///
/// The block, for a batch of `windows` × `tokens` rows of width E (rows of one window are
/// consecutive):
///
///     a1 = ln_1(x);  qkv = a1·Wa + ba;  o = causal attention(qkv);  x1 = x + o·Wp + bp
///     a2 = ln_2(x1); u = a2·Wfc + bfc;  g = gelu_new(u);            y  = x1 + g·Wfp + bfp
///
/// Weights are Conv1D, stored [in, out], so a layer is a plain row-major product y = x·W + b.
/// The products go through `Scalar.gemm` (oneDNN's sgemm for Float): the linear layers as
/// one product over all rows, attention per (window, head) in parallel.
///
/// To train against fake-quantized weights, build the block from Ŵ = dequant(quant(W)): the
/// gradients it returns are ∂L/∂Ŵ, which the straight-through estimator uses as ∂L/∂W.
public struct TrainableBlock<Scalar: TrainingScalar> {
    /// The parameters the forward pass computes with.
    public let weights: BlockWeights<Scalar>
    /// Backends and thread count (Double ignores the backends).
    public let context: ComputeContext

    public init(weights: BlockWeights<Scalar>, context: ComputeContext) {
        precondition(weights.config.embeddingSize % weights.config.headCount == 0)
        self.weights = weights; self.context = context
    }

    /// What a forward pass keeps for the backward pass. `output` is the block's output y.
    public final class Activations {
        public let windows: Int
        public let tokens: Int
        // LayerNorm: normalised input x̂, 1/σ per row, and the output a = x̂·γ + β.
        let xhat1, rstd1, a1, xhat2, rstd2, a2: TrainingBuffer<Scalar>
        // qkv [N, 3E]; attention probabilities [windows, heads, T, T]; attention output o [N, E].
        let qkv, probs, attended: TrainingBuffer<Scalar>
        // After the attention residual; MLP pre-activation u and activation g [N, I]; output.
        let x1, u, g, y: TrainingBuffer<Scalar>

        init(windows: Int, tokens: Int, config c: ModelConfig) {
            self.windows = windows; self.tokens = tokens
            let n = windows * tokens, e = c.embeddingSize
            xhat1 = .init(n * e); rstd1 = .init(n); a1 = .init(n * e)
            xhat2 = .init(n * e); rstd2 = .init(n); a2 = .init(n * e)
            qkv = .init(n * 3 * e); probs = .init(windows * c.headCount * tokens * tokens); attended = .init(n * e)
            x1 = .init(n * e); u = .init(n * c.innerSize); g = .init(n * c.innerSize); y = .init(n * e)
        }

        /// The block output, [windows × tokens, E].
        public var output: [Scalar] { y.array }
    }

    // MARK: Forward

    /// Runs the block over `windows` windows of `tokens` rows each (`input` is [windows·tokens, E]).
    public func forward(_ input: [Scalar], windows: Int, tokens: Int) -> Activations {
        let c = weights.config, e = c.embeddingSize, n = windows * tokens
        precondition(input.count == n * e, "input must be windows × tokens × \(e) values")
        let act = Activations(windows: windows, tokens: tokens, config: c)
        input.withUnsafeBufferPointer { xb in
            weights.values.withUnsafeBufferPointer { wb in
                let x = xb.baseAddress!
                func w(_ t: BlockTensor) -> UnsafePointer<Scalar> { wb.baseAddress! + weights.range(of: t).lowerBound }
                // x1 = x + c_proj(attn(ln_1(x)))
                layerNorm(x, gamma: w(.norm1Weight), beta: w(.norm1Bias), rows: n, xhat: act.xhat1.p, rstd: act.rstd1.p, out: act.a1.p)
                linear(act.a1.p, rows: n, w(.attentionWeight), w(.attentionBias), in: e, out: 3 * e, into: act.qkv.p, accumulate: false)
                attentionForward(act)
                act.x1.p.update(from: x, count: n * e)
                linear(act.attended.p, rows: n, w(.attentionProjectionWeight), w(.attentionProjectionBias), in: e, out: e,
                       into: act.x1.p, accumulate: true)
                // y = x1 + mlp.c_proj(gelu_new(mlp.c_fc(ln_2(x1))))
                layerNorm(act.x1.p, gamma: w(.norm2Weight), beta: w(.norm2Bias), rows: n, xhat: act.xhat2.p, rstd: act.rstd2.p, out: act.a2.p)
                linear(act.a2.p, rows: n, w(.feedForwardWeight), w(.feedForwardBias), in: e, out: c.innerSize, into: act.u.p, accumulate: false)
                geluForward(act.u.p, into: act.g.p, count: n * c.innerSize)
                act.y.p.update(from: act.x1.p, count: n * e)
                linear(act.g.p, rows: n, w(.feedForwardProjectionWeight), w(.feedForwardProjectionBias), in: c.innerSize, out: e,
                       into: act.y.p, accumulate: true)
            }
        }
        return act
    }

    /// y = x·W + b, or y += x·W + b (for the residual connections).
    private func linear(_ x: UnsafePointer<Scalar>, rows n: Int, _ weight: UnsafePointer<Scalar>, _ bias: UnsafePointer<Scalar>,
                        in k: Int, out m: Int, into y: UnsafeMutablePointer<Scalar>, accumulate: Bool) {
        product(transA: false, transB: false, m: n, n: m, k: k, alpha: 1, a: x, lda: k, b: weight, ldb: m,
                beta: accumulate ? 1 : 0, c: y, ldc: m)
        rows(n) { r in for j in 0..<m { y[r * m + j] += bias[j] } }
    }

    /// a = x̂·γ + β with x̂ = (x − μ)/σ, σ = √(var + ε), μ and var (biased) over each row.
    private func layerNorm(_ x: UnsafePointer<Scalar>, gamma: UnsafePointer<Scalar>, beta: UnsafePointer<Scalar>, rows n: Int,
                           xhat: UnsafeMutablePointer<Scalar>, rstd: UnsafeMutablePointer<Scalar>, out: UnsafeMutablePointer<Scalar>) {
        let e = weights.config.embeddingSize, eps = Scalar(weights.config.normEpsilon)
        rows(n) { r in
            let src = x + r * e
            var mean: Scalar = 0
            for j in 0..<e { mean += src[j] }
            mean /= Scalar(e)
            var variance: Scalar = 0
            for j in 0..<e { let d = src[j] - mean; variance += d * d }
            variance /= Scalar(e)
            let inv = 1 / (variance + eps).squareRoot()
            rstd[r] = inv
            for j in 0..<e {
                let h = (src[j] - mean) * inv
                xhat[r * e + j] = h
                out[r * e + j] = h * gamma[j] + beta[j]
            }
        }
    }

    private static var geluC: Scalar { Scalar((2 / Double.pi).squareRoot()) }
    private static var geluK: Scalar { 0.044715 }

    /// gelu_new(u) = ½u(1 + tanh(c(u + k·u³))), c = √(2/π), k = 0.044715.
    private func geluForward(_ u: UnsafePointer<Scalar>, into g: UnsafeMutablePointer<Scalar>, count: Int) {
        let c = Self.geluC, k = Self.geluK
        Parallel.forRanges(count, threads: context.threads, minimumChunk: 4096) { range in
            for i in range { let v = u[i]; g[i] = 0.5 * v * (1 + Scalar.tanh(c * (v + k * v * v * v))) }
        }
    }

    /// Per (window, head): P = softmax(Q·Kᵀ/√d) over the keys j ≤ i (causal), o = P·V.
    private func attentionForward(_ act: Activations) {
        let c = weights.config, e = c.embeddingSize, heads = c.headCount, d = e / heads, t = act.tokens
        let scale = 1 / Scalar(d).squareRoot()
        let (qkv, probs, out) = (act.qkv.p, act.probs.p, act.attended.p)
        Parallel.forEach(act.windows * heads, threads: context.threads) { item in
            let b = item / heads, h = item % heads
            let q = qkv + b * t * 3 * e + h * d, k = q + e, v = q + 2 * e
            let p = probs + item * t * t
            Scalar.gemm(context.backend, transA: false, transB: true, m: t, n: t, k: d, alpha: scale,
                        a: q, lda: 3 * e, b: k, ldb: 3 * e, beta: 0, c: p, ldc: t)
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
                        a: p, lda: t, b: v, ldb: 3 * e, beta: 0, c: out + b * t * e + h * d, ldc: e)
        }
    }

    // MARK: Backward

    /// Gradients of a loss L for every parameter and for the block input, given ∂L/∂y
    /// (`outputGradient`, same shape as the output) and the activations of the forward pass.
    public func backward(_ act: Activations, outputGradient: [Scalar]) -> (weights: BlockWeights<Scalar>, input: [Scalar]) {
        let c = weights.config, e = c.embeddingSize, inner = c.innerSize, n = act.windows * act.tokens
        precondition(outputGradient.count == n * e)
        var grads = BlockWeights<Scalar>(zerosFor: c)
        var dx = outputGradient   // the residual path: ∂y/∂x1 = I and ∂x1/∂x = I, plus what the branches add
        let dg = TrainingBuffer<Scalar>(n * inner), da = TrainingBuffer<Scalar>(n * e)
        let dqkv = TrainingBuffer<Scalar>(n * 3 * e)
        weights.values.withUnsafeBufferPointer { wb in
            grads.values.withUnsafeMutableBufferPointer { gb in
                dx.withUnsafeMutableBufferPointer { dxb in
                    func w(_ t: BlockTensor) -> UnsafePointer<Scalar> { wb.baseAddress! + weights.range(of: t).lowerBound }
                    func dw(_ t: BlockTensor) -> UnsafeMutablePointer<Scalar> { gb.baseAddress! + weights.range(of: t).lowerBound }
                    let dy = dxb.baseAddress!
                    // MLP branch, y = x1 + g·Wfp + bfp: ∂L/∂Wfp = gᵀ·dy, ∂L/∂bfp = Σ_rows dy, ∂L/∂g = dy·Wfpᵀ.
                    linearBackward(act.g.p, rows: n, w(.feedForwardProjectionWeight), in: inner, out: e, outputGradient: dy,
                                   weightGradient: dw(.feedForwardProjectionWeight), biasGradient: dw(.feedForwardProjectionBias),
                                   inputGradient: dg.p)
                    geluBackward(act.u.p, gradient: dg.p, count: n * inner)   // now ∂L/∂u
                    linearBackward(act.a2.p, rows: n, w(.feedForwardWeight), in: e, out: inner, outputGradient: dg.p,
                                   weightGradient: dw(.feedForwardWeight), biasGradient: dw(.feedForwardBias), inputGradient: da.p)
                    // dy now becomes ∂L/∂x1: the residual dy plus ln_2's share.
                    layerNormBackward(da.p, xhat: act.xhat2.p, rstd: act.rstd2.p, gamma: w(.norm2Weight), rows: n,
                                      gammaGradient: dw(.norm2Weight), betaGradient: dw(.norm2Bias), addInto: dy)
                    // Attention branch, x1 = x + o·Wp + bp.
                    linearBackward(act.attended.p, rows: n, w(.attentionProjectionWeight), in: e, out: e, outputGradient: dy,
                                   weightGradient: dw(.attentionProjectionWeight), biasGradient: dw(.attentionProjectionBias),
                                   inputGradient: da.p)
                    attentionBackward(act, outputGradient: da.p, into: dqkv.p)
                    linearBackward(act.a1.p, rows: n, w(.attentionWeight), in: e, out: 3 * e, outputGradient: dqkv.p,
                                   weightGradient: dw(.attentionWeight), biasGradient: dw(.attentionBias), inputGradient: da.p)
                    // dy becomes ∂L/∂x: the residual ∂L/∂x1 plus ln_1's share.
                    layerNormBackward(da.p, xhat: act.xhat1.p, rstd: act.rstd1.p, gamma: w(.norm1Weight), rows: n,
                                      gammaGradient: dw(.norm1Weight), betaGradient: dw(.norm1Bias), addInto: dy)
                }
            }
        }
        return (grads, dx)
    }

    /// For y = x·W + b with x [n, in], W [in, out]: ∂L/∂W = xᵀ·dy, ∂L/∂b = Σ_rows dy, ∂L/∂x = dy·Wᵀ.
    private func linearBackward(_ x: UnsafePointer<Scalar>, rows n: Int, _ weight: UnsafePointer<Scalar>, in k: Int, out m: Int,
                                outputGradient dy: UnsafePointer<Scalar>, weightGradient dW: UnsafeMutablePointer<Scalar>,
                                biasGradient db: UnsafeMutablePointer<Scalar>, inputGradient dx: UnsafeMutablePointer<Scalar>) {
        product(transA: true, transB: false, m: k, n: m, k: n, alpha: 1, a: x, lda: k, b: dy, ldb: m, beta: 0, c: dW, ldc: m)
        for r in 0..<n { for j in 0..<m { db[j] += dy[r * m + j] } }
        product(transA: false, transB: true, m: n, n: k, k: m, alpha: 1, a: dy, lda: m, b: weight, ldb: m, beta: 0, c: dx, ldc: k)
    }

    /// gelu_new'(u) = ½(1 + th) + ½u(1 − th²)·c(1 + 3k·u²), th = tanh(c(u + k·u³)); multiplies
    /// the gradient in place.
    private func geluBackward(_ u: UnsafePointer<Scalar>, gradient: UnsafeMutablePointer<Scalar>, count: Int) {
        let c = Self.geluC, k = Self.geluK
        Parallel.forRanges(count, threads: context.threads, minimumChunk: 4096) { range in
            for i in range {
                let v = u[i], th = Scalar.tanh(c * (v + k * v * v * v))
                gradient[i] *= 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * c * (1 + 3 * k * v * v)
            }
        }
    }

    /// For a = x̂·γ + β, x̂ = (x − μ)·r, r = 1/√(var + ε): ∂L/∂γ = Σ_rows da·x̂, ∂L/∂β = Σ_rows da,
    /// and with g = da·γ (∂L/∂x̂), differentiating μ and r through x gives
    /// ∂L/∂x = r·(g − mean(g) − x̂·mean(g·x̂)), which is added to `dx`.
    private func layerNormBackward(_ da: UnsafePointer<Scalar>, xhat: UnsafePointer<Scalar>, rstd: UnsafePointer<Scalar>,
                                   gamma: UnsafePointer<Scalar>, rows n: Int, gammaGradient dGamma: UnsafeMutablePointer<Scalar>,
                                   betaGradient dBeta: UnsafeMutablePointer<Scalar>, addInto dx: UnsafeMutablePointer<Scalar>) {
        let e = weights.config.embeddingSize
        for r in 0..<n {
            for j in 0..<e { dGamma[j] += da[r * e + j] * xhat[r * e + j]; dBeta[j] += da[r * e + j] }
        }
        rows(n) { r in
            let g = da + r * e, h = xhat + r * e
            var meanG: Scalar = 0, meanGH: Scalar = 0
            for j in 0..<e { meanG += g[j] * gamma[j]; meanGH += g[j] * gamma[j] * h[j] }
            meanG /= Scalar(e); meanGH /= Scalar(e)
            for j in 0..<e { dx[r * e + j] += rstd[r] * (g[j] * gamma[j] - meanG - h[j] * meanGH) }
        }
    }

    /// Per (window, head), with S = Q·Kᵀ/√d, P = softmax(S) row-wise over j ≤ i, o = P·V:
    /// dP = do·Vᵀ, dV = Pᵀ·do; the softmax Jacobian gives dS_ij = P_ij(dP_ij − Σ_k P_ik dP_ik)
    /// (0 where masked, since P is 0 there); dQ = dS·K/√d, dK = dSᵀ·Q/√d.
    private func attentionBackward(_ act: Activations, outputGradient dOut: UnsafePointer<Scalar>,
                                   into dqkv: UnsafeMutablePointer<Scalar>) {
        let c = weights.config, e = c.embeddingSize, heads = c.headCount, d = e / heads, t = act.tokens
        let scale = 1 / Scalar(d).squareRoot()
        let (qkv, probs) = (act.qkv.p, act.probs.p)
        Parallel.forEach(act.windows * heads, threads: context.threads) { item in
            let b = item / heads, h = item % heads
            let q = qkv + b * t * 3 * e + h * d, k = q + e, v = q + 2 * e
            let dq = dqkv + b * t * 3 * e + h * d, dk = dq + e, dv = dq + 2 * e
            let dO = dOut + b * t * e + h * d
            let p = probs + item * t * t
            let ds = UnsafeMutablePointer<Scalar>.allocate(capacity: t * t)
            defer { ds.deallocate() }
            let serial = context.backend
            Scalar.gemm(serial, transA: false, transB: true, m: t, n: t, k: d, alpha: 1, a: dO, lda: e, b: v, ldb: 3 * e,
                        beta: 0, c: ds, ldc: t)                                                         // dP
            Scalar.gemm(serial, transA: true, transB: false, m: t, n: d, k: t, alpha: 1, a: p, lda: t, b: dO, ldb: e,
                        beta: 0, c: dv, ldc: 3 * e)                                                     // dV
            for i in 0..<t {
                let pr = p + i * t, sr = ds + i * t
                var dot: Scalar = 0
                for j in 0...i { dot += pr[j] * sr[j] }
                for j in 0...i { sr[j] = pr[j] * (sr[j] - dot) }
                for j in (i + 1)..<t { sr[j] = 0 }
            }
            Scalar.gemm(serial, transA: false, transB: false, m: t, n: d, k: t, alpha: scale, a: ds, lda: t, b: k, ldb: 3 * e,
                        beta: 0, c: dq, ldc: 3 * e)                                                     // dQ
            Scalar.gemm(serial, transA: true, transB: false, m: t, n: d, k: t, alpha: scale, a: ds, lda: t, b: q, ldb: 3 * e,
                        beta: 0, c: dk, ldc: 3 * e)                                                     // dK
        }
    }

    /// A matrix product split by rows of C over the context's threads, each part on the
    /// single-threaded backend. (Mixing oneDNN's own OpenMP threads with the Dispatch threads
    /// of the attention and elementwise loops made OpenMP's idle threads spin against them.)
    private func product(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Scalar, a: UnsafePointer<Scalar>, lda: Int,
                         b: UnsafePointer<Scalar>, ldb: Int, beta: Scalar, c: UnsafeMutablePointer<Scalar>, ldc: Int) {
        Parallel.forRanges(m, threads: context.threads, minimumChunk: 16) { rows in
            // Rows i of op(A) are rows of A, or columns of the stored A when transposed.
            Scalar.gemm(context.backend, transA: transA, transB: transB, m: rows.count, n: n, k: k, alpha: alpha,
                        a: transA ? a + rows.lowerBound : a + rows.lowerBound * lda, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: c + rows.lowerBound * ldc, ldc: ldc)
        }
    }

    /// Runs `body` for every row in 0..<n, split over the context's threads.
    private func rows(_ n: Int, _ body: (Int) -> Void) {
        Parallel.forRanges(n, threads: context.threads, minimumChunk: 32) { range in for r in range { body(r) } }
    }

    // MARK: Loss

    /// The mean over all elements of (y − target)², and its gradient 2(y − target)/count.
    public static func meanSquaredError(_ y: [Scalar], _ target: [Scalar]) -> (loss: Double, gradient: [Scalar]) {
        precondition(y.count == target.count && !y.isEmpty)
        var sum = 0.0
        var gradient = [Scalar](repeating: 0, count: y.count)
        let scale = 2 / Scalar(y.count)
        for i in 0..<y.count {
            let d = y[i] - target[i]
            sum += Double(d) * Double(d)
            gradient[i] = scale * d
        }
        return (sum / Double(y.count), gradient)
    }
}
