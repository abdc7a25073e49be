/// One GPT-2 block: x ← x + attn(ln_1(x)); x ← x + mlp(ln_2(x)).
///
/// Attention is causal multi-head over the fused projection q|k|v = c_attn(ln_1(x)); the MLP
/// is c_proj(gelu_new(c_fc(ln_2(x)))) with the tanh approximation of GELU.
struct GPT2Block: DecoderBlock {
    let norm1: Normalization
    let attention: Linear
    let attentionProjection: Linear
    let norm2: Normalization
    let feedForward: Linear
    let feedForwardProjection: Linear
    let heads: CausalSelfAttention.Heads

    var linears: [Linear] { [attention, attentionProjection, feedForward, feedForwardProjection] }

    func forward(_ x: UnsafeMutablePointer<Float>, layer: Int, _ pass: BlockPass) {
        let t = pass.tokens, e = heads.width, s = pass.scratch, context = pass.context
        let profile = context.profile
        let qkv = s.projections
        profile.measure(.other) { norm1.apply(x, rows: t, columns: e, into: s.normed, threads: context.threads) }
        pass.see(layer, .attentionInput, s.normed, width: e)
        profile.measure(.blockProducts) { attention.forward(s.normed, rows: t, into: qkv, context: context) }
        pass.observer?.keysAndValues(layer: layer, keys: qkv + e, values: qkv + 2 * e, ld: 3 * e, width: e, tokens: t)
        profile.measure(.attention) {
            if let cache = pass.cache {
                // Decoding: keys and values come from the cache (quantized there if it is).
                let held = cache.append(layer: layer, keys: qkv + e, values: qkv + 2 * e, ld: 3 * e, tokens: t)
                CausalSelfAttention.forward(.init(q: qkv, ldq: 3 * e, held, queries: t, start: cache.count),
                                            heads, into: s.attended, context: context)
            } else {
                // A whole window: keys and values rounded as a quantized cache would hold them, if asked.
                context.kvQuantization?.roundTrip(keys: qkv + e, values: qkv + 2 * e, ld: 3 * e, tokens: t, width: e, layer: layer,
                                                  threads: context.threads, tally: context.kvTally)
                CausalSelfAttention.forward(.init(q: qkv, ldq: 3 * e, k: qkv + e, ldk: 3 * e, v: qkv + 2 * e, ldv: 3 * e, kvHeadStride: heads.headSize, queries: t, start: 0),
                                            heads, into: s.attended, context: context)
            }
        }
        pass.see(layer, .attentionOutput, s.attended, width: e)
        profile.measure(.blockProducts) { attentionProjection.forward(s.attended, rows: t, into: s.projected, context: context) }
        profile.measure(.other) {
            VectorOps.add(s.projected, into: x, count: t * e, threads: context.threads)
            norm2.apply(x, rows: t, columns: e, into: s.normed, threads: context.threads)
        }
        pass.see(layer, .mlpInput, s.normed, width: e)
        profile.measure(.blockProducts) { feedForward.forward(s.normed, rows: t, into: s.inner, context: context) }
        profile.measure(.other) { VectorOps.geluInPlace(s.inner, count: t * feedForward.outFeatures, threads: context.threads) }
        pass.see(layer, .mlpHidden, s.inner, width: feedForward.outFeatures)
        profile.measure(.blockProducts) { feedForwardProjection.forward(s.inner, rows: t, into: s.projected, context: context) }
        profile.measure(.other) { VectorOps.add(s.projected, into: x, count: t * e, threads: context.threads) }
    }
}
