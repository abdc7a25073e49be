import Foundation

/// The element-wise and row-wise operations of a GPT-2 forward pass, on row-major
/// float buffers, vectorised with Swift SIMD types and spread over rows with `Parallel`
/// when a call has enough work to pay for waking threads.
///
/// Where a function takes both an input and an output pointer they may be the same
/// (in place); otherwise they must not overlap.
public enum VectorOps {
    /// Calls with fewer elements than this run on the calling thread: handing work to
    /// another core costs a few microseconds, about what 64K simple float ops take.
    static let parallelThreshold = 1 << 16

    /// Runs `body` over row ranges, in parallel only when rows·cols is large enough.
    @inline(__always)
    static func forRows(_ rows: Int, cols: Int, threads: Int, _ body: (Range<Int>) -> Void) {
        if threads <= 1 || rows * cols < parallelThreshold || rows < 2 {
            body(0..<rows)
        } else {
            Parallel.forRanges(rows, threads: threads, minimumChunk: max(1, parallelThreshold / max(1, cols) / 4), body)
        }
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
        let w = FloatVector.scalarCount
        let full = cols / w * w
        let n = Float(cols)
        forRows(rows, cols: cols, threads: threads) { range in
            for i in range {
                let row = x + i * cols
                let dst = out + i * cols
                var acc = FloatVector()
                var j = 0
                while j < full { acc += FloatVector.load(row + j); j += w }
                var sum = acc.sum()
                while j < cols { sum += row[j]; j += 1 }
                let hi = sum / n
                let hiV = FloatVector(repeating: hi)
                var dAcc = FloatVector(), sqAcc = FloatVector()
                j = 0
                while j < full {
                    let d = FloatVector.load(row + j) - hiV
                    dAcc += d
                    sqAcc += d * d
                    j += w
                }
                var dSum = dAcc.sum(), sq = sqAcc.sum()
                while j < cols { let d = row[j] - hi; dSum += d; sq += d * d; j += 1 }
                let lo = dSum / n
                // Var = mean((x − hi)²) − lo², never negative in exact arithmetic.
                let variance = Swift.max(0, sq / n - lo * lo)
                let rstd = 1 / (variance + eps).squareRoot()
                let loV = FloatVector(repeating: lo), rstdV = FloatVector(repeating: rstd)
                j = 0
                while j < full {
                    let centred = (FloatVector.load(row + j) - hiV) - loV
                    (centred * rstdV * FloatVector.load(gamma + j) + FloatVector.load(beta + j)).store(dst + j)
                    j += w
                }
                while j < cols { dst[j] = ((row[j] - hi) - lo) * rstd * gamma[j] + beta[j]; j += 1 }
            }
        }
    }

    // MARK: RMS norm

