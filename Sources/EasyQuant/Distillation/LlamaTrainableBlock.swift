/// The Llama family's trainable tensors and block, for layer-wise distillation.
extension LlamaFamily: DistillableFamily {
    /// RMSNorm γ, q/k/v [out, in] with their biases when the config has them (Qwen2), o_proj,
    /// RMSNorm γ, gate/up/down, in checkpoint order.
    public func trainableTensors(_ c: ModelConfig) -> [(name: String, shape: [Int])] {
        let e = c.embeddingSize, kv = c.kvSize, i = c.innerSize
        var list: [(name: String, shape: [Int])] = [("input_layernorm.weight", [e])]
        for (name, outputs) in [("q_proj", e), ("k_proj", kv), ("v_proj", kv)] {
            let linear = Self.attention(name, bias: c.attentionBias)
            list.append((linear.weight, [outputs, e]))
            if let bias = linear.bias { list.append((bias, [outputs])) }
        }
        list += [(Self.outputProjection.weight, [e, e]), ("post_attention_layernorm.weight", [e]),
                 (Self.gate.weight, [i, e]), (Self.up.weight, [i, e]), (Self.down.weight, [e, i])]
        return list
    }

    public func trainableBlock<Scalar: TrainingScalar>(_ weights: BlockWeights<Scalar>, context: ComputeContext) -> any TrainableBlock<Scalar> {
        LlamaTrainableBlock(weights: weights, context: context)
    }
}

/// One Llama-family block, forward and backward, for a batch of `windows` × `tokens` rows of
/// width E (each window at positions 0 ..< tokens):
///
///     a1 = rms₁(x);  q = rope(a1·Wqᵀ + bq), k = rope(a1·Wkᵀ + bk), v = a1·Wvᵀ + bv
///     x1 = x + attn(q, k, v)·Woᵀ
///     a2 = rms₂(x1); y = x1 + (silu(a2·Wgᵀ) ⊙ (a2·Wuᵀ))·Wdᵀ
///
/// Every matrix is stored [out, in]. Attention is causal with grouped-query heads (query head
/// h reads key/value head h / (heads / kvHeads)); rope rotates pairs (i, i + d/2) of each
/// head in Hugging Face's rotate-half layout with `RotaryEmbedding`'s angles, so the
/// forward pass computes what `LlamaBlock` does. The biases are present only when the
/// config says so (Qwen2).
public struct LlamaTrainableBlock<Scalar: TrainingScalar>: TrainableBlock {
    /// The parameters the forward pass computes with (Ŵ when training).
    public let weights: BlockWeights<Scalar>
    /// Backends and thread count (Double ignores the backends).
    public let context: ComputeContext
    private let kernels: BlockKernels<Scalar>
    private let tensors: Tensors
    private let rotary: RotaryEmbedding?

    /// The schema's tensors by role.
    private struct Tensors {
        let norm1, query, key, value, output, norm2, gate, up, down: BlockTensor
        let queryBias, keyBias, valueBias: BlockTensor?
        init(_ s: BlockSchema) {
            func t(_ name: String) -> BlockTensor {
                guard let t = s[name] else { preconditionFailure("a Llama block schema without \(name)") }
                return t
            }
            norm1 = t("input_layernorm.weight"); norm2 = t("post_attention_layernorm.weight")
            query = t("self_attn.q_proj.weight"); key = t("self_attn.k_proj.weight"); value = t("self_attn.v_proj.weight")
            queryBias = s["self_attn.q_proj.bias"]; keyBias = s["self_attn.k_proj.bias"]; valueBias = s["self_attn.v_proj.bias"]
            output = t(LlamaFamily.outputProjection.weight)
            gate = t(LlamaFamily.gate.weight); up = t(LlamaFamily.up.weight); down = t(LlamaFamily.down.weight)
        }
    }

    /// A block computing with `weights`, which must have this family's schema.
    public init(weights: BlockWeights<Scalar>, context: ComputeContext) {
        let c = weights.config
        precondition(weights.schema.family is LlamaFamily, "LlamaTrainableBlock needs Llama-family block weights")
        precondition(c.embeddingSize % c.headCount == 0 && c.headCount % c.kvHeadCount == 0)
        self.weights = weights; self.context = context
        kernels = BlockKernels(context: context)
        tensors = Tensors(weights.schema)
        rotary = c.ropeTheta.map { RotaryEmbedding(headSize: c.headSize, theta: $0) }
    }

