/// GPT-2's trainable tensors and block, for layer-wise distillation.
extension GPT2Family: DistillableFamily {
    /// LayerNorm γ/β, the four Conv1D weights [in, out] and their biases, in checkpoint order.
    public func trainableTensors(_ c: ModelConfig) -> [(name: String, shape: [Int])] {
        let e = c.embeddingSize, i = c.innerSize
        return [("ln_1.weight", [e]), ("ln_1.bias", [e]),
                (Self.attention.weight, [e, 3 * e]), (Self.attention.name + ".bias", [3 * e]),
                (Self.attentionProjection.weight, [e, e]), (Self.attentionProjection.name + ".bias", [e]),
                ("ln_2.weight", [e]), ("ln_2.bias", [e]),
                (Self.feedForward.weight, [e, i]), (Self.feedForward.name + ".bias", [i]),
                (Self.feedForwardProjection.weight, [i, e]), (Self.feedForwardProjection.name + ".bias", [e])]
    }

    public func trainableBlock<Scalar: TrainingScalar>(_ weights: BlockWeights<Scalar>, context: ComputeContext) -> any TrainableBlock<Scalar> {
        GPT2TrainableBlock(weights: weights, context: context)
    }
}

/// One GPT-2 block, forward and backward, for a batch of `windows` × `tokens` rows of width E:
///
///     a1 = ln_1(x);  qkv = a1·Wa + ba;  o = causal attention(qkv);  x1 = x + o·Wp + bp
///     a2 = ln_2(x1); u = a2·Wfc + bfc;  g = gelu_new(u);            y  = x1 + g·Wfp + bfp
///
/// Weights are Conv1D, stored [in, out], so a layer is a plain row-major product y = x·W + b:
/// the linear layers as one product over all rows, attention per (window, head) in parallel.
public struct GPT2TrainableBlock<Scalar: TrainingScalar>: TrainableBlock {
    /// The parameters the forward pass computes with (Ŵ when training).
    public let weights: BlockWeights<Scalar>
    /// Backends and thread count (Double ignores the backends).
    public let context: ComputeContext
    private let kernels: BlockKernels<Scalar>
    private let tensors: Tensors

    /// The schema's tensors by role.
    private struct Tensors {
        let norm1Weight, norm1Bias, attentionWeight, attentionBias, attentionProjectionWeight, attentionProjectionBias: BlockTensor
        let norm2Weight, norm2Bias, feedForwardWeight, feedForwardBias, feedForwardProjectionWeight, feedForwardProjectionBias: BlockTensor
        init(_ s: BlockSchema) {
            func t(_ name: String) -> BlockTensor {
                guard let t = s[name] else { preconditionFailure("a GPT-2 block schema without \(name)") }
                return t
            }
            norm1Weight = t("ln_1.weight"); norm1Bias = t("ln_1.bias")
            attentionWeight = t(GPT2Family.attention.weight); attentionBias = t(GPT2Family.attention.name + ".bias")
            attentionProjectionWeight = t(GPT2Family.attentionProjection.weight); attentionProjectionBias = t(GPT2Family.attentionProjection.name + ".bias")
            norm2Weight = t("ln_2.weight"); norm2Bias = t("ln_2.bias")
            feedForwardWeight = t(GPT2Family.feedForward.weight); feedForwardBias = t(GPT2Family.feedForward.name + ".bias")
            feedForwardProjectionWeight = t(GPT2Family.feedForwardProjection.weight)
            feedForwardProjectionBias = t(GPT2Family.feedForwardProjection.name + ".bias")
        }
    }

    /// A block computing with `weights`, which must have this family's schema.
    public init(weights: BlockWeights<Scalar>, context: ComputeContext) {
        precondition(weights.schema.family is GPT2Family, "GPT2TrainableBlock needs GPT-2 block weights")
        precondition(weights.config.embeddingSize % weights.config.headCount == 0)
        self.weights = weights; self.context = context
        kernels = BlockKernels(context: context)
        tensors = Tensors(weights.schema)
    }

    /// What a forward pass keeps for the backward pass.
    public final class Activations: BlockActivations {
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

        public var output: [Scalar] { y.array }
    }

    /// q, k and v as column ranges of the fused q|k|v matrix.
    private func projections(_ qkv: UnsafeMutablePointer<Scalar>) -> BlockKernels<Scalar>.Projections {
        let e = weights.config.embeddingSize
        return .init(q: qkv, ldq: 3 * e, k: qkv + e, ldk: 3 * e, v: qkv + 2 * e, ldv: 3 * e)
    }

