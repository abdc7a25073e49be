/// How the matrix products of a forward pass are computed.
public enum ComputeMode: String, Sendable, CaseIterable {
    /// Activations in f32; quantized weights are dequantized tile by tile inside the product.
    case f32
    /// Activations quantized per token to int8 on the fly; int8 × int8 products accumulated
    /// in int32, then rescaled by the activation and weight scales.
    case int8
}

/// What a forward pass computes with: the mode, the matrix backend, and the threads.
///
/// Every product runs on one thread of the backend and the work is split across threads
/// here (by output channels, heads, query blocks). Letting oneDNN start its own OpenMP
/// threads as well made OpenMP's spinning workers fight the Dispatch threads for the two
/// cores, which cost several times the work itself.
public struct ComputeContext: Sendable {
    public var mode: ComputeMode
    /// A single-threaded backend: callers split the work.
    public var backend: any MatrixBackend
    public var threads: Int
    /// When set, forward passes add their time per phase to it.
    public var profile: ForwardProfile?
    /// When set, attention keys and values are quantized as a cache would hold them.
    public var kvQuantization: KVQuantization?
    /// Counts what the KV quantization kept exactly, for its bytes-per-token figure.
    public var kvTally: KVQuantization.Tally?

    public init(mode: ComputeMode = .f32, backendName: String = MatrixBackends.names[0], threads: Int = Parallel.defaultThreads) {
        self.mode = mode
        self.threads = threads
        backend = MatrixBackends.named(backendName, threads: 1)!
    }
}

/// y = x · W + b for a batch of rows, with W stored as the checkpoint stores it:
/// [in, out] for GPT-2's Conv1D layers, [out, in] for the (tied) output embedding.
///
/// With an outlier part (LLM.int8), y = X[:, inliers] · W[inliers, :] + X[:, outliers] · O + b:
/// the main product sees X with the outlier columns zeroed, in either compute mode, and
/// the outlier product runs in f32.
public struct Linear: Sendable {
    public let weight: WeightMatrix
    /// True when the stored matrix is [out, in] (one row per output channel).
    public let outputIsRows: Bool
    public let bias: [Float]?
    /// Input features computed in f32 with their own weight rows, or nil.
    public let outliers: OutlierFeatures?

    public var inFeatures: Int { outputIsRows ? weight.columns : weight.rows }
    public var outFeatures: Int { outputIsRows ? weight.rows : weight.columns }

    /// Output channels per parallel tile when weights must be expanded or rescaled.
    static let tileWidth = 256

    public init(weight: WeightMatrix, outputIsRows: Bool, bias: [Float]?, outliers: OutlierFeatures? = nil) {
        self.weight = weight; self.outputIsRows = outputIsRows; self.bias = bias
        self.outliers = outliers
        precondition(bias == nil || bias!.count == outFeatures)
        precondition(outliers == nil || (outliers!.outFeatures == outFeatures && outliers!.indices.allSatisfy { $0 < inFeatures }),
                     "the outlier part does not fit the layer")
    }

    /// Computes `m` rows: x is [m, in], y is [m, out] (leading dimensions in and out).
    public func forward(_ x: UnsafePointer<Float>, rows m: Int, into y: UnsafeMutablePointer<Float>, context: ComputeContext) {
        guard let outliers, outliers.count > 0 else { return forwardMain(x, rows: m, into: y, context: context) }
        outliers.withInliers(of: x, rows: m, columns: inFeatures) { forwardMain($0, rows: m, into: y, context: context) }
        outliers.accumulate(x, rows: m, columns: inFeatures, into: y, context: context)
    }

    /// The product with the main weight (dense, dequantized or int8), bias included.
    private func forwardMain(_ x: UnsafePointer<Float>, rows m: Int, into y: UnsafeMutablePointer<Float>, context: ComputeContext) {
        switch (weight, context.mode) {
        case (.dense(let w), _):
            // Dense weights reach int8 mode only when the caller chose to keep them in float.
            forwardDense(w, x, m, y, context)
        case (.quantized(let w), .f32):
            forwardDequantizing(w, x, m, y, context)
        case (.quantized(let w), .int8):
            let xq = QuantizedActivations(x, rows: m, columns: inFeatures, groupSize: kBlock(w), withSums: w.zeroPoints != nil, threads: context.threads)
            forwardInt8(w, xq, y, context)
        }
    }