    /// What a forward pass keeps for the backward pass.
    public final class Activations: BlockActivations {
        public let windows: Int
        public let tokens: Int
        // RMSNorm: x̂ = x·r, r = 1/√(mean x² + ε) per row, and the output a = x̂·γ.
        let xhat1, rstd1, a1, xhat2, rstd2, a2: TrainingBuffer<Scalar>
        // q [N, E] and k [N, kv] after the rotation, v [N, kv]; probabilities [windows, heads, T, T]; o [N, E].
        let q, k, v, probs, attended: TrainingBuffer<Scalar>
        // After the attention residual; gate and up pre-activations and silu(gate)·up [N, I]; output.
        let x1, gate, up, hidden, y: TrainingBuffer<Scalar>
        /// cos and sin of the angles of positions 0 ..< tokens, [tokens, d/2] each (empty without rope).
        let cos, sin: [Scalar]

        init(windows: Int, tokens: Int, config c: ModelConfig, rotary: RotaryEmbedding?) {
            self.windows = windows; self.tokens = tokens
            let n = windows * tokens, e = c.embeddingSize, kv = c.kvSize, i = c.innerSize
            xhat1 = .init(n * e); rstd1 = .init(n); a1 = .init(n * e)
            xhat2 = .init(n * e); rstd2 = .init(n); a2 = .init(n * e)
            q = .init(n * e); k = .init(n * kv); v = .init(n * kv)
            probs = .init(windows * c.headCount * tokens * tokens); attended = .init(n * e)
            x1 = .init(n * e); gate = .init(n * i); up = .init(n * i); hidden = .init(n * i); y = .init(n * e)
            let table = rotary?.table(first: 0, count: tokens)
            cos = table?.cos.map { Scalar($0) } ?? []
            sin = table?.sin.map { Scalar($0) } ?? []
        }

        public var output: [Scalar] { y.array }
    }

    private func projections(q: UnsafeMutablePointer<Scalar>, k: UnsafeMutablePointer<Scalar>, v: UnsafeMutablePointer<Scalar>)
        -> BlockKernels<Scalar>.Projections {
        let c = weights.config
        return .init(q: q, ldq: c.embeddingSize, k: k, ldk: c.kvSize, v: v, ldv: c.kvSize)
    }

    // MARK: Forward

    public func forward(_ input: [Scalar], windows: Int, tokens: Int) -> Activations {
        let c = weights.config, e = c.embeddingSize, kv = c.kvSize, inner = c.innerSize, n = windows * tokens
        let k = kernels, ts = tensors
        precondition(input.count == n * e, "input must be windows × tokens × \(e) values")
        let act = Activations(windows: windows, tokens: tokens, config: c, rotary: rotary)
        input.withUnsafeBufferPointer { xb in
            weights.values.withUnsafeBufferPointer { wb in
                let x = xb.baseAddress!
                func w(_ t: BlockTensor) -> UnsafePointer<Scalar> { wb.baseAddress! + t.range.lowerBound }
                func w(_ t: BlockTensor?) -> UnsafePointer<Scalar>? { t.map { wb.baseAddress! + $0.range.lowerBound } }
                // x1 = x + o_proj(attn(rope(q), rope(k), v)) of rms₁(x)
                rmsNorm(x, gamma: w(ts.norm1), rows: n, xhat: act.xhat1.p, rstd: act.rstd1.p, out: act.a1.p)
                for (weight, bias, out, width) in [(ts.query, ts.queryBias, act.q.p, e), (ts.key, ts.keyBias, act.k.p, kv),
                                                   (ts.value, ts.valueBias, act.v.p, kv)] {
                    k.linear(act.a1.p, rows: n, weight: w(weight), bias: w(bias), inputs: e, outputs: width, inputMajor: false,
                             into: out, accumulate: false)
                }
                rotate(act.q.p, ld: e, heads: c.headCount, act, inverse: false)
                rotate(act.k.p, ld: kv, heads: c.kvHeadCount, act, inverse: false)
                k.causalAttention(projections(q: act.q.p, k: act.k.p, v: act.v.p), windows: windows, tokens: tokens,
                                  heads: c.headCount, kvHeads: c.kvHeadCount, headSize: c.headSize, probs: act.probs.p,
                                  into: act.attended.p, ldo: e)
                act.x1.p.update(from: x, count: n * e)
                k.linear(act.attended.p, rows: n, weight: w(ts.output), bias: nil, inputs: e, outputs: e, inputMajor: false,
                         into: act.x1.p, accumulate: true)
                // y = x1 + down(silu(gate(rms₂(x1))) · up(rms₂(x1)))
                rmsNorm(act.x1.p, gamma: w(ts.norm2), rows: n, xhat: act.xhat2.p, rstd: act.rstd2.p, out: act.a2.p)
                k.linear(act.a2.p, rows: n, weight: w(ts.gate), bias: nil, inputs: e, outputs: inner, inputMajor: false,
                         into: act.gate.p, accumulate: false)
                k.linear(act.a2.p, rows: n, weight: w(ts.up), bias: nil, inputs: e, outputs: inner, inputMajor: false,
                         into: act.up.p, accumulate: false)
                let (g, u, h) = (act.gate.p, act.up.p, act.hidden.p)
                k.elements(n * inner) { range in
                    for i in range { h[i] = g[i] / (1 + Scalar.exp(-g[i])) * u[i] }
                }
                act.y.p.update(from: act.x1.p, count: n * e)
                k.linear(act.hidden.p, rows: n, weight: w(ts.down), bias: nil, inputs: inner, outputs: e, inputMajor: false,
                         into: act.y.p, accumulate: true)
            }
        }
        return act
    }