    // MARK: Forward

    public func forward(_ input: [Scalar], windows: Int, tokens: Int) -> Activations {
        let c = weights.config, e = c.embeddingSize, n = windows * tokens, k = kernels, ts = tensors
        precondition(input.count == n * e, "input must be windows × tokens × \(e) values")
        let act = Activations(windows: windows, tokens: tokens, config: c)
        input.withUnsafeBufferPointer { xb in
            weights.values.withUnsafeBufferPointer { wb in
                let x = xb.baseAddress!
                func w(_ t: BlockTensor) -> UnsafePointer<Scalar> { wb.baseAddress! + t.range.lowerBound }
                // x1 = x + c_proj(attn(ln_1(x)))
                layerNorm(x, gamma: w(ts.norm1Weight), beta: w(ts.norm1Bias), rows: n, xhat: act.xhat1.p, rstd: act.rstd1.p, out: act.a1.p)
                k.linear(act.a1.p, rows: n, weight: w(ts.attentionWeight), bias: w(ts.attentionBias), inputs: e, outputs: 3 * e,
                         inputMajor: true, into: act.qkv.p, accumulate: false)
                k.causalAttention(projections(act.qkv.p), windows: windows, tokens: tokens, heads: c.headCount, kvHeads: c.headCount,
                                  headSize: e / c.headCount, probs: act.probs.p, into: act.attended.p, ldo: e)
                act.x1.p.update(from: x, count: n * e)
                k.linear(act.attended.p, rows: n, weight: w(ts.attentionProjectionWeight), bias: w(ts.attentionProjectionBias),
                         inputs: e, outputs: e, inputMajor: true, into: act.x1.p, accumulate: true)
                // y = x1 + mlp.c_proj(gelu_new(mlp.c_fc(ln_2(x1))))
                layerNorm(act.x1.p, gamma: w(ts.norm2Weight), beta: w(ts.norm2Bias), rows: n, xhat: act.xhat2.p, rstd: act.rstd2.p, out: act.a2.p)
                k.linear(act.a2.p, rows: n, weight: w(ts.feedForwardWeight), bias: w(ts.feedForwardBias), inputs: e, outputs: c.innerSize,
                         inputMajor: true, into: act.u.p, accumulate: false)
                geluForward(act.u.p, into: act.g.p, count: n * c.innerSize)
                act.y.p.update(from: act.x1.p, count: n * e)
                k.linear(act.g.p, rows: n, weight: w(ts.feedForwardProjectionWeight), bias: w(ts.feedForwardProjectionBias),
                         inputs: c.innerSize, outputs: e, inputMajor: true, into: act.y.p, accumulate: true)
            }
        }
        return act
    }

