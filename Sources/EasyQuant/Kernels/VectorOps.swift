import CKernels
import Foundation

/// The element-wise and row-wise operations of a forward pass, on row-major float
/// buffers, spread over rows with `Parallel` when a call has enough work to pay for
/// waking threads.
///
/// The loops themselves are C (Sources/CKernels), compiled for AVX-512, AVX2+FMA and the
/// baseline with the copy chosen at run time, so the binary runs on any x86-64 CPU and
/// still uses the machine's widest vectors. Every shape is checked here, once, before the
/// kernels (which trust their arguments) run.
///
/// Where a function takes both an input and an output pointer they may be the same
/// (in place); otherwise they must not overlap.
public enum VectorOps {
    /// Calls with fewer elements than this run on the calling thread: handing work to
    /// another core costs a few microseconds, about what 64K simple float ops take.
    static let parallelThreshold = 1 << 16

    /// The instruction set the kernels use on this CPU: "avx512", "avx2" or "baseline".
    public static var instructionSet: String { String(cString: eqk_isa()) }

    /// Makes the kernels use their copy for `name` ("baseline", "avx2", "avx512", or "auto"
    /// for the widest this CPU has), to test or time the narrower copies; false, changing
    /// nothing, for an unknown name or a set this CPU lacks. Call it while no kernel runs.
    @discardableResult
    public static func useInstructionSet(_ name: String) -> Bool { eqk_use_isa(name) != 0 }

    /// Runs `body` over row ranges, in parallel only when rows·cols is large enough.
    @inline(__always)
    static func forRows(_ rows: Int, cols: Int, threads: Int, _ body: (Range<Int>) -> Void) {
        if threads <= 1 || rows * cols < parallelThreshold || rows < 2 {
            body(0..<rows)
        } else {
            Parallel.forRanges(rows, threads: threads, minimumChunk: max(1, parallelThreshold / max(1, cols) / 4), body)
        }
    }

    /// Runs `body` over element ranges of `count`, in chunks of `chunk`, in parallel when large.
    @inline(__always)
    static func forChunks(_ count: Int, chunk: Int, threads: Int, _ body: (Int, Int) -> Void) {
        forRows((count + chunk - 1) / chunk, cols: chunk, threads: threads) { range in
            for c in range {
                let lo = c * chunk
                body(lo, min(count, lo + chunk) - lo)
            }
        }
    }

    /// rows·cols, refusing shapes whose element count overflows.
    @inline(__always)
    static func elements(_ rows: Int, _ cols: Int, _ call: StaticString) -> Int {
        let (n, overflow) = rows.multipliedReportingOverflow(by: cols)
        precondition(!overflow, "\(call): \(rows)×\(cols) elements overflow")
        return n
    }

    // MARK: Layer norm

