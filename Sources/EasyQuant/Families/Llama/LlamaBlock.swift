/// One Llama-family block:
///
///     h = rms₁(x);  q = rope(h·Wqᵀ), k = rope(h·Wkᵀ), v = h·Wvᵀ;  x += attn(q, k, v)·Woᵀ
///     h = rms₂(x);  x += (silu(h·Wgᵀ) · (h·Wuᵀ))·Wdᵀ
///
/// Attention is causal with grouped-query heads: k and v have `kvHeads` heads, each read by
/// heads / kvHeads query heads. Keys are cached after the rotation (as they are used).
struct LlamaBlock: DecoderBlock {
    let norm1: Normalization
    let query: Linear
    let key: Linear
    let value: Linear
    let output: Linear
    let norm2: Normalization
    let gate: Linear
    let up: Linear
    let down: Linear
    let heads: CausalSelfAttention.Heads

    var linears: [Linear] { [query, key, value, output, gate, up, down] }

    func forward(_ x: UnsafeMutablePointer<Float>, layer: Int, _ pass: BlockPass) {
        let t = pass.tokens, e = heads.width, kv = heads.kvHeads * heads.headSize
        let s = pass.scratch, context = pass.context, profile = context.profile
        // q [t, e], k [t, kv], v [t, kv], each contiguous.
        let q = s.projections, k = q + t * e, v = k + t * kv
        profile.measure(.other) { norm1.apply(x, rows: t, columns: e, into: s.normed, threads: context.threads) }
        pass.see(layer, .attentionInput, s.normed, width: e)
        profile.measure(.blockProducts) {
            Linear.forward([(query, q), (key, k), (value, v)], sharing: SharedInput(s.normed, rows: t, columns: e), context: context)
        }
        profile.measure(.attention) {
            pass.rotary?.rotate(q, rows: t, ld: e, heads: heads.heads)
            pass.rotary?.rotate(k, rows: t, ld: kv, heads: heads.kvHeads)
        }
        pass.observer?.keysAndValues(layer: layer, keys: k, values: v, ld: kv, width: kv, tokens: t)
        profile.measure(.attention) {
            if let cache = pass.cache {
                let held = cache.append(layer: layer, keys: k, values: v, ld: kv, tokens: t)
                CausalSelfAttention.forward(.init(q: q, ldq: e, held, queries: t, start: cache.count),
                                            heads, into: s.attended, context: context)
            } else {
                context.kvQuantization?.roundTrip(keys: k, values: v, ld: kv, tokens: t, width: kv, layer: layer,
                                                  threads: context.threads, tally: context.kvTally)
                CausalSelfAttention.forward(.init(q: q, ldq: e, k: k, ldk: kv, v: v, ldv: kv, kvHeadStride: heads.headSize, queries: t, start: 0),
                                            heads, into: s.attended, context: context)
            }
        }
        pass.see(layer, .attentionOutput, s.attended, width: e)
        profile.measure(.blockProducts) { output.forward(s.attended, rows: t, into: s.projected, context: context) }
        profile.measure(.other) {
            VectorOps.add(s.projected, into: x, count: t * e, threads: context.threads)
            norm2.apply(x, rows: t, columns: e, into: s.normed, threads: context.threads)
        }
        pass.see(layer, .mlpInput, s.normed, width: e)
        let inner = up.outFeatures
        profile.measure(.blockProducts) {
            Linear.forward([(gate, s.gate), (up, s.inner)], sharing: SharedInput(s.normed, rows: t, columns: e), context: context)
        }
        profile.measure(.other) { VectorOps.swiglu(gate: s.gate, up: s.inner, count: t * inner, out: s.inner, threads: context.threads) }
        pass.see(layer, .mlpHidden, s.inner, width: inner)
        profile.measure(.blockProducts) { down.forward(s.inner, rows: t, into: s.projected, context: context) }
        profile.measure(.other) { VectorOps.add(s.projected, into: x, count: t * e, threads: context.threads) }
    }
}