    /// a = x̂·γ with x̂ = x·r, r = 1/√(mean x² + ε) over each row.
    private func rmsNorm(_ x: UnsafePointer<Scalar>, gamma: UnsafePointer<Scalar>, rows n: Int,
                         xhat: UnsafeMutablePointer<Scalar>, rstd: UnsafeMutablePointer<Scalar>, out: UnsafeMutablePointer<Scalar>) {
        let e = weights.config.embeddingSize, eps = Scalar(weights.config.normEpsilon)
        kernels.rows(n) { r in
            let src = x + r * e
            var squares: Scalar = 0
            for j in 0..<e { squares += src[j] * src[j] }
            let inv = 1 / (squares / Scalar(e) + eps).squareRoot()
            rstd[r] = inv
            for j in 0..<e {
                let h = src[j] * inv
                xhat[r * e + j] = h
                out[r * e + j] = h * gamma[j]
            }
        }
    }

    /// Rotates every head of every row in place by the angle of the row's position (row r of
    /// a window is at position r), pairing element i with i + d/2:
    /// (a, b) ← (a·cos − b·sin, b·cos + a·sin). `inverse` rotates by the opposite angle, which
    /// is the rotation's transpose and so its backward pass. Nothing happens without rope.
    private func rotate(_ x: UnsafeMutablePointer<Scalar>, ld: Int, heads: Int, _ act: Activations, inverse: Bool) {
        guard let rotary else { return }
        let d = rotary.headSize, half = d / 2, t = act.tokens
        act.cos.withUnsafeBufferPointer { cosines in
            act.sin.withUnsafeBufferPointer { sines in
                kernels.rows(act.windows * t) { r in
                    let c = cosines.baseAddress! + (r % t) * half, s = sines.baseAddress! + (r % t) * half
                    for h in 0..<heads {
                        let v = x + r * ld + h * d
                        for i in 0..<half {
                            let a = v[i], b = v[i + half], sn = inverse ? -s[i] : s[i]
                            v[i] = a * c[i] - b * sn
                            v[i + half] = b * c[i] + a * sn
                        }
                    }
                }
            }
        }
    }

    // MARK: Backward

