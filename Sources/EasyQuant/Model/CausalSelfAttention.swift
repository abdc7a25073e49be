import Foundation

/// Causal multi-head self-attention for `queries` new tokens at positions start ..< start+queries,
/// against the keys and values of positions 0 ..< start+queries.
///
/// For each head and each block of queries, scores = q·kᵀ/√d over the keys up to the
/// block's last query (keys after it are never computed: causal attention needs only the
/// lower triangle), masked, softmaxed, and multiplied by v. Heads and query blocks run in
/// parallel, each product on one thread. A whole window is the case start = 0 with q, k
/// and v read from the fused q|k|v projection; decoding with a cache reads k and v from it.
enum CausalSelfAttention {
    static let queryBlock = 64

    /// Row-major matrices with leading dimensions: q [queries, E], k and v [start+queries, E],
    /// each split into heads of E/heads columns; out [queries, E] (leading dimension E).
    struct Operands {
        var q: UnsafePointer<Float>, ldq: Int
        var k: UnsafePointer<Float>, ldk: Int
        var v: UnsafePointer<Float>, ldv: Int
        var queries: Int
        var start: Int
    }

    /// Attention over a window from the fused projection qkv [T, 3E].
    static func forward(qkv: UnsafePointer<Float>, tokens t: Int, embedding e: Int, heads: Int,
                        into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        forward(Operands(q: qkv, ldq: 3 * e, k: qkv + e, ldk: 3 * e, v: qkv + 2 * e, ldv: 3 * e, queries: t, start: 0),
                embedding: e, heads: heads, into: out, context: context)
    }

    static func forward(_ o: Operands, embedding e: Int, heads: Int, into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        let d = e / heads
        let scale = 1 / Float(d).squareRoot()
        let blocks = (o.queries + queryBlock - 1) / queryBlock
        let outAddress = UnsafeMutableRawPointer(out)
        // Later query blocks (more keys) first, so the most expensive items start early.
        Parallel.forEach(heads * blocks, threads: context.threads) { item in
            let h = item % heads, blk = blocks - 1 - item / heads
            let q0 = blk * queryBlock, q1 = min(o.queries, q0 + queryBlock), rows = q1 - q0
            let keys = o.start + q1
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: rows * keys)
            defer { scores.deallocate() }
            context.backend.sgemm(transA: false, transB: true, m: rows, n: keys, k: d, alpha: scale,
                                  a: o.q + q0 * o.ldq + h * d, lda: o.ldq, b: o.k + h * d, ldb: o.ldk,
                                  beta: 0, c: scores, ldc: keys)
            // Row i sees keys 0 ... start+q0+i; later entries become 0.
            for i in 0..<rows {
                VectorOps.softmaxInPlace(scores + i * keys, count: keys, length: o.start + q0 + i + 1)
            }
            let dst = outAddress.assumingMemoryBound(to: Float.self) + q0 * e + h * d
            context.backend.sgemm(transA: false, transB: false, m: rows, n: d, k: keys, alpha: 1,
                                  a: scores, lda: keys, b: o.v + h * d, ldb: o.ldv, beta: 0, c: dst, ldc: e)
        }
    }
}