    /// Output channels [n0, n1) of every parallel piece: at most `width` wide, and at least
    /// one piece per thread.
    func tiles(width: Int, threads: Int) -> [Range<Int>] {
        let n = outFeatures
        let perThread = (n + threads - 1) / max(1, threads)
        let w = max(16, min(width, (perThread + 15) / 16 * 16))
        return stride(from: 0, to: n, by: w).map { $0..<min(n, $0 + w) }
    }

    /// Float weights: the product split by output channels, each piece on its own thread,
    /// reading the weight in place.
    private func forwardDense(_ w: DenseWeight, _ x: UnsafePointer<Float>, _ m: Int, _ y: UnsafeMutablePointer<Float>,
                              _ context: ComputeContext) {
        let n = outFeatures, k = inFeatures
        let pieces = tiles(width: .max, threads: context.threads)
        let yAddress = UnsafeMutableRawPointer(y)
        Parallel.forEach(pieces.count, threads: context.threads) { t in
            let r = pieces[t]
            let out = yAddress.assumingMemoryBound(to: Float.self)
            let b = outputIsRows ? w.values + r.lowerBound * k : w.values + r.lowerBound
            context.backend.sgemm(transA: false, transB: outputIsRows, m: m, n: r.count, k: k, alpha: 1,
                                  a: x, lda: k, b: b, ldb: outputIsRows ? k : n, beta: 0, c: out + r.lowerBound, ldc: n)
            addBias(out, rows: m, columns: r)
        }
    }

    /// Input elements that share a weight scale (the block's extent along the input axis).
    func kBlock(_ w: QuantizedWeight) -> Int {
        min(inFeatures, outputIsRows ? w.blockColumns : w.blockRows)
    }

    /// Adds the bias to output channels `columns` of m rows (called inside a parallel piece).
    private func addBias(_ y: UnsafeMutablePointer<Float>, rows m: Int, columns: Range<Int>) {
        guard let bias else { return }
        bias.withUnsafeBufferPointer { b in
            VectorOps.addBias(y + columns.lowerBound, rows: m, cols: columns.count, ld: outFeatures,
                              bias: b.baseAddress! + columns.lowerBound, threads: 1)
        }
    }

    /// f32 mode: tiles of output channels are dequantized into a scratch matrix and
    /// multiplied there, side by side on all threads; the weight is never expanded whole.
    private func forwardDequantizing(_ w: QuantizedWeight, _ x: UnsafePointer<Float>, _ m: Int,
                                     _ y: UnsafeMutablePointer<Float>, _ context: ComputeContext) {
        let n = outFeatures, k = inFeatures
        let pieces = tiles(width: Self.tileWidth, threads: context.threads)
        let yAddress = UnsafeMutableRawPointer(y)
        Parallel.forEach(pieces.count, threads: context.threads) { t in
            let n0 = pieces[t].lowerBound, n1 = pieces[t].upperBound, nb = n1 - n0
            let tile = UnsafeMutablePointer<Float>.allocate(capacity: nb * k)
            defer { tile.deallocate() }
            let out = yAddress.assumingMemoryBound(to: Float.self)
            if outputIsRows {
                w.dequantize(rows: n0..<n1, columns: 0..<k, into: tile, ld: k)
                context.backend.sgemm(transA: false, transB: true, m: m, n: nb, k: k, alpha: 1,
                                            a: x, lda: k, b: tile, ldb: k, beta: 0, c: out + n0, ldc: n)
            } else {
                w.dequantize(rows: 0..<k, columns: n0..<n1, into: tile, ld: nb)
                context.backend.sgemm(transA: false, transB: false, m: m, n: nb, k: k, alpha: 1,
                                            a: x, lda: k, b: tile, ldb: nb, beta: 0, c: out + n0, ldc: n)
            }
            addBias(out, rows: m, columns: n0..<n1)
        }
    }