    /// a = x̂·γ + β with x̂ = (x − μ)/σ, σ = √(var + ε), μ and var (biased) over each row.
    private func layerNorm(_ x: UnsafePointer<Scalar>, gamma: UnsafePointer<Scalar>, beta: UnsafePointer<Scalar>, rows n: Int,
                           xhat: UnsafeMutablePointer<Scalar>, rstd: UnsafeMutablePointer<Scalar>, out: UnsafeMutablePointer<Scalar>) {
        let e = weights.config.embeddingSize, eps = Scalar(weights.config.normEpsilon)
        kernels.rows(n) { r in
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
        kernels.elements(count) { range in
            for i in range { let v = u[i]; g[i] = 0.5 * v * (1 + Scalar.tanh(c * (v + k * v * v * v))) }
        }
    }

    // MARK: Backward

    public func backward(_ act: Activations, outputGradient: [Scalar]) -> (weights: BlockWeights<Scalar>, input: [Scalar]) {
        let c = weights.config, e = c.embeddingSize, inner = c.innerSize, n = act.windows * act.tokens, k = kernels, ts = tensors
        precondition(outputGradient.count == n * e)
        var grads = BlockWeights<Scalar>(zerosFor: weights.schema)
        var dx = outputGradient   // the residual path: ∂y/∂x1 = I and ∂x1/∂x = I, plus what the branches add
        let dg = TrainingBuffer<Scalar>(n * inner), da = TrainingBuffer<Scalar>(n * e)
        let dqkv = TrainingBuffer<Scalar>(n * 3 * e)
        weights.values.withUnsafeBufferPointer { wb in
            grads.values.withUnsafeMutableBufferPointer { gb in
                dx.withUnsafeMutableBufferPointer { dxb in
                    func w(_ t: BlockTensor) -> UnsafePointer<Scalar> { wb.baseAddress! + t.range.lowerBound }
                    func dw(_ t: BlockTensor) -> UnsafeMutablePointer<Scalar> { gb.baseAddress! + t.range.lowerBound }
                    let dy = dxb.baseAddress!
                    // MLP branch, y = x1 + g·Wfp + bfp: ∂L/∂Wfp = gᵀ·dy, ∂L/∂bfp = Σ_rows dy, ∂L/∂g = dy·Wfpᵀ.
                    k.linearBackward(act.g.p, rows: n, weight: w(ts.feedForwardProjectionWeight), inputs: inner, outputs: e, inputMajor: true,
                                     outputGradient: dy, weightGradient: dw(ts.feedForwardProjectionWeight),
                                     biasGradient: dw(ts.feedForwardProjectionBias), inputGradient: dg.p, accumulateInput: false)
                    geluBackward(act.u.p, gradient: dg.p, count: n * inner)   // now ∂L/∂u
                    k.linearBackward(act.a2.p, rows: n, weight: w(ts.feedForwardWeight), inputs: e, outputs: inner, inputMajor: true,
                                     outputGradient: dg.p, weightGradient: dw(ts.feedForwardWeight), biasGradient: dw(ts.feedForwardBias),
                                     inputGradient: da.p, accumulateInput: false)
                    // dy now becomes ∂L/∂x1: the residual dy plus ln_2's share.
                    layerNormBackward(da.p, xhat: act.xhat2.p, rstd: act.rstd2.p, gamma: w(ts.norm2Weight), rows: n,
                                      gammaGradient: dw(ts.norm2Weight), betaGradient: dw(ts.norm2Bias), addInto: dy)
                    // Attention branch, x1 = x + o·Wp + bp.
                    k.linearBackward(act.attended.p, rows: n, weight: w(ts.attentionProjectionWeight), inputs: e, outputs: e, inputMajor: true,
                                     outputGradient: dy, weightGradient: dw(ts.attentionProjectionWeight),
                                     biasGradient: dw(ts.attentionProjectionBias), inputGradient: da.p, accumulateInput: false)
                    k.causalAttentionBackward(projections(act.qkv.p), windows: act.windows, tokens: act.tokens, heads: c.headCount,
                                              kvHeads: c.headCount, headSize: e / c.headCount, probs: act.probs.p,
                                              outputGradient: da.p, ldo: e, into: projections(dqkv.p))
                    k.linearBackward(act.a1.p, rows: n, weight: w(ts.attentionWeight), inputs: e, outputs: 3 * e, inputMajor: true,
                                     outputGradient: dqkv.p, weightGradient: dw(ts.attentionWeight), biasGradient: dw(ts.attentionBias),
                                     inputGradient: da.p, accumulateInput: false)
                    // dy becomes ∂L/∂x: the residual ∂L/∂x1 plus ln_1's share.
                    layerNormBackward(da.p, xhat: act.xhat1.p, rstd: act.rstd1.p, gamma: w(ts.norm1Weight), rows: n,
                                      gammaGradient: dw(ts.norm1Weight), betaGradient: dw(ts.norm1Bias), addInto: dy)
                }
            }
        }
        return (grads, dx)
    }

    /// gelu_new'(u) = ½(1 + th) + ½u(1 − th²)·c(1 + 3k·u²), th = tanh(c(u + k·u³)); multiplies
    /// the gradient in place.
    private func geluBackward(_ u: UnsafePointer<Scalar>, gradient: UnsafeMutablePointer<Scalar>, count: Int) {
        let c = Self.geluC, k = Self.geluK
        kernels.elements(count) { range in
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
        kernels.rows(n) { r in
            let g = da + r * e, h = xhat + r * e
            var meanG: Scalar = 0, meanGH: Scalar = 0
            for j in 0..<e { meanG += g[j] * gamma[j]; meanGH += g[j] * gamma[j] * h[j] }
            meanG /= Scalar(e); meanGH /= Scalar(e)
            for j in 0..<e { dx[r * e + j] += rstd[r] * (g[j] * gamma[j] - meanG - h[j] * meanGH) }
        }
    }
}
