import Foundation

/// Causal multi-head self-attention for `queries` new tokens at positions start ..< start+queries,
/// against the keys and values of positions 0 ..< start+queries, with grouped-query heads.
///
/// For each query head and each block of queries, scores = q·kᵀ/√d over the keys up to the
/// block's last query (keys after it are never computed: causal attention needs only the
/// lower triangle), masked, softmaxed, and multiplied by v. Query head h reads key/value
/// head h / (heads / kvHeads): GPT-2 has one per query head, Llama-family models share
/// each among a group. Heads and query blocks run in parallel, each product on one thread.
enum CausalSelfAttention {
    static let queryBlock = 64

    /// Row-major matrices with leading dimensions: q [queries, heads·d], k and v
    /// [start+queries, kvHeads·d]; out [queries, heads·d] (leading dimension heads·d).
    struct Operands {
        var q: UnsafePointer<Float>, ldq: Int
        var k: UnsafePointer<Float>, ldk: Int
        var v: UnsafePointer<Float>, ldv: Int
        var queries: Int
        var start: Int
    }

    /// The head layout: `heads` query heads of `headSize`, sharing `kvHeads` key/value heads.
    struct Heads {
        var heads: Int
        var kvHeads: Int
        var headSize: Int
        var width: Int { heads * headSize }
    }

    static func forward(_ o: Operands, _ layout: Heads, into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        let d = layout.headSize, heads = layout.heads, group = layout.heads / layout.kvHeads, e = layout.width
        let scale = 1 / Float(d).squareRoot()
        let blocks = (o.queries + queryBlock - 1) / queryBlock
        let outAddress = UnsafeMutableRawPointer(out)
        // Later query blocks (more keys) first, so the most expensive items start early.
        Parallel.forEach(heads * blocks, threads: context.threads) { item in
            let h = item % heads, blk = blocks - 1 - item / heads
            let kvColumn = (h / group) * d
            let q0 = blk * queryBlock, q1 = min(o.queries, q0 + queryBlock), rows = q1 - q0
            let keys = o.start + q1
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: rows * keys)
            defer { scores.deallocate() }
            context.backend.sgemm(transA: false, transB: true, m: rows, n: keys, k: d, alpha: scale,
                                  a: o.q + q0 * o.ldq + h * d, lda: o.ldq, b: o.k + kvColumn, ldb: o.ldk,
                                  beta: 0, c: scores, ldc: keys)
            // Row i sees keys 0 ... start+q0+i; later entries become 0.
            for i in 0..<rows {
                VectorOps.softmaxInPlace(scores + i * keys, count: keys, length: o.start + q0 + i + 1)
            }
            let dst = outAddress.assumingMemoryBound(to: Float.self) + q0 * e + h * d
            context.backend.sgemm(transA: false, transB: false, m: rows, n: d, k: keys, alpha: 1,
                                  a: scores, lda: keys, b: o.v + kvColumn, ldb: o.ldv, beta: 0, c: dst, ldc: e)
        }
    }
}