    /// Layer normalisation of each row: `out[i,j] = (x[i,j] − μᵢ)/√(σᵢ² + eps)·gamma[j] + beta[j]`,
    /// with μᵢ and σᵢ² the mean and (biased, 1/cols) variance of row i, as GPT-2's LayerNorm.
    ///
    /// GPT-2's residual stream has a few channels in the thousands, so a float mean can be
    /// off by more than the spread of the other values. The mean is therefore kept as
    /// hi + lo: hi from a first pass, lo = mean(x − hi) from a second, which also sums
    /// (x − hi)² for the variance (x − hi is nearly exact once hi is close). `out` may equal `x`.
    public static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, cols: Int,
                                 gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
                                 out: UnsafeMutablePointer<Float>, threads: Int = Parallel.defaultThreads) {
        precondition(rows >= 0 && cols > 0, "layerNorm: bad shape \(rows)×\(cols)")
        _ = elements(rows, cols, "layerNorm")
        forRows(rows, cols: cols, threads: threads) { range in
            eqk_layer_norm(x + range.lowerBound * cols, range.count, cols, gamma, beta, eps, out + range.lowerBound * cols)
        }
    }

    // MARK: Attention of one query

    /// Attention of one new token for `group` query heads of `headSize` values that share one
    /// key/value head: for head h, `out[h·d ..< (h+1)·d] = Σ_t softmax_t(scale·q_h·k_t)·v_t` over
    /// the `count` keys (row t at `keys + t·ldk`, `values + t·ldv`). q and out hold group·d
    /// floats; `scores` is scratch for `group·count` floats. Decoding calls it once per key/value head
    /// (and part of the keys).
    ///
    /// With `partial` (2·group floats) the keys are one part of a longer run: `out` is left
    /// undivided, Σ_t p_t·v_t with p_t = exp(scale·q_h·k_t − m_h), and partial[2h] = m_h (the
    /// largest scale·q_h·k_t), partial[2h + 1] = Σ_t p_t; `mergeAttentionParts` joins the parts.
    public static func attendOne(_ q: UnsafePointer<Float>, group: Int, headSize d: Int, keys: UnsafePointer<Float>, ldk: Int,
                                 values: UnsafePointer<Float>, ldv: Int, count: Int, scale: Float,
                                 scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                                 partial: UnsafeMutablePointer<Float>? = nil) {
        attendOne(q, group: group, headSize: d, keys: UnsafeRawPointer(keys), ldk: ldk, values: UnsafeRawPointer(values), ldv: ldv,
                  storage: .f32, count: count, scale: scale, scores: scores, out: out, partial: partial)
    }

    /// The first index of the largest value (the lowest on ties), NaNs passed over (0 if
    /// all are NaN or x is empty).
    public static func argmax(_ x: UnsafeBufferPointer<Float>) -> Int {
        guard let base = x.baseAddress else { return 0 }
        return eqk_argmax(base, x.count)
    }

    /// The halves (IEEE binary16 bits) nearest to x, ties to even: what a KV cache of
    /// `KVStorage.f16` stores.
    public static func halves(_ x: [Float]) -> [UInt16] {
        var out = [UInt16](repeating: 0, count: x.count)
        _ = halvesOverflowing(x, into: &out)
        return out
    }

    /// Writes the halves nearest to x into `out` (as `halves`) and returns how many values
    /// were beyond their range (magnitude 65,520 or more, infinities included).
    public static func halvesOverflowing(_ x: [Float], into out: inout [UInt16]) -> Int {
        precondition(out.count >= x.count, "halvesOverflowing: out holds \(out.count), not \(x.count)")
        return eqk_f32_to_f16(x, x.count, &out)
    }

    /// The floats of halves given by their bits (exact).
    public static func floats(halves h: [UInt16]) -> [Float] {
        var out = [Float](repeating: 0, count: h.count)
        eqk_f16_to_f32(h, h.count, &out)
        return out
    }

    /// `attendOne` over keys and values stored as `storage` (floats or halves; ldk and ldv
    /// in elements): the same result, bit for bit, for halves as for their floats.
    public static func attendOne(_ q: UnsafePointer<Float>, group: Int, headSize d: Int, keys: UnsafeRawPointer, ldk: Int,
                                 values: UnsafeRawPointer, ldv: Int, storage: KVStorage, count: Int, scale: Float,
                                 scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                                 partial: UnsafeMutablePointer<Float>? = nil) {
        precondition(group > 0 && d > 0 && count > 0 && ldk >= d && ldv >= d && scale > 0,
                     "attendOne: bad shape (group \(group), head size \(d), \(count) keys, ld \(ldk)/\(ldv))")
        _ = elements(count, ldk, "attendOne"); _ = elements(count, ldv, "attendOne"); _ = elements(group, d, "attendOne")
        switch storage {
        case .f32:
            eqk_attend_one(q, group, d, keys.assumingMemoryBound(to: Float.self), ldk, values.assumingMemoryBound(to: Float.self),
                           ldv, count, scale, scores, out, partial)
        case .f16:
            eqk_attend_one_f16(q, group, d, keys.assumingMemoryBound(to: UInt16.self), ldk, values.assumingMemoryBound(to: UInt16.self),
                               ldv, count, scale, scores, out, partial)
        }
    }

    /// Joins `parts` results of `attendOne` with `partial` for the same `group` heads of size d
    /// over consecutive runs of keys: part p's undivided sums at `sums + p·group·d`, its maxima and
    /// exponential sums at `partials + p·2·group`. Writes the softmax-weighted values of the whole
    /// run: out_h = Σ_p e^(m_p − m)·o_p / Σ_p e^(m_p − m)·s_p, m the largest m_p.
    public static func mergeAttentionParts(_ parts: Int, group: Int, headSize d: Int, sums: UnsafePointer<Float>,
                                           partials: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        precondition(parts > 0 && group > 0 && d > 0, "mergeAttentionParts: bad shape")
        for h in 0..<group {
            var m = -Float.infinity
            for p in 0..<parts { m = max(m, partials[(p * group + h) * 2]) }
            var denominator: Float = 0
            let o = out + h * d
            o.initialize(repeating: 0, count: d)
            for p in 0..<parts {
                let weight = Foundation.exp(partials[(p * group + h) * 2] - m)
                denominator += weight * partials[(p * group + h) * 2 + 1]
                let part = sums + (p * group + h) * d
                for c in 0..<d { o[c] += weight * part[c] }
            }
            let inverse = 1 / denominator
            for c in 0..<d { o[c] *= inverse }
        }
    }

    // MARK: RMS norm

    /// RMS normalisation of each row (Llama's RMSNorm): `out[i,j] = x[i,j] / √(mean_j x² + eps) · gamma[j]`.
    /// The sum of squares is gathered in float lanes and finished in double. `out` may equal `x`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, cols: Int, gamma: UnsafePointer<Float>, eps: Float,
                               out: UnsafeMutablePointer<Float>, threads: Int = Parallel.defaultThreads) {
        precondition(rows >= 0 && cols > 0, "rmsNorm: bad shape \(rows)×\(cols)")
        _ = elements(rows, cols, "rmsNorm")
        forRows(rows, cols: cols, threads: threads) { range in
            eqk_rms_norm(x + range.lowerBound * cols, range.count, cols, gamma, eps, out + range.lowerBound * cols)
        }
    }

    // MARK: SwiGLU

    /// Llama's gated MLP activation: `out[i] = silu(gate[i]) · up[i]` with silu(g) = g / (1 + e^−g).
    /// `out` may equal `up` or `gate`.
    public static func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>,
                              threads: Int = Parallel.defaultThreads) {
        precondition(count >= 0, "swiglu: negative count")
        forChunks(count, chunk: 4096, threads: threads) { lo, n in eqk_swiglu(gate + lo, up + lo, n, out + lo) }
    }

    // MARK: GELU

    /// GPT-2's `gelu_new`, the tanh approximation of GELU:
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, written to `out` (may equal `x`).
    ///
    /// Evaluated as the equal `x / (1 + e^(−2u))` with u = √(2/π)·(x + 0.044715·x³):
    /// 1 + tanh(u) = 2/(1 + e^(−2u)), so one vector exp replaces the scalar tanh and the
    /// negative tail keeps its relative accuracy (1 + tanh(u) cancels there in float).
    public static func gelu(_ x: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>,
                            threads: Int = Parallel.defaultThreads) {
        precondition(count >= 0, "gelu: negative count")
        forChunks(count, chunk: 4096, threads: threads) { lo, n in eqk_gelu(x + lo, n, out + lo) }
    }

    /// `gelu` in place.
    public static func geluInPlace(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int = Parallel.defaultThreads) {
        gelu(x, count: count, out: x, threads: threads)
    }

    // MARK: Bias and residual

    /// Adds `bias[j]` to every row: `x[i,j] += bias[j]` for a rows×cols matrix with
    /// leading dimension `ld` (default `cols`).
    public static func addBias(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int? = nil,
                               bias: UnsafePointer<Float>, threads: Int = Parallel.defaultThreads) {
        let ld = ld ?? cols
        precondition(rows >= 0 && cols >= 0 && ld >= cols, "addBias: bad shape")
        _ = elements(rows, ld, "addBias")
        forRows(rows, cols: cols, threads: threads) { range in
            eqk_add_bias(x + range.lowerBound * ld, range.count, cols, ld, bias)
        }
    }

    /// Residual connection: `x[i] += y[i]` for i in 0..<count.
    public static func add(_ y: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>, count: Int,
                           threads: Int = Parallel.defaultThreads) {
        precondition(count >= 0, "add: negative count")
        forChunks(count, chunk: 8192, threads: threads) { lo, n in eqk_add(y + lo, x + lo, n) }
    }

    // MARK: Softmax and log-sum-exp

    /// Softmax of one attention row in place, with a causal length: entries
    /// `0..<length` become `exp(scale·xⱼ − max)/Σ`, entries `length..<count` become 0
    /// (the future positions a token may not attend to). `scale` is typically 1/√d_head.
    public static func softmaxInPlace(_ row: UnsafeMutablePointer<Float>, count: Int, length: Int? = nil,
                                      scale: Float = 1) {
        let length = length ?? count
        precondition(length >= 1 && length <= count, "softmaxInPlace: length \(length) outside 1...\(count)")
        precondition(scale > 0, "softmaxInPlace: scale must be positive")
        eqk_softmax(row, count, length, scale)
    }

    /// `softmaxInPlace` without the division: entries `0..<length` become
    /// `exp(scale·xⱼ − scale·max)`, the rest 0, and the sum (at least 1) is returned, for
    /// callers that divide a later, smaller result by it instead (attention divides the
    /// d-wide output row rather than the keys-wide score row).
    public static func unnormalisedSoftmaxInPlace(_ row: UnsafeMutablePointer<Float>, count: Int, length: Int,
                                                  scale: Float = 1) -> Float {
        precondition(length >= 1 && length <= count, "unnormalisedSoftmaxInPlace: length \(length) outside 1...\(count)")
        precondition(scale > 0, "unnormalisedSoftmaxInPlace: scale must be positive")
        return eqk_softmax_unnormalised(row, count, length, scale)
    }

    /// Causal softmax of a block of attention scores, rows in parallel: row i (of `rows`,
    /// each `cols` wide at stride `ld`) keeps its first `firstLength + i` entries, capped at
    /// `cols`, and zeroes the rest. For a full sequence starting at position 0 pass
    /// `firstLength: 1`; for queries at positions p₀, p₀+1, … over keys 0… pass p₀ + 1.
    public static func softmaxCausalRows(_ scores: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int? = nil,
                                         firstLength: Int = 1, scale: Float = 1, threads: Int = Parallel.defaultThreads) {
        let ld = ld ?? cols
        precondition(rows >= 0 && cols >= 1 && ld >= cols && firstLength >= 1, "softmaxCausalRows: bad shape")
        precondition(scale > 0, "softmaxCausalRows: scale must be positive")
        _ = elements(rows, ld, "softmaxCausalRows")
        forRows(rows, cols: cols, threads: threads) { range in
            for i in range {
                eqk_softmax(scores + i * ld, cols, Swift.min(cols, firstLength + i), scale)
            }
        }
    }

    /// `log Σⱼ exp(xⱼ)` over `row[0..<count]`, computed as `max + log Σ exp(xⱼ − max)` so
    /// nothing overflows; with a row of logits, the token's negative log-likelihood is
    /// `logSumExp(row) − row[target]`. The sum is gathered in float lanes and finished in
    /// double, so 50257 terms lose nothing noticeable.
    public static func logSumExp(_ row: UnsafePointer<Float>, count: Int) -> Float {
        precondition(count >= 1, "logSumExp: empty row")
        return eqk_log_sum_exp(row, count)
    }

    /// `logSumExp` of each row of a rows×cols matrix (stride `ld`), rows in parallel, into
    /// `out[0..<rows]`: the per-token normaliser of the logits for perplexity.
    public static func logSumExpRows(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int? = nil,
                                     out: UnsafeMutablePointer<Float>, threads: Int = Parallel.defaultThreads) {
        let ld = ld ?? cols
        precondition(rows >= 0 && cols >= 1 && ld >= cols, "logSumExpRows: bad shape")
        _ = elements(rows, ld, "logSumExpRows")
        forRows(rows, cols: cols, threads: threads) { range in
            for i in range { out[i] = eqk_log_sum_exp(x + i * ld, cols) }
        }
    }

    // MARK: Activation quantization

    /// Per-row (per-token) symmetric int8 quantization of a rows×cols matrix.
    ///
    /// For row i: `scales[i] = max|x[i,:]| / 127` and `out[i,j] = round(x[i,j] / scales[i])`,
    /// rounding half to even (as `torch.round` does), within −127...127 (−128 is never
    /// produced, so negating a code cannot overflow). A row of zeros gets scale 0 and zero
    /// codes. When `rowSums` is given, `rowSums[i] = Σⱼ out[i,j]`: with per-channel weight
    /// zero points zp, Σₖ xq[i,k]·(wq[k,j] − zpⱼ) = (Xq·Wq)[i,j] − zpⱼ·rowSums[i].
    /// Inputs must be finite.
    public static func quantizeRowsInt8(_ x: UnsafePointer<Float>, rows: Int, cols: Int,
                                        out: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>,
                                        rowSums: UnsafeMutablePointer<Int32>? = nil,
                                        threads: Int = Parallel.defaultThreads) {
        if cols == 0 {
            precondition(rows >= 0, "quantizeRowsInt8: bad shape")
            scales.update(repeating: 0, count: rows)
            rowSums?.update(repeating: 0, count: rows)
            return
        }
        quantizeRowsInt8(x, rows: rows, cols: cols, out: out, scales: scales, groupSums: rowSums,
                         groupSize: cols, threads: threads)
    }

    /// `quantizeRowsInt8` with the code sums per block of `groupSize` columns:
    /// `groupSums[i·groups + g] = Σ out[i, g·groupSize ..< min(cols, (g+1)·groupSize)]`
    /// with groups = ⌈cols / groupSize⌉, for weights whose zero points change along the input.
    public static func quantizeRowsInt8(_ x: UnsafePointer<Float>, rows: Int, cols: Int,
                                        out: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>,
                                        groupSums: UnsafeMutablePointer<Int32>?, groupSize: Int,
                                        threads: Int = Parallel.defaultThreads) {
        precondition(rows >= 0 && cols >= 0 && groupSize >= 1, "quantizeRowsInt8: bad shape")
        _ = elements(rows, cols, "quantizeRowsInt8")
        let groups = (cols + groupSize - 1) / groupSize
        forRows(rows, cols: cols, threads: threads) { range in
            let i0 = range.lowerBound
            eqk_quantize_rows_int8(x + i0 * cols, range.count, cols, out + i0 * cols, scales + i0,
                                   groupSums.map { $0 + i0 * groups }, groupSize)
        }
    }
}
