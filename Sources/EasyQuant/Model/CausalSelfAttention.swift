import CKernels
import Foundation

/// Causal multi-head self-attention for `queries` new tokens at positions start ..< start+queries,
/// against the keys and values of positions 0 ..< start+queries, with grouped-query heads.
///
/// Query head h reads key/value head h / (heads / kvHeads): GPT-2 has one per query head,
/// Llama-family models share each among a group. The work item is one key/value head and
/// one block of queries: the queries of every head in the group are gathered into one
/// matrix (row i·group + j is query i of the group's head j), so each item makes two
/// products with group× more rows than one head would:
///
///     scores = Q·Kᵀ/√d over the keys up to the block's last query (keys after it are never
///     computed: causal attention needs only the lower triangle);
///     P = exp(scores − rowmax), masked per row, with the row sums kept aside;
///     out = (P·V) / rowsum, the division done on the d-wide result, not the keys-wide P.
///
/// In int8 mode a window from position 0 (no cache) computes the scores in int8: q and k
/// are balanced per channel (`balancingFactors`) and quantized per token and head (absmax
/// over the head's d values), Q·Kᵀ is an exact int8 product, rescaled by the two scales
/// inside the softmax; P·V stays float (P's small entries matter and would not survive
/// 8 bits). On SmolLM2-135M (first 8,192 tokens of WikiText-2, windows of 2048, f32
/// linears) this moved perplexity from 24.4283 to 24.4336 (+0.02%; without the balancing
/// +0.11%) and took attention from 5.6 s to 3.0 s per 4,096 tokens. P·V in bfloat16 (AVX-512
/// BF16 dot products) was tried too: 1.7× oneDNN's sgemm and +0.001% alone, but +0.07%
/// together with int8 scores, over the 0.05% allowed, so P·V stays float.
///
/// Items run in parallel on the context's threads, the most expensive (latest) blocks first.
enum CausalSelfAttention {
    /// Query rows (all heads of a group together) per work item. Larger blocks ran faster
    /// on SmolLM2 at 2048 keys (48 rows: 241 tokens/s, 96: 249, 192: 258, interleaved
    /// runs), the products' efficiency outweighing that 192 rows of scores (1.5 MiB)
    /// outgrow the core's 1 MiB L2.
    static let rowsPerItem = 192

    /// q [queries, heads·d] row-major with leading dimension ldq; out [queries, heads·d]
    /// (leading dimension heads·d). Keys and values of positions 0 ..< start+queries: row t of
    /// key/value head h at `k + h·kvHeadStride + t·ldk` (and `v`, `ldv`). Rows of all heads
    /// side by side have kvHeadStride = d; a cache that keeps each head's rows together
    /// (`KVCache`) has ldk = ldv = d and kvHeadStride its capacity · d.
    /// Keys and values are floats, except from a cache that stores halves (`KVStorage.f16`),
    /// which only decoding (`forwardOne`) reads; strides count elements, not bytes.
    struct Operands {
        var q: UnsafePointer<Float>, ldq: Int
        var keys: UnsafeRawPointer, ldk: Int
        var values: UnsafeRawPointer, ldv: Int
        var storage: KVStorage
        var kvHeadStride: Int
        var queries: Int
        var start: Int

        init(q: UnsafePointer<Float>, ldq: Int, keys: UnsafeRawPointer, ldk: Int, values: UnsafeRawPointer, ldv: Int,
             storage: KVStorage, kvHeadStride: Int, queries: Int, start: Int) {
            self.q = q; self.ldq = ldq; self.keys = keys; self.ldk = ldk; self.values = values; self.ldv = ldv
            self.storage = storage; self.kvHeadStride = kvHeadStride; self.queries = queries; self.start = start
        }

        /// Float keys and values (a window's own rows, or a cache of f32).
        init(q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int, v: UnsafePointer<Float>, ldv: Int,
             kvHeadStride: Int, queries: Int, start: Int) {
            self.init(q: q, ldq: ldq, keys: UnsafeRawPointer(k), ldk: ldk, values: UnsafeRawPointer(v), ldv: ldv, storage: .f32,
                      kvHeadStride: kvHeadStride, queries: queries, start: start)
        }