    /// RMS normalisation of each row (Llama's RMSNorm): `out[i,j] = x[i,j] / √(mean_j x² + eps) · gamma[j]`.
    /// The sum of squares is gathered in float lanes and finished in double. `out` may equal `x`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, cols: Int, gamma: UnsafePointer<Float>, eps: Float,
                               out: UnsafeMutablePointer<Float>, threads: Int = Parallel.defaultThreads) {
        precondition(rows >= 0 && cols > 0, "rmsNorm: bad shape \(rows)×\(cols)")
        let w = FloatVector.scalarCount
        let full = cols / w * w
        forRows(rows, cols: cols, threads: threads) { range in
            for i in range {
                let row = x + i * cols
                let dst = out + i * cols
                var acc = FloatVector()
                var j = 0
                while j < full { let v = FloatVector.load(row + j); acc += v * v; j += w }
                var sum = 0.0
                for l in 0..<w { sum += Double(acc[l]) }
                while j < cols { sum += Double(row[j] * row[j]); j += 1 }
                let rstd = Float(1 / (Float(sum / Double(cols)) + eps).squareRoot())
                let rstdV = FloatVector(repeating: rstd)
                j = 0
                while j < full { (FloatVector.load(row + j) * rstdV * FloatVector.load(gamma + j)).store(dst + j); j += w }
                while j < cols { dst[j] = row[j] * rstd * gamma[j]; j += 1 }
            }
        }
    }

    // MARK: SwiGLU

    /// Llama's gated MLP activation: `out[i] = silu(gate[i]) · up[i]` with silu(g) = g / (1 + e^−g).
    /// `out` may equal `up` or `gate`.
    public static func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>,
                              threads: Int = Parallel.defaultThreads) {
        precondition(count >= 0, "swiglu: negative count")
        let w = FloatVector.scalarCount
        let chunk = 4096
        forRows((count + chunk - 1) / chunk, cols: chunk, threads: threads) { range in
            for c in range {
                let lo = c * chunk, hi = min(count, lo + chunk)
                var j = lo
                while j + w <= hi {
                    let g = FloatVector.load(gate + j)
                    (g / (1 + vexp(-g)) * FloatVector.load(up + j)).store(out + j)
                    j += w
                }
                while j < hi { let g = gate[j]; out[j] = g / (1 + Foundation.exp(-g)) * up[j]; j += 1 }
            }
        }
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
        let w = FloatVector.scalarCount
        let chunk = 4096
        let chunks = (count + chunk - 1) / chunk
        forRows(chunks, cols: chunk, threads: threads) { range in
            for c in range {
                let lo = c * chunk, hi = min(count, lo + chunk)
                var j = lo
                while j + w <= hi {
                    geluVector(FloatVector.load(x + j)).store(out + j)
                    j += w
                }
                if j < hi {
                    geluVector(FloatVector.loadPartial(x + j, count: hi - j, fill: 0)).storePartial(out + j, count: hi - j)
                }
            }
        }
    }

    /// `gelu` in place.
    public static func geluInPlace(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int = Parallel.defaultThreads) {
        gelu(x, count: count, out: x, threads: threads)
    }

    @inline(__always)
    static func geluVector(_ x: FloatVector) -> FloatVector {
        let c: Float = 0.797_884_560_802_865_4 // √(2/π)
        let u = c * (x + 0.044715 * (x * x * x))
        return x / (1 + vexp(-2 * u))
    }

    // MARK: Bias and residual

    /// Adds `bias[j]` to every row: `x[i,j] += bias[j]` for a rows×cols matrix with
    /// leading dimension `ld` (default `cols`).
    public static func addBias(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int? = nil,
                               bias: UnsafePointer<Float>, threads: Int = Parallel.defaultThreads) {
        let ld = ld ?? cols
        precondition(rows >= 0 && cols >= 0 && ld >= cols, "addBias: bad shape")
        let w = FloatVector.scalarCount
        forRows(rows, cols: cols, threads: threads) { range in
            for i in range {
                let row = x + i * ld
                var j = 0
                while j + w <= cols {
                    (FloatVector.load(row + j) + FloatVector.load(bias + j)).store(row + j)
                    j += w
                }
                while j < cols { row[j] += bias[j]; j += 1 }
            }
        }
    }

    /// Residual connection: `x[i] += y[i]` for i in 0..<count.
    public static func add(_ y: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>, count: Int,
                           threads: Int = Parallel.defaultThreads) {
        precondition(count >= 0, "add: negative count")
        let w = FloatVector.scalarCount
        let chunk = 8192
        forRows((count + chunk - 1) / chunk, cols: chunk, threads: threads) { range in
            for c in range {
                let lo = c * chunk, hi = min(count, lo + chunk)
                var j = lo
                while j + w <= hi {
                    (FloatVector.load(x + j) + FloatVector.load(y + j)).store(x + j)
                    j += w
                }
                while j < hi { x[j] += y[j]; j += 1 }
            }
        }
    }

    // MARK: Softmax and log-sum-exp

    /// Lane-wise maximum without the NaN bookkeeping of `pointwiseMax` (which compiles to
    /// scalar code); NaN inputs give unspecified lanes.
    @inline(__always)
    static func vmax(_ a: FloatVector, _ b: FloatVector) -> FloatVector {
        a.replacing(with: b, where: a .< b)
    }

    /// The maximum of `p[0..<count]` (count ≥ 1).
    @inline(__always)
    static func rowMax(_ p: UnsafePointer<Float>, count: Int) -> Float {
        let w = FloatVector.scalarCount
        var j = 0
        var m = -Float.infinity
        if count >= w {
            var mv = FloatVector.load(p)
            j = w
            while j + w <= count { mv = vmax(mv, FloatVector.load(p + j)); j += w }
            m = mv.max()
        }
        while j < count { m = Swift.max(m, p[j]); j += 1 }
        return m
    }

    /// Softmax of one attention row in place, with a causal length: entries
    /// `0..<length` become `exp(scale·xⱼ − max)/Σ`, entries `length..<count` become 0
    /// (the future positions a token may not attend to). `scale` is typically 1/√d_head.
    public static func softmaxInPlace(_ row: UnsafeMutablePointer<Float>, count: Int, length: Int? = nil,
                                      scale: Float = 1) {
        let length = length ?? count
        precondition(length >= 1 && length <= count, "softmaxInPlace: length \(length) outside 1...\(count)")
        precondition(scale > 0, "softmaxInPlace: scale must be positive")
        let w = FloatVector.scalarCount
        // max(scale·x) = scale·max(x) because scale > 0.
        let m = scale * rowMax(row, count: length)
        let mV = FloatVector(repeating: m), sV = FloatVector(repeating: scale)
        var acc = FloatVector()
        var j = 0
        while j + w <= length {
            let e = vexp(FloatVector.load(row + j) * sV - mV)
            e.store(row + j)
            acc += e
            j += w
        }
        if j < length {
            // The tail's padding lanes are computed from 0 and cleared before summing.
            var e = vexp(FloatVector.loadPartial(row + j, count: length - j, fill: 0) * sV - mV)
            for l in (length - j)..<w { e[l] = 0 }
            e.storePartial(row + j, count: length - j)
            acc += e
        }
        let inv = 1 / acc.sum()
        let invV = FloatVector(repeating: inv)
        j = 0
        while j + w <= length { (FloatVector.load(row + j) * invV).store(row + j); j += w }
        while j < length { row[j] *= inv; j += 1 }
        (row + length).update(repeating: 0, count: count - length)
    }

    /// Causal softmax of a block of attention scores, rows in parallel: row i (of `rows`,
    /// each `cols` wide at stride `ld`) keeps its first `firstLength + i` entries, capped at
    /// `cols`, and zeroes the rest. For a full sequence starting at position 0 pass
    /// `firstLength: 1`; for queries at positions p₀, p₀+1, … over keys 0… pass p₀ + 1.
    public static func softmaxCausalRows(_ scores: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int? = nil,
                                         firstLength: Int = 1, scale: Float = 1, threads: Int = Parallel.defaultThreads) {
        let ld = ld ?? cols
        precondition(rows >= 0 && cols >= 1 && ld >= cols && firstLength >= 1, "softmaxCausalRows: bad shape")
        forRows(rows, cols: cols, threads: threads) { range in
            for i in range {
                softmaxInPlace(scores + i * ld, count: cols, length: Swift.min(cols, firstLength + i), scale: scale)
            }
        }
    }

    /// `log Σⱼ exp(xⱼ)` over `row[0..<count]`, computed as `max + log Σ exp(xⱼ − max)` so
    /// nothing overflows; with a row of logits, the token's negative log-likelihood is
    /// `logSumExp(row) − row[target]`. The sum is gathered in float lanes and finished in
    /// double, so 50257 terms lose nothing noticeable.
    public static func logSumExp(_ row: UnsafePointer<Float>, count: Int) -> Float {
        precondition(count >= 1, "logSumExp: empty row")
        let w = FloatVector.scalarCount
        let m = rowMax(row, count: count)
        if m == .infinity || m == -.infinity { return m }
        let mV = FloatVector(repeating: m)
        // Several accumulators: each lane sums at most count/(4w) terms.
        var a0 = FloatVector(), a1 = FloatVector(), a2 = FloatVector(), a3 = FloatVector()
        var j = 0
        while j + 4 * w <= count {
            a0 += vexp(FloatVector.load(row + j) - mV)
            a1 += vexp(FloatVector.load(row + j + w) - mV)
            a2 += vexp(FloatVector.load(row + j + 2 * w) - mV)
            a3 += vexp(FloatVector.load(row + j + 3 * w) - mV)
            j += 4 * w
        }
        var total = 0.0
        for l in 0..<w { total += Double(a0[l]) + Double(a1[l]) + Double(a2[l]) + Double(a3[l]) }
        while j + w <= count {
            let e = vexp(FloatVector.load(row + j) - mV)
            for l in 0..<w { total += Double(e[l]) }
            j += w
        }
        while j < count { total += Foundation.exp(Double(row[j] - m)); j += 1 }
        return m + Float(Foundation.log(total))
    }

    /// `logSumExp` of each row of a rows×cols matrix (stride `ld`), rows in parallel, into
    /// `out[0..<rows]`: the per-token normaliser of the logits for perplexity.
    public static func logSumExpRows(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int? = nil,
                                     out: UnsafeMutablePointer<Float>, threads: Int = Parallel.defaultThreads) {
        let ld = ld ?? cols
        precondition(rows >= 0 && cols >= 1 && ld >= cols, "logSumExpRows: bad shape")
        forRows(rows, cols: cols, threads: threads) { range in
            for i in range { out[i] = logSumExp(x + i * ld, count: cols) }
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
        precondition(rows >= 0 && cols >= 0, "quantizeRowsInt8: bad shape")
        let w = FloatVector.scalarCount
        forRows(rows, cols: cols, threads: threads) { range in
            for i in range {
                let row = x + i * cols
                let dst = out + i * cols
                // max |x| by clearing sign bits, so it vectorises without NaN handling.
                var maxV = FloatVector()
                var j = 0
                while j + w <= cols {
                    let bits = unsafeBitCast(FloatVector.load(row + j), to: IntVector.self) & 0x7FFF_FFFF
                    maxV = vmax(maxV, unsafeBitCast(bits, to: FloatVector.self))
                    j += w
                }
                var maxAbs = maxV.max()
                while j < cols { maxAbs = Swift.max(maxAbs, abs(row[j])); j += 1 }
                let scale = maxAbs / 127
                scales[i] = scale
                if scale == 0 {
                    dst.update(repeating: 0, count: cols)
                    rowSums?[i] = 0
                    continue
                }
                let scaleV = FloatVector(repeating: scale)
                let lo = IntVector(repeating: -127), hi = IntVector(repeating: 127)
                var sumV = IntVector()
                j = 0
                while j + w <= cols {
                    var q = roundToInt(FloatVector.load(row + j) / scaleV)
                    // max|x|/scale can round to just above 127; keep codes in range.
                    q.replace(with: lo, where: q .< lo)
                    q.replace(with: hi, where: q .> hi)
                    sumV &+= q
                    for l in 0..<w { dst[j + l] = Int8(truncatingIfNeeded: q[l]) }
                    j += w
                }
                var sum = sumV.wrappedSum()
                while j < cols {
                    let q = Swift.min(127, Swift.max(-127, (row[j] / scale).rounded(.toNearestOrEven)))
                    dst[j] = Int8(q)
                    sum &+= Int32(q)
                    j += 1
                }
                rowSums?[i] = sum
            }
        }
    }
}