    public func backward(_ act: Activations, outputGradient: [Scalar]) -> (weights: BlockWeights<Scalar>, input: [Scalar]) {
        let c = weights.config, e = c.embeddingSize, kv = c.kvSize, inner = c.innerSize, n = act.windows * act.tokens
        let k = kernels, ts = tensors
        precondition(outputGradient.count == n * e)
        var grads = BlockWeights<Scalar>(zerosFor: weights.schema)
        var dx = outputGradient   // the residual path: ∂y/∂x1 = I and ∂x1/∂x = I, plus what the branches add
        let dHidden = TrainingBuffer<Scalar>(n * inner), dGate = TrainingBuffer<Scalar>(n * inner)
        let da = TrainingBuffer<Scalar>(n * e)
        let dq = TrainingBuffer<Scalar>(n * e), dk = TrainingBuffer<Scalar>(n * kv), dv = TrainingBuffer<Scalar>(n * kv)
        weights.values.withUnsafeBufferPointer { wb in
            grads.values.withUnsafeMutableBufferPointer { gb in
                dx.withUnsafeMutableBufferPointer { dxb in
                    func w(_ t: BlockTensor) -> UnsafePointer<Scalar> { wb.baseAddress! + t.range.lowerBound }
                    func dw(_ t: BlockTensor) -> UnsafeMutablePointer<Scalar> { gb.baseAddress! + t.range.lowerBound }
                    func dw(_ t: BlockTensor?) -> UnsafeMutablePointer<Scalar>? { t.map { gb.baseAddress! + $0.range.lowerBound } }
                    let dy = dxb.baseAddress!
                    // MLP branch, y = x1 + h·Wdᵀ: ∂L/∂Wd = dyᵀ·h, ∂L/∂h = dy·Wd.
                    k.linearBackward(act.hidden.p, rows: n, weight: w(ts.down), inputs: inner, outputs: e, inputMajor: false,
                                     outputGradient: dy, weightGradient: dw(ts.down), biasGradient: nil, inputGradient: dHidden.p,
                                     accumulateInput: false)
                    // h = silu(g)·u, silu(g) = g·σ(g), silu'(g) = σ(g)(1 + g(1 − σ(g))):
                    // ∂L/∂u = ∂L/∂h·silu(g) (into dHidden), ∂L/∂g = ∂L/∂h·u·silu'(g).
                    let (g, u, dh, dg) = (act.gate.p, act.up.p, dHidden.p, dGate.p)
                    k.elements(n * inner) { range in
                        for i in range {
                            let sigma = 1 / (1 + Scalar.exp(-g[i])), grad = dh[i]
                            dg[i] = grad * u[i] * sigma * (1 + g[i] * (1 - sigma))
                            dh[i] = grad * g[i] * sigma
                        }
                    }
                    k.linearBackward(act.a2.p, rows: n, weight: w(ts.up), inputs: e, outputs: inner, inputMajor: false,
                                     outputGradient: dh, weightGradient: dw(ts.up), biasGradient: nil, inputGradient: da.p,
                                     accumulateInput: false)
                    k.linearBackward(act.a2.p, rows: n, weight: w(ts.gate), inputs: e, outputs: inner, inputMajor: false,
                                     outputGradient: dg, weightGradient: dw(ts.gate), biasGradient: nil, inputGradient: da.p,
                                     accumulateInput: true)
                    // dy now becomes ∂L/∂x1: the residual dy plus rms₂'s share.
                    rmsNormBackward(da.p, xhat: act.xhat2.p, rstd: act.rstd2.p, gamma: w(ts.norm2), rows: n,
                                    gammaGradient: dw(ts.norm2), addInto: dy)
                    // Attention branch, x1 = x + o·Woᵀ.
                    k.linearBackward(act.attended.p, rows: n, weight: w(ts.output), inputs: e, outputs: e, inputMajor: false,
                                     outputGradient: dy, weightGradient: dw(ts.output), biasGradient: nil, inputGradient: da.p,
                                     accumulateInput: false)
                    k.causalAttentionBackward(projections(q: act.q.p, k: act.k.p, v: act.v.p), windows: act.windows, tokens: act.tokens,
                                              heads: c.headCount, kvHeads: c.kvHeadCount, headSize: c.headSize, probs: act.probs.p,
                                              outputGradient: da.p, ldo: e, into: projections(q: dq.p, k: dk.p, v: dv.p))
                    // Gradients of the rotated q and k, rotated back: those of the projections' outputs.
                    rotate(dq.p, ld: e, heads: c.headCount, act, inverse: true)
                    rotate(dk.p, ld: kv, heads: c.kvHeadCount, act, inverse: true)
                    for (index, (weight, bias, gradient, width)) in [(ts.query, ts.queryBias, dq.p, e), (ts.key, ts.keyBias, dk.p, kv),
                                                                     (ts.value, ts.valueBias, dv.p, kv)].enumerated() {
                        // q, k and v all read a1: their input gradients add up.
                        k.linearBackward(act.a1.p, rows: n, weight: w(weight), inputs: e, outputs: width, inputMajor: false,
                                         outputGradient: gradient, weightGradient: dw(weight), biasGradient: dw(bias),
                                         inputGradient: da.p, accumulateInput: index > 0)
                    }
                    // dy becomes ∂L/∂x: the residual ∂L/∂x1 plus rms₁'s share.
                    rmsNormBackward(da.p, xhat: act.xhat1.p, rstd: act.rstd1.p, gamma: w(ts.norm1), rows: n,
                                    gammaGradient: dw(ts.norm1), addInto: dy)
                }
            }
        }
        return (grads, dx)
    }

    /// For a = x̂·γ, x̂ = x·r, r = 1/√(mean x² + ε): ∂L/∂γ = Σ_rows da·x̂, and with g = da·γ
    /// (∂L/∂x̂), ∂r/∂x_k = −r³x_k/E gives ∂L/∂x = r·(g − x̂·mean(g·x̂)), which is added to `dx`.
    private func rmsNormBackward(_ da: UnsafePointer<Scalar>, xhat: UnsafePointer<Scalar>, rstd: UnsafePointer<Scalar>,
                                 gamma: UnsafePointer<Scalar>, rows n: Int, gammaGradient dGamma: UnsafeMutablePointer<Scalar>,
                                 addInto dx: UnsafeMutablePointer<Scalar>) {
        let e = weights.config.embeddingSize
        for r in 0..<n {
            for j in 0..<e { dGamma[j] += da[r * e + j] * xhat[r * e + j] }
        }
        kernels.rows(n) { r in
            let g = da + r * e, h = xhat + r * e
            var meanGH: Scalar = 0
            for j in 0..<e { meanGH += g[j] * gamma[j] * h[j] }
            meanGH /= Scalar(e)
            for j in 0..<e { dx[r * e + j] += rstd[r] * (g[j] * gamma[j] - h[j] * meanGH) }
        }
    }
}