        /// The keys as floats: the whole-window path reads nothing else.
        var k: UnsafePointer<Float> {
            precondition(storage == .f32, "attention over several queries reads float keys")
            return keys.assumingMemoryBound(to: Float.self)
        }
        var v: UnsafePointer<Float> {
            precondition(storage == .f32, "attention over several queries reads float values")
            return values.assumingMemoryBound(to: Float.self)
        }
    }

    /// The head layout: `heads` query heads of `headSize`, sharing `kvHeads` key/value heads.
    struct Heads {
        var heads: Int
        var kvHeads: Int
        var headSize: Int
        var width: Int { heads * headSize }
    }

    /// q and k quantized per (token, head) row of d values: codes [tokens, heads·d] and
    /// scales [heads][tokens] (one contiguous run of scales per head). Each value is first
    /// multiplied by its column's `factor` (heads·d of them).
    final class QuantizedHeads {
        let codes: UnsafeMutablePointer<Int8>
        let scales: UnsafeMutablePointer<Float>

        init(_ x: UnsafePointer<Float>, tokens: Int, ld: Int, heads: Int, headSize d: Int, factor: UnsafePointer<Float>, threads: Int) {
            let width = heads * d
            codes = .allocate(capacity: max(1, tokens * width))
            scales = .allocate(capacity: max(1, tokens * heads))
            let byToken = UnsafeMutablePointer<Float>.allocate(capacity: max(1, tokens * heads))
            defer { byToken.deallocate() }
            let (codes, scales) = (self.codes, self.scales)
            VectorOps.forRows(tokens, cols: width, threads: threads) { range in
                let row = UnsafeMutablePointer<Float>.allocate(capacity: width)
                defer { row.deallocate() }
                for i in range {
                    eqk_scale_columns(x + i * ld, ld, 1, width, factor, row, width)
                    eqk_quantize_rows_int8(row, heads, d, codes + i * width, byToken + i * heads, nil, d)
                }
                for i in range { for h in 0..<heads { scales[h * tokens + i] = byToken[i * heads + h] } }
            }
        }
        deinit { codes.deallocate(); scales.deallocate() }
    }

    /// Per-channel factors that balance q and k before they are quantized: channel c of
    /// key/value head g is multiplied by α = √(max|k_c| / max|q_c|) in q (over the group's
    /// query heads) and divided by it in k, which leaves every q·k unchanged but gives both
    /// the same range, so that a few wide channels (rotary pairs of large frequency) do not
    /// take the int8 steps of the rest. Returns (q factors [heads·d], k factors [kvHeads·d]).
    static func balancingFactors(_ o: Operands, _ layout: Heads) -> (q: [Float], k: [Float]) {
        let d = layout.headSize, group = layout.heads / layout.kvHeads, kvWidth = layout.kvHeads * d
        var qMax = [Float](repeating: 0, count: layout.width), kMax = [Float](repeating: 0, count: kvWidth)
        eqk_column_absmax(o.q, o.queries, layout.width, o.ldq, &qMax)
        eqk_column_absmax(o.k, o.queries, kvWidth, o.ldk, &kMax)
        var qFactor = [Float](repeating: 1, count: layout.width), kFactor = [Float](repeating: 1, count: kvWidth)
        for g in 0..<layout.kvHeads {
            for c in 0..<d {
                var q: Float = 0
                for j in 0..<group { q = max(q, qMax[(g * group + j) * d + c]) }
                let k = kMax[g * d + c]
                guard q > 0, k > 0 else { continue }
                let alpha = (k / q).squareRoot()
                kFactor[g * d + c] = 1 / alpha
                for j in 0..<group { qFactor[(g * group + j) * d + c] = alpha }
            }
        }
        return (qFactor, kFactor)
    }

