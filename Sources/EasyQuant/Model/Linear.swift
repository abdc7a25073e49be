import CKernels
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

    /// Bytes of weight one row's product reads in `mode`: the streaming layout when the
    /// weight has one (int8 mode reads its code sums too; counted in either mode), else the codes with their scales (and zero points), or the
    /// floats; outlier rows included.
    public func bytesReadPerToken(mode: ComputeMode) -> Int {
        let main: Int
        switch weight {
        case .dense(let d): main = 4 * d.rows * d.columns
        case .quantized(let q):
            main = q.streaming(outputIsRows: outputIsRows)?.memoryBytes ?? q.memoryBytes
        }
        return main + 4 * (outliers?.count ?? 0) * outFeatures
    }

    /// Output channels per parallel tile when weights must be expanded or rescaled.
    static let tileWidth = 256
    /// Rows per parallel piece of the int8 product (with 256 channels, 256 KiB of int32).
    static let rowBlock = 256

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
            let streaming = streamingForm(w, rows: m)
            let xq = QuantizedActivations(x, rows: m, columns: inFeatures, groupSize: kBlock(w),
                                          withSums: needsSums(w, streaming), threads: context.threads)
            forwardInt8(w, xq, y, context, streaming: streaming)
        }
    }

    /// Computes the rows of `input`, an input several linears read: in int8 mode the
    /// quantized activations `input` holds for this layer's block size are reused (q, k
    /// and v, or gate and up, quantize the same rows once). The result is that of
    /// `forward(input.x, …)`.
    public func forward(_ input: SharedInput, into y: UnsafeMutablePointer<Float>, context: ComputeContext) {
        precondition(input.columns == inFeatures, "input of \(input.columns) columns for a layer of \(inFeatures) inputs")
        guard case .quantized(let w) = weight, context.mode == .int8, outliers == nil || outliers!.count == 0 else {
            return forward(input.x, rows: input.rows, into: y, context: context)
        }
        let streaming = streamingForm(w, rows: input.rows)
        forwardInt8(w, input.quantized(groupSize: kBlock(w), withSums: needsSums(w, streaming), threads: context.threads), y, context,
                    streaming: streaming)
    }

    /// The batch-1 layout the int8 product of `rows` rows reads: for one row the weight's
    /// (made on first use), for more only when the codes live there alone; nil for the batch product.
    func streamingForm(_ w: QuantizedWeight, rows: Int) -> StreamingQuantizedWeight? {
        rows == 1 ? w.streaming(outputIsRows: outputIsRows) : w.streamedForm(outputIsRows: outputIsRows)
    }

    /// Whether the int8 product needs the activations' code sums per group: for zero points,
    /// and for the batch-1 kernel over packed nibbles (code = nibble − offset).
    func needsSums(_ w: QuantizedWeight, _ streaming: StreamingQuantizedWeight?) -> Bool {
        w.zeroPoints != nil || streaming?.packedNibbles == true
    }

    /// Makes every quantized layer's batch-1 layout the only copy of its weight
    /// (`QuantizedWeight.keepOnlyStreamingForm`), as decoding wants them: held once, in the
    /// layout it reads.
    ///
    /// The layouts share one `PageArena` (2 MiB pages where the system grants them), since
    /// decoding reads all of them for every token. Its capacity is twice the codes and scales
    /// as loaded plus 64 KiB a weight, above what the layouts (codes, padding, per-group arrays)
    /// take; it is address space only, and a layout that does not fit takes ordinary memory.
    /// The heap memory of each weight's freed codes goes back to the system at once, so the
    /// peak holds about one copy of the weights.
    public static func keepOnlyStreamingForms(_ layers: [Linear], threads: Int) {
        let bound = layers.reduce(0) { total, layer in
            guard case .quantized(let w) = layer.weight else { return total }
            return total + 2 * w.memoryBytes + 65_536
        }
        let arena = bound > 0 ? PageArena(capacity: bound) : nil
        Parallel.forEach(layers.count, threads: threads) { i in
            if case .quantized(let w) = layers[i].weight {
                w.keepOnlyStreamingForm(outputIsRows: layers[i].outputIsRows, arena: arena)
                SystemMemory.returnFreedMemory()
            }
        }
    }

    /// Layers that read one input (q, k and v; gate and up), each into its own output. At one
    /// row in int8 mode, with every weight in a batch-1 layout, one parallel step computes
    /// them all; otherwise they run one after another. Either way each output equals that of
    /// `forward(input, into:, context:)` for its layer, bit for bit.
    public static func forward(_ layers: [(layer: Linear, y: UnsafeMutablePointer<Float>)], sharing input: SharedInput,
                               context: ComputeContext) {
        var products: [(weight: StreamingQuantizedWeight, x: QuantizedActivations, y: UnsafeMutablePointer<Float>)] = []
        if input.rows == 1 && context.mode == .int8 {
            for (layer, y) in layers {
                guard case .quantized(let w) = layer.weight, layer.outliers == nil || layer.outliers!.count == 0,
                      layer.inFeatures == input.columns, let streaming = w.streaming(outputIsRows: layer.outputIsRows) else { break }
                products.append((streaming, input.quantized(groupSize: layer.kBlock(w), withSums: layer.needsSums(w, streaming),
                                                            threads: context.threads), y))
            }
        }
        guard !layers.isEmpty, products.count == layers.count else {
            for (layer, y) in layers { layer.forward(input, into: y, context: context) }
            return
        }
        StreamingQuantizedWeight.multiply(products, threads: context.threads)
        // The kernel adds a bias as this does (one float addition per output).
        for (layer, y) in layers {
            layer.bias?.withUnsafeBufferPointer { eqk_add_bias(y, 1, layer.outFeatures, layer.outFeatures, $0.baseAddress!) }
        }
    }

    /// Output channels [n0, n1) of every parallel piece: at most `width` wide (rounded up
    /// to 16), as many pieces as fit a whole number of rounds on `threads` threads, and of
    /// equal width so no thread waits for a lone narrow piece (576 channels on 2 threads:
    /// 4 × 144, not 256 + 256 + 64).
    func tiles(width: Int, threads: Int) -> [Range<Int>] {
        let n = outFeatures
        if n == 0 { return [] }
        let threads = max(1, threads)
        let width = max(1, width)
        let needed = n / width + (n % width == 0 ? 0 : 1)
        let pieces = (max(needed, threads) + threads - 1) / threads * threads
        let w = min(n, ((n + pieces - 1) / pieces + 15) / 16 * 16)
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
        if let streaming = streamingForm(w, rows: m) {
            // One token (or the codes live only in the streaming layout): read there, nothing expanded.
            if let bias {
                bias.withUnsafeBufferPointer { streaming.multiply(floats: x, rows: m, bias: $0.baseAddress!, into: y, threads: context.threads) }
            } else {
                streaming.multiply(floats: x, rows: m, bias: nil, into: y, threads: context.threads)
            }
            return
        }
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
    /// scale, an exact int8 product, then y += sx·sw·(C − z·Σxq) (+ bias). Rows go in
    /// blocks of `rowBlock` so that a piece's int32 products stay in the core's cache
    /// between the product and the rescale.
    func forwardInt8(_ w: QuantizedWeight, _ xq: QuantizedActivations, _ y: UnsafeMutablePointer<Float>, _ context: ComputeContext,
                     streaming: StreamingQuantizedWeight?) {
        let n = outFeatures, k = inFeatures, m = xq.rows
        precondition(xq.columns == k, "activations of \(xq.columns) columns for a layer of \(k) inputs")
        let kb = kBlock(w)
        let kBlocks = (k + kb - 1) / kb
        precondition(w.zeroPoints == nil || (xq.sums != nil && xq.groups == kBlocks), "activation code sums do not fit the weight's blocks")
        if let streaming {
            // One token, or the codes live only in the streaming layout: the matrix × vector
            // kernel over it, row by row (the same result).
            if let bias {
                bias.withUnsafeBufferPointer { streaming.multiply(xq, bias: $0.baseAddress!, into: y, threads: context.threads) }
            } else {
                streaming.multiply(xq, bias: nil, into: y, threads: context.threads)
            }
            return
        }
        let pieces = tiles(width: Self.tileWidth, threads: context.threads)
        let rowBlocks = (m + Self.rowBlock - 1) / Self.rowBlock
        let yAddress = UnsafeMutableRawPointer(y)
        Parallel.forEach(pieces.count * rowBlocks, threads: context.threads) { item in
            let piece = pieces[item % pieces.count]
            let n0 = piece.lowerBound, nb = piece.count
            let m0 = (item / pieces.count) * Self.rowBlock, mb = min(m, m0 + Self.rowBlock) - m0
            let scale = UnsafeMutablePointer<Float>.allocate(capacity: nb)
            let zero = UnsafeMutablePointer<Float>.allocate(capacity: nb)
            defer { scale.deallocate(); zero.deallocate() }
            let out = yAddress.assumingMemoryBound(to: Float.self) + m0 * n
            ScratchBuffers.shared.withBuffer(of: Int32.self, count: mb * nb) { acc in
            w.withCodes(outputs: piece, outputIsRows: outputIsRows) { codes, ld in
                for g in 0..<kBlocks {
                    let k0 = g * kb, kLen = min(k, k0 + kb) - k0
                    let b = outputIsRows ? codes + k0 : codes + k0 * ld
                    context.backend.gemmS8S8S32(transA: false, transB: outputIsRows, m: mb, n: nb, k: kLen,
                                                a: xq.codes + m0 * k + k0, lda: k, b: b, ldb: ld,
                                                c: acc, ldc: nb)
                    for j in 0..<nb {
                        let s = blockIndex(w, output: n0 + j, input: k0)
                        scale[j] = w.scales[s]
                        zero[j] = w.zeroPoints?[s] ?? 0
                    }
                    let sums = w.zeroPoints == nil ? nil : UnsafePointer(xq.sums! + m0 * xq.groups + g)
                    eqk_rescale_int32(out + n0, n, acc, nb, mb, nb, xq.scales + m0, scale, sums == nil ? nil : UnsafePointer(zero),
                                      sums, xq.groups, g == 0 ? 0 : 1)
                }
            }
            }
            if let bias {
                bias.withUnsafeBufferPointer { b in eqk_add_bias(out + n0, mb, nb, n, b.baseAddress! + n0) }
            }
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
public final class QuantizedActivations: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    public let codes: UnsafeMutablePointer<Int8>
    public let scales: UnsafeMutablePointer<Float>
    /// Inputs per block the sums are taken over, and blocks per row.
    public let groupSize: Int
    public let groups: Int
    public let sums: UnsafeMutablePointer<Int32>?
    /// One allocation holds the scales, the sums and the codes (decoding makes one of these
    /// for every product: one allocation, not three).
    private let memory: UnsafeMutableRawPointer

    public init(_ x: UnsafePointer<Float>, rows: Int, columns: Int, groupSize: Int, withSums: Bool, threads: Int) {
        self.rows = rows; self.columns = columns
        self.groupSize = max(1, groupSize)
        groups = (columns + self.groupSize - 1) / self.groupSize
        let scaleBytes = max(1, rows) * 4, sumBytes = withSums ? max(1, rows * groups) * 4 : 0
        memory = .allocate(byteCount: scaleBytes + sumBytes + max(1, rows * columns), alignment: 64)
        scales = memory.bindMemory(to: Float.self, capacity: max(1, rows))
        sums = withSums ? (memory + scaleBytes).bindMemory(to: Int32.self, capacity: max(1, rows * groups)) : nil
        codes = (memory + scaleBytes + sumBytes).bindMemory(to: Int8.self, capacity: max(1, rows * columns))
        VectorOps.quantizeRowsInt8(x, rows: rows, cols: columns, out: codes, scales: scales, groupSums: sums,
                                   groupSize: self.groupSize, threads: threads)
    }

    deinit { memory.deallocate() }
}

/// An input that several linears read (q, k and v read one normalised row; gate and up
/// another). In int8 mode the first layer to read it quantizes it, and layers with the same
/// block size and zero-point needs reuse that.
public final class SharedInput {
    public let x: UnsafePointer<Float>
    public let rows: Int
    public let columns: Int
    /// By group size: decoding's inputs are read with one group size, rarely two, so two
    /// slots (an array or dictionary cost an allocation per decode step); a third size takes
    /// the second slot.
    private var first: QuantizedActivations?
    private var second: QuantizedActivations?

    /// `rows` × `columns` floats at `x`, which must stay valid and unchanged while this is used.
    public init(_ x: UnsafePointer<Float>, rows: Int, columns: Int) {
        precondition(rows >= 0 && columns >= 0, "SharedInput: bad shape")
        self.x = x; self.rows = rows; self.columns = columns
    }

    /// The activations quantized for blocks of `groupSize` inputs (code sums included when
    /// asked for, or when an earlier caller asked for them), made on first use.
    func quantized(groupSize: Int, withSums: Bool, threads: Int) -> QuantizedActivations {
        let size = max(1, groupSize)
        func fits(_ q: QuantizedActivations?) -> Bool { q != nil && q!.groupSize == size && (q!.sums != nil || !withSums) }
        if fits(first) { return first! }
        if fits(second) { return second! }
        // Made anew (with sums when asked for), in place of one of this group size without them.
        let q = QuantizedActivations(x, rows: rows, columns: columns, groupSize: size, withSums: withSums, threads: threads)
        if first == nil || first!.groupSize == size { first = q } else { second = q }
        return q
    }
}