    /// int8 mode: per tile of output channels and per block of inputs sharing a weight
    /// scale, an exact int8 product, then y += sx·sw·(C − z·Σxq) (+ bias).
    func forwardInt8(_ w: QuantizedWeight, _ xq: QuantizedActivations, _ y: UnsafeMutablePointer<Float>, _ context: ComputeContext) {
        let n = outFeatures, k = inFeatures, m = xq.rows
        let kb = kBlock(w)
        let kBlocks = (k + kb - 1) / kb
        let pieces = tiles(width: Self.tileWidth, threads: context.threads)
        let yAddress = UnsafeMutableRawPointer(y)
        Parallel.forEach(pieces.count, threads: context.threads) { t in
            let n0 = pieces[t].lowerBound, n1 = pieces[t].upperBound, nb = n1 - n0
            let acc = UnsafeMutablePointer<Int32>.allocate(capacity: m * nb)
            let scale = UnsafeMutablePointer<Float>.allocate(capacity: nb)
            let zero = UnsafeMutablePointer<Float>.allocate(capacity: nb)
            defer { acc.deallocate(); scale.deallocate(); zero.deallocate() }
            let out = yAddress.assumingMemoryBound(to: Float.self)
            w.codes.withUnsafeBufferPointer { codes in
                for g in 0..<kBlocks {
                    let k0 = g * kb, kLen = min(k, k0 + kb) - k0
                    let b = outputIsRows ? codes.baseAddress! + n0 * k + k0 : codes.baseAddress! + k0 * n + n0
                    context.backend.gemmS8S8S32(transA: false, transB: outputIsRows, m: m, n: nb, k: kLen,
                                                      a: xq.codes + k0, lda: k, b: b, ldb: outputIsRows ? k : n,
                                                      c: acc, ldc: nb)
                    for j in 0..<nb {
                        let s = blockIndex(w, output: n0 + j, input: k0)
                        scale[j] = w.scales[s]
                        zero[j] = w.zeroPoints?[s] ?? 0
                    }
                    for i in 0..<m {
                        let row = out + i * n + n0
                        let cRow = acc + i * nb
                        let sx = xq.scales[i]
                        let sum = w.zeroPoints == nil ? 0 : Float(xq.sums![i * xq.groups + g])
                        if g == 0 {
                            for j in 0..<nb { row[j] = sx * scale[j] * (Float(cRow[j]) - zero[j] * sum) }
                        } else {
                            for j in 0..<nb { row[j] += sx * scale[j] * (Float(cRow[j]) - zero[j] * sum) }
                        }
                    }
                }
            }
            addBias(out, rows: m, columns: n0..<n1)
        }
    }

    /// The scale index of weight element (input, output).
    @inline(__always) func blockIndex(_ w: QuantizedWeight, output: Int, input: Int) -> Int {
        outputIsRows ? (output / w.blockRows) * w.scaleColumns + input / w.blockColumns
                     : (input / w.blockRows) * w.scaleColumns + output / w.blockColumns
    }
}

/// Activations quantized per token (row): x ≈ codes · scale, scale = max|row| / 127, with
/// the code sums per block of `groupSize` inputs when zero points need them.
public final class QuantizedActivations {
    public let rows: Int
    public let columns: Int
    public let codes: UnsafeMutablePointer<Int8>
    public let scales: UnsafeMutablePointer<Float>
    public let groups: Int
    public let sums: UnsafeMutablePointer<Int32>?

    public init(_ x: UnsafePointer<Float>, rows: Int, columns: Int, groupSize: Int, withSums: Bool, threads: Int) {
        self.rows = rows; self.columns = columns
        codes = .allocate(capacity: max(1, rows * columns))
        scales = .allocate(capacity: max(1, rows))
        groups = (columns + groupSize - 1) / max(1, groupSize)
        sums = withSums ? .allocate(capacity: max(1, rows * groups)) : nil
        VectorOps.quantizeRowsInt8(x, rows: rows, cols: columns, out: codes, scales: scales, threads: threads)
        // Zero points need the sum of the codes over each block of inputs sharing a weight scale.
        guard let sums else { return }
        let (codes, groups) = (self.codes, self.groups)
        Parallel.forRanges(rows, threads: threads, minimumChunk: 16) { range in
            for i in range {
                for g in 0..<groups {
                    var total: Int32 = 0
                    for j in (g * groupSize)..<min(columns, (g + 1) * groupSize) { total += Int32(codes[i * columns + j]) }
                    sums[i * groups + g] = total
                }
            }
        }
    }

    deinit {
        codes.deallocate(); scales.deallocate(); sums?.deallocate()
    }
}