    /// One new token against the cache (decoding): per key/value head, the scores of its
    /// query heads, their softmax and the weighted values over its cached rows, in one call
    /// (eqk_attend_one). Work items are key/value heads, or parts of their keys when there are
    /// too few heads to share evenly over the threads (3 on 2 threads: SmolLM2); each part
    /// keeps its sums undivided with its maxima and exponential sums, and the parts are merged.
    static func forwardOne(_ o: Operands, _ layout: Heads, into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        let d = layout.headSize, kvHeads = layout.kvHeads, group = layout.heads / kvHeads, keys = o.start + 1
        let scale = 1 / Float(d).squareRoot()
        // One work item per key/value head and part of the keys: its query heads go in one call.
        // With fewer key/value heads than twice the threads (SmolLM2: 3 on 2 threads), the keys
        // are cut into parts so that the threads get equal shares; the parts are merged after.
        let threads = max(1, context.threads)
        let parts = max(1, min(keys / minimumKeysPerPart, (2 * threads + kvHeads - 1) / kvHeads))
        // Part p of head kv writes its query heads' outputs straight to `out` when it is the
        // only part; otherwise its undivided sums to sums[(kv·parts + p)·group·d ...] and its
        // maxima and exponential sums to partials[(kv·parts + p)·2·group ...], merged after.
        let split = parts > 1
        let sums = split ? UnsafeMutablePointer<Float>.allocate(capacity: kvHeads * parts * group * d) : out
        let partials = split ? UnsafeMutablePointer<Float>.allocate(capacity: kvHeads * parts * 2 * group) : nil
        defer { if split { sums.deallocate(); partials?.deallocate() } }
        let sumsAddress = UnsafeMutableRawPointer(sums), partialsAddress = partials.map { UnsafeMutableRawPointer($0) }
        Parallel.forEach(kvHeads * parts, threads: threads) { item in
            let kv = item / parts, p = item % parts
            let t0 = keys * p / parts, t1 = keys * (p + 1) / parts
            let bytes = o.storage.bytes
            withUnsafeTemporaryAllocation(of: Float.self, capacity: group * (t1 - t0)) { scores in
                VectorOps.attendOne(o.q + kv * group * d, group: group, headSize: d,
                                    keys: o.keys + (kv * o.kvHeadStride + t0 * o.ldk) * bytes, ldk: o.ldk,
                                    values: o.values + (kv * o.kvHeadStride + t0 * o.ldv) * bytes, ldv: o.ldv, storage: o.storage,
                                    count: t1 - t0, scale: scale, scores: scores.baseAddress!,
                                    out: sumsAddress.assumingMemoryBound(to: Float.self) + item * group * d,
                                    partial: partialsAddress.map { $0.assumingMemoryBound(to: Float.self) + item * 2 * group })
            }
        }
        guard let partials else { return }
        for kv in 0..<kvHeads {
            VectorOps.mergeAttentionParts(parts, group: group, headSize: d, sums: sums + kv * parts * group * d,
                                          partials: partials + kv * parts * 2 * group, out: out + kv * group * d)
        }
    }

    /// Keys below which decoding attention does not cut a key/value head's keys into parts.
    static let minimumKeysPerPart = 32

