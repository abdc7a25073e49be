import Foundation

/// Causal multi-head self-attention over one window, from the fused q|k|v projection.
///
/// For each head and each block of queries, scores = q·kᵀ/√d over the keys up to the
/// block's last query (keys after it are never computed: causal attention needs only the
/// lower triangle), masked, softmaxed, and multiplied by v. Heads and query blocks run in
/// parallel, each product on one thread.
enum CausalSelfAttention {
    static let queryBlock = 64

    /// qkv: [T, 3E] (q, k, v side by side, each split into heads of E/heads); out: [T, E].
    static func forward(qkv: UnsafePointer<Float>, tokens t: Int, embedding e: Int, heads: Int,
                        into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        let d = e / heads
        let scale = 1 / Float(d).squareRoot()
        let blocks = (t + queryBlock - 1) / queryBlock
        let outAddress = UnsafeMutableRawPointer(out)
        // Larger query blocks first, so the most expensive work items start early.
        Parallel.forEach(heads * blocks, threads: context.threads) { item in
            let h = item % heads, blk = blocks - 1 - item / heads
            let q0 = blk * queryBlock, q1 = min(t, q0 + queryBlock), rows = q1 - q0
            let keys = q1
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: rows * keys)
            defer { scores.deallocate() }
            let q = qkv + q0 * 3 * e + h * d
            let k = qkv + e + h * d
            let v = qkv + 2 * e + h * d
            context.backend.sgemm(transA: false, transB: true, m: rows, n: keys, k: d, alpha: scale,
                                        a: q, lda: 3 * e, b: k, ldb: 3 * e, beta: 0, c: scores, ldc: keys)
            for i in 0..<rows {
                let row = scores + i * keys
                let visible = q0 + i + 1
                VectorOps.softmax(row, count: visible)
                for j in visible..<keys { row[j] = 0 }
            }
            let o = outAddress.assumingMemoryBound(to: Float.self) + q0 * e + h * d
            context.backend.sgemm(transA: false, transB: false, m: rows, n: d, k: keys, alpha: 1,
                                        a: scores, lda: keys, b: v, ldb: 3 * e, beta: 0, c: o, ldc: e)
        }
    }
}