    static func forward(_ o: Operands, _ layout: Heads, into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        let d = layout.headSize, kvHeads = layout.kvHeads, e = layout.width
        precondition(d > 0 && kvHeads > 0 && layout.heads % kvHeads == 0, "attention: \(layout.heads) heads over \(kvHeads) key/value heads")
        precondition(o.queries >= 0 && o.start >= 0 && o.ldq >= e && o.ldk >= d && o.ldv >= d && o.kvHeadStride >= d,
                     "attention: operands do not fit the heads")
        if o.queries == 0 { return }
        let group = layout.heads / kvHeads
        let groupWidth = group * d
        let scale = 1 / Float(d).squareRoot()
        let queryBlock = max(1, rowsPerItem / group)
        let blocks = (o.queries + queryBlock - 1) / queryBlock
        let outAddress = UnsafeMutableRawPointer(out)
        // A cache holds float keys; quantizing all of them again for each decoded token
        // would cost more than it saves, so only whole windows take the int8 path.
        let int8Scores = context.mode == .int8 && o.start == 0
        precondition(!int8Scores || (o.kvHeadStride == d && o.ldk >= kvHeads * d),
                     "attention: int8 scores read keys with the rows of all heads side by side")
        if o.queries == 1 && !int8Scores { return forwardOne(o, layout, into: out, context: context) }
        var qCodes: QuantizedHeads?, kCodes: QuantizedHeads?
        if int8Scores {
            let (qFactor, kFactor) = balancingFactors(o, layout)
            qCodes = QuantizedHeads(o.q, tokens: o.queries, ld: o.ldq, heads: layout.heads, headSize: d, factor: qFactor, threads: context.threads)
            kCodes = QuantizedHeads(o.k, tokens: o.queries, ld: o.ldk, heads: kvHeads, headSize: d, factor: kFactor, threads: context.threads)
        }
        Parallel.forEach(kvHeads * blocks, threads: context.threads) { item in
            let kv = item % kvHeads, blk = blocks - 1 - item / kvHeads
            let q0 = blk * queryBlock, q1 = min(o.queries, q0 + queryBlock), rows = q1 - q0
            let m = rows * group
            let keys = o.start + q1
            // One borrowed buffer per item (fresh pages for every item cost page faults):
            // scores [m, keys] (int32 products, then floats), the block's queries [m, d]
            // (int8 codes or floats), P·V [m, d], and per row 1/Σ and the query scale.
            let scoreBytes = m * keys * 4, rowBytes = m * d * 4
            ScratchBuffers.shared.withBuffer(bytes: scoreBytes + 2 * rowBytes + 2 * m * 4) { raw in
                let scores = raw.bindMemory(to: Float.self, capacity: m * keys)
                let queryBytes = raw + scoreBytes
                let values = (raw + scoreBytes + rowBytes).bindMemory(to: Float.self, capacity: m * d)
                let inverseSums = (raw + scoreBytes + 2 * rowBytes).bindMemory(to: Float.self, capacity: m)
                let rowScales = inverseSums + m
                if let qCodes, let kCodes {
                    // The group's heads of query i sit side by side: one copy of group·d codes.
                    let queries = queryBytes.bindMemory(to: Int8.self, capacity: m * d)
                    for i in 0..<rows {
                        (queries + i * groupWidth).update(from: qCodes.codes + (q0 + i) * e + kv * groupWidth, count: groupWidth)
                        for j in 0..<group { rowScales[i * group + j] = qCodes.scales[(kv * group + j) * o.queries + q0 + i] * scale }
                    }
                    context.backend.gemmS8S8S32(transA: false, transB: true, m: m, n: keys, k: d, a: queries, lda: d,
                                                b: kCodes.codes + kv * d, ldb: kvHeads * d,
                                                c: UnsafeMutableRawPointer(scores).assumingMemoryBound(to: Int32.self), ldc: keys)
                    let keyScales = kCodes.scales + kv * o.queries
                    for r in 0..<m {
                        let length = q0 + r / group + 1
                        inverseSums[r] = 1 / eqk_softmax_int32_unnormalised(scores + r * keys, rowScales[r], keyScales, keys, length)
                    }
                } else {
                    // The group's heads of query i sit side by side in q: one copy of group·d floats.
                    let queries = queryBytes.bindMemory(to: Float.self, capacity: m * d)
                    for i in 0..<rows {
                        (queries + i * groupWidth).update(from: o.q + (q0 + i) * o.ldq + kv * groupWidth, count: groupWidth)
                    }
                    context.backend.sgemm(transA: false, transB: true, m: m, n: keys, k: d, alpha: scale,
                                          a: queries, lda: d, b: o.k + kv * o.kvHeadStride, ldb: o.ldk, beta: 0, c: scores, ldc: keys)
                    // Query i (every head of it) sees keys 0 ... start+q0+i; later entries become 0.
                    for r in 0..<m {
                        let length = o.start + q0 + r / group + 1
                        inverseSums[r] = 1 / eqk_softmax_unnormalised(scores + r * keys, keys, length, 1)
                    }
                }
                context.backend.sgemm(transA: false, transB: false, m: m, n: d, k: keys, alpha: 1,
                                      a: scores, lda: keys, b: o.v + kv * o.kvHeadStride, ldb: o.ldv, beta: 0, c: values, ldc: d)
                let dst = outAddress.assumingMemoryBound(to: Float.self) + kv * groupWidth
                for i in 0..<rows {
                    eqk_scale_rows(dst + (q0 + i) * e, d, values + i * groupWidth, d, group, d, inverseSums + i * group)
                }
            }
        }
    }
}
