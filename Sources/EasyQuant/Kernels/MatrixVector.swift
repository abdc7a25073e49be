import CKernels

/// A quantized weight rearranged once for batch-1 products (one token at a time, as
/// decoding runs): tiles of 16 output channels, each a run of 64-byte blocks that the
/// product reads front to back, with the scales (and zero points) of every input group
/// gathered per group and channel.
///
/// 8-bit codes: a block holds 16 channels × 4 inputs, one byte each, and the code sums per
/// group and channel that the VNNI kernel needs are kept (eqk_gemv_s8_pack, eqk_gemv_s8).
/// Codes of 4 bits or fewer stay packed, two per byte: a block holds 16 channels × 8 inputs
/// (eqk_gemv_u4_pack, eqk_gemv_u4), and the product unpacks them in registers.
///
/// The product is the same number, bit for bit, as `Linear`'s batch int8 product of one
/// row: the same int32 sums per group, rescaled by the same float steps.
public final class StreamingQuantizedWeight: @unchecked Sendable {
    /// Output channels (n) and inputs (k).
    public let outputs: Int
    public let inputs: Int
    /// Blocks of 4 inputs (k rounded up), blocks per scale group, and scale groups.
    let quads: Int
    let groupQuads: Int
    let groups: Int
    /// Tiles of 16 channels, and the size of each per-group array (16 · tiles · groups),
    /// laid out tile by tile (value of group g, channel o at `groupIndex(g, o)`).
    let tiles: Int
    let perGroupCount: Int
    /// Whether codes are held two per byte, and what was added to make them 0...15.
    public let packedNibbles: Bool
    let codeOffset: Int32
    /// Bytes of one tile.
    let tileBytes: Int
    private let blocks: UnsafeMutableRawPointer
    private let weightSums: UnsafeMutablePointer<Int32>?
    private let scales: UnsafeMutablePointer<Float>
    private let zeros: UnsafeMutablePointer<Float>?
    /// One allocation holds the blocks and the per-group arrays: from `arena` when one was
    /// given and had room (kept alive by this reference), else owned here.
    private let memory: UnsafeMutableRawPointer
    private let arena: PageArena?

    /// Rearranges `w` (stored [out, in] when `outputIsRows`, else [in, out]); nil when its
    /// scale groups along the input cannot be cut into blocks of 4 inputs (a group size
    /// that is not a multiple of 4 and smaller than the whole input). Codes of 4 bits or
    /// fewer are kept packed when `packNibbles` and their groups hold whole blocks of 8
    /// inputs (or there is one group); otherwise they take a byte each. The memory comes from
    /// `arena` when it has room.
    public init?(_ w: QuantizedWeight, outputIsRows: Bool, packNibbles: Bool = true, arena: PageArena? = nil) {
        let n = outputIsRows ? w.rows : w.columns, k = outputIsRows ? w.columns : w.rows
        guard n > 0, k > 0 else { return nil }
        let kb = min(k, outputIsRows ? w.blockColumns : w.blockRows)
        guard kb == k || kb % 4 == 0 else { return nil }
        outputs = n; inputs = k
        quads = (k + 3) / 4
        groupQuads = kb == k ? quads : kb / 4
        groups = (quads + groupQuads - 1) / groupQuads
        precondition(groups == (k + kb - 1) / kb)
        tiles = (n + 15) / 16
        perGroupCount = tiles * 16 * groups
        packedNibbles = packNibbles && w.bits <= 4 && (groups == 1 || groupQuads % 2 == 0)
        codeOffset = packedNibbles && w.isSigned ? 8 : 0
        tileBytes = packedNibbles ? (quads + 1) / 2 * 64 : quads * 64
        // The blocks, then the sums (8-bit), scales and zero points (when any), each on a
        // 64-byte boundary.
        func whole64(_ bytes: Int) -> Int { (bytes + 63) / 64 * 64 }
        let blockBytes = whole64(tiles * tileBytes), arrayBytes = whole64(perGroupCount * 4)
        let arrays = 1 + (packedNibbles ? 0 : 1) + (w.zeroPoints == nil ? 0 : 1)
        let total = blockBytes + arrays * arrayBytes
        let taken = arena?.allocate(byteCount: total)
        let chunk = taken ?? .allocate(byteCount: total, alignment: 64)
        memory = chunk; self.arena = taken == nil ? nil : arena
        blocks = chunk
        var next = blockBytes
        let count = perGroupCount
        func array<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
            defer { next += arrayBytes }
            return (chunk + next).bindMemory(to: type, capacity: count)
        }
        weightSums = packedNibbles ? nil : array(Int32.self)
        scales = array(Float.self)
        scales.initialize(repeating: 0, count: perGroupCount)
        zeros = w.zeroPoints == nil ? nil : array(Float.self)
        zeros?.initialize(repeating: 0, count: perGroupCount)
        w.withWidenedCodes { codes in
            if let weightSums {
                eqk_gemv_s8_pack(codes, outputIsRows ? k : 1, outputIsRows ? 1 : n, n, k, groupQuads,
                                 blocks.assumingMemoryBound(to: Int8.self), weightSums)
            } else {
                eqk_gemv_u4_pack(codes, outputIsRows ? k : 1, outputIsRows ? 1 : n, n, k, codeOffset,
                                 blocks.assumingMemoryBound(to: UInt8.self))
            }
        }
        // The scale of (channel o, group g) is the one the batch product uses for the
        // group's first input.
        for g in 0..<groups {
            let k0 = g * kb
            for o in 0..<n {
                let s = outputIsRows ? (o / w.blockRows) * w.scaleColumns + k0 / w.blockColumns
                                     : (k0 / w.blockRows) * w.scaleColumns + o / w.blockColumns
                scales[groupIndex(g, o)] = w.scales[s]
                zeros?[groupIndex(g, o)] = w.zeroPoints![s]
            }
        }
    }

    /// Where the per-group arrays hold group g of channel o: a tile's groups side by side,
    /// read front to back with its blocks (CKernels.h).
    @inline(__always) func groupIndex(_ g: Int, _ o: Int) -> Int { ((o / 16) * groups + g) * 16 + o % 16 }

    deinit {
        if arena == nil { memory.deallocate() }
    }

    /// Bytes held: the blocks, and the per-group sums (8-bit), scales and zero points.
    public var memoryBytes: Int {
        tiles * tileBytes + perGroupCount * (4 + (weightSums == nil ? 0 : 4) + (zeros == nil ? 0 : 4))
    }

    /// The instruction set the product runs with ("avx512-vnni", "avx2" or "baseline").
    public static var instructionSet: String { String(cString: eqk_gemv_isa()) }

    /// Runs `body` over runs of whole tiles in parallel (`runs`).
    private func forTileRanges(threads: Int, _ body: (Range<Int>) -> Void) {
        let runs = Self.runs(tiles: [tiles], threads: threads)
        Parallel.forEach(runs.count, threads: threads) { body(runs[$0].tile0..<runs[$0].tile1) }
    }

    /// Fewest tiles in a run: taking a run is a compare-and-swap on a cache line both threads
    /// write, so a run reads at least two tiles (32 channels) to stay well above that cost.
    public static let minimumTilesPerRun = 2

    /// The runs of whole tiles one parallel step hands out over products of `tiles[i]` tiles
    /// each (one product, or q, k and v; gate and up), largest first: each run takes
    /// 1 / threads of what is left (OpenMP's "guided" schedule), down to `minimumTilesPerRun`,
    /// and no run spans two products. The threads take runs in this order as they come free,
    /// so one that starts late or is slowed leaves the small last runs to the others and both
    /// end within about one small run of each other (with equal runs, one could wait for the
    /// other's whole last run). Why not smaller runs: each run is a new stream of reads from
    /// memory, which the core's prefetchers pick up only after its first misses; runs of a
    /// quarter of what is left (1 / (2·threads)) made about twice as many of them, and decoding
    /// the SmolLM2 4-bit file was slower in all 10 alternating runs (docs/BENCHMARKS.md).
    public static func runs(tiles: [Int], threads: Int) -> [eqk_gemv_run] {
        var runs: [eqk_gemv_run] = []
        appendRuns(tiles: tiles.count, { tiles[$0] }, threads: threads) { runs.append($0) }
        return runs
    }

    /// `runs(tiles:threads:)` for products whose tile counts `tiles(i)` gives, each passed to `emit` in order.
    @inline(__always)
    static func appendRuns(tiles products: Int, _ tiles: (Int) -> Int, threads: Int, _ emit: (eqk_gemv_run) -> Void) {
        var left = 0
        for i in 0..<products { left += tiles(i) }
        var product = 0, start = 0
        while left > 0 {
            while start == tiles(product) { product += 1; start = 0 }
            let size = threads <= 1 ? tiles(product)
                : min(max(minimumTilesPerRun, (left + threads - 1) / threads), tiles(product) - start)
            emit(eqk_gemv_run(product: product, tile0: start, tile1: start + size))
            start += size; left -= size
        }
    }

    /// The rows of quantized activations as this weight's kernels read them: codes padded
    /// with zeros to whole blocks, the per-group code sums the kernels need, and the row scales.
    struct PreparedRows {
        let rows: Int
        let width: Int
        let codes: UnsafePointer<Int8>
        /// The padded copy of the codes, when the rows needed padding (else `codes` are x's own).
        let ownCodes: UnsafeMutablePointer<Int8>?
        let ownSums: UnsafeMutablePointer<Int32>?
        let sums: UnsafePointer<Int32>?
        let sumStride: Int
        /// The activations' row scales: valid while the activations they came from live.
        let scales: UnsafePointer<Float>
        func deallocate() { ownCodes?.deallocate(); ownSums?.deallocate() }
    }

    /// `x`'s rows as whole blocks (8 inputs for packed nibbles, else 4): read in place when
    /// they fill them, else copied with zeros after; and the code sums. Deallocate the result
    /// when done.
    func prepare(_ x: QuantizedActivations) -> PreparedRows {
        let m = x.rows
        precondition(m >= 1 && x.columns == inputs, "a batch-1 product takes rows of \(inputs) inputs")
        precondition(zeros == nil || (x.sums != nil && x.groups == groups), "activation code sums do not fit the weight's groups")
        let width = packedNibbles ? (quads + 1) / 2 * 8 : quads * 4
        // Rows that fill whole blocks are read in place; others are copied with zeros after.
        var ownCodes: UnsafeMutablePointer<Int8>? = nil
        if width != inputs {
            let copy = UnsafeMutablePointer<Int8>.allocate(capacity: m * width)
            for r in 0..<m {
                (copy + r * width).update(from: x.codes + r * inputs, count: inputs)
                (copy + r * width + inputs).initialize(repeating: 0, count: width - inputs)
            }
            ownCodes = copy
        }
        let padded = UnsafePointer(ownCodes ?? x.codes)
        // Packed nibbles need Σ of x's codes per group (code = nibble − offset); these are the
        // integers x.sums holds when it has them for this weight's groups (the padding adds
        // zeros), else they are summed here.
        let sumsFit = x.sums != nil && x.groups == groups && (groups == 1 || x.groupSize == groupQuads * 4)
        let ownSums: UnsafeMutablePointer<Int32>? = packedNibbles && !sumsFit ? .allocate(capacity: m * groups) : nil
        if let ownSums { eqk_sum_groups_s8(padded, m, width, inputs, groupQuads * 4, ownSums) }
        let (sums, sumStride) = ownSums.map { (UnsafePointer($0), groups) }
            ?? (zeros == nil && !packedNibbles ? (nil, 0) : (UnsafePointer(x.sums!), x.groups))
        return PreparedRows(rows: m, width: width, codes: padded, ownCodes: ownCodes, ownSums: ownSums, sums: sums, sumStride: sumStride,
                            scales: UnsafePointer(x.scales))
    }

    /// What the kernels need to compute `x`'s rows against this weight into y.
    func product(_ x: PreparedRows, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) -> eqk_gemv_product {
        eqk_gemv_product(w: UnsafeRawPointer(blocks), quads: quads, groupQuads: groupQuads, codeOffset: codeOffset,
                         wsum: weightSums.map { UnsafePointer($0) }, scale: UnsafePointer(scales), zero: zeros.map { UnsafePointer($0) },
                         x: x.codes, xStride: x.width, xscales: x.scales, xsums: x.sums, sumStride: x.sumStride, rows: x.rows,
                         bias: bias, y: y, n: outputs)
    }

    /// Whether `prepare` lays out a row for this weight as it does for `other` (same padding
    /// and groups), so that weights reading one input can share its prepared rows.
    func preparesRowsLike(_ other: StreamingQuantizedWeight) -> Bool {
        inputs == other.inputs && packedNibbles == other.packedNibbles && quads == other.quads && groupQuads == other.groupQuads
            && (zeros == nil) == (other.zeros == nil)
    }

    /// y = x·Wᵀ (+ bias) for the rows of `x` (quantized with groups of this weight's group
    /// size, with code sums when the weight has zero points), the output channels split over
    /// `threads` threads in runs of whole tiles. y holds x.rows × `outputs` floats. Decoding
    /// passes one row; several rows (a prompt, once the codes live only here) are taken one
    /// after another within each run of tiles, which stays in the core's cache meanwhile.
    public func multiply(_ x: QuantizedActivations, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, threads: Int) {
        Self.multiply([(self, x, y)], biases: [bias], threads: threads)
    }

    /// Several products in one parallel step (q, k and v; gate and up): the same numbers as
    /// one `multiply` per weight, with one hand-out of work instead of several. Weights that
    /// read the same activations in the same layout share one preparation of them. The runs
    /// go to the threads through C (`eqk_gemv_step_run`), with no Swift between the worker
    /// pool and the kernels.
    static func multiply(_ products: [(weight: StreamingQuantizedWeight, x: QuantizedActivations, y: UnsafeMutablePointer<Float>)],
                         biases: [UnsafePointer<Float>?]? = nil, threads: Int) {
        // Plain values only from here on (pointers and sizes; `products` keeps the weights
        // and activations alive), in memory borrowed for the call, so that a step costs no
        // reference counting and no allocation.
        let count = products.count
        // Guided runs are at least minimumTilesPerRun tiles, but for one cut short at each end of a product.
        var runCapacity = 0
        for product in products { runCapacity += product.weight.tiles / minimumTilesPerRun + 2 }
        withUnsafeTemporaryAllocation(of: eqk_gemv_product.self, capacity: count) { descriptors in
            withUnsafeTemporaryAllocation(of: PreparedRows.self, capacity: count) { prepared in
                withUnsafeTemporaryAllocation(of: eqk_gemv_run.self, capacity: runCapacity) { runs in
                    // prepared[0 ..< made] are this call's own preparations, freed at the end.
                    var made = 0
                    defer { for i in 0..<made { prepared[i].deallocate() } }
                    for i in 0..<count {
                        let (weight, x, y) = products[i]
                        if made == 0 || products[i - 1].x !== x || !weight.preparesRowsLike(products[i - 1].weight) {
                            prepared.initializeElement(at: made, to: weight.prepare(x))
                            made += 1
                        }
                        descriptors.initializeElement(at: i, to: weight.product(prepared[made - 1], bias: biases?[i] ?? nil, into: y))
                    }
                    var runCount = 0
                    appendRuns(tiles: count, { products[$0].weight.tiles }, threads: threads) { run in
                        precondition(runCount < runCapacity, "more runs than a step has room for")
                        runs.initializeElement(at: runCount, to: run)
                        runCount += 1
                    }
                    withExtendedLifetime(products) {
                        var step = eqk_gemv_step(products: descriptors.baseAddress, runs: runs.baseAddress)
                        withUnsafeMutablePointer(to: &step) {
                            Parallel.forEach(runCount, threads: threads, body: eqk_gemv_step_run, context: $0)
                        }
                    }
                }
            }
        }
    }

    /// y = x·Wᵀ (+ bias) for `rows` rows of floats (`inputs` each, leading dimension
    /// `inputs`) in f32: per group and channel Σ (code − zero)·x in float, times the group's
    /// scale. Within float rounding of the product with the dequantized weight (the order of
    /// the sums differs). y holds rows × `outputs` floats.
    public func multiply(floats x: UnsafePointer<Float>, rows m: Int = 1, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>,
                         threads: Int) {
        precondition(m >= 1, "a batch-1 product takes at least one row")
        let width = (quads + 1) / 2 * 8
        let padded = UnsafeMutablePointer<Float>.allocate(capacity: m * width)
        defer { padded.deallocate() }
        for r in 0..<m {
            (padded + r * width).update(from: x + r * inputs, count: inputs)
            (padded + r * width + inputs).initialize(repeating: 0, count: width - inputs)
        }
        let (blocks, scales, zeros) = (UnsafeRawPointer(self.blocks), UnsafePointer(self.scales), self.zeros.map { UnsafePointer($0) })
        let (quads, groupQuads, outputs, offset, nibbles) = (self.quads, self.groupQuads, self.outputs, codeOffset,
                                                             Int32(packedNibbles ? 1 : 0))
        let yAddress = UnsafeMutableRawPointer(y)
        forTileRanges(threads: threads) { t in
            for r in 0..<m {
                eqk_gemv_f32(blocks, nibbles, quads, groupQuads, offset, scales, zeros, padded + r * width, bias,
                             t.lowerBound, t.upperBound, yAddress.assumingMemoryBound(to: Float.self) + r * outputs, outputs)
            }
        }
    }

    /// The code of output channel `o` and input `i`, as the weight held it (signed byte).
    public func code(output o: Int, input i: Int) -> Int8 {
        precondition(o >= 0 && o < outputs && i >= 0 && i < inputs, "code (\(o), \(i)) of \(outputs) × \(inputs)")
        let tile = blocks + (o / 16) * tileBytes, lane = o % 16
        if packedNibbles {
            let byte = tile.load(fromByteOffset: 64 * (i / 8) + 4 * lane + (i % 8) % 4, as: UInt8.self)
            let nibble = i % 8 < 4 ? byte & 0x0F : byte >> 4
            return Int8(truncatingIfNeeded: Int32(nibble) - codeOffset)
        }
        return tile.load(fromByteOffset: 64 * (i / 4) + 4 * lane + i % 4, as: Int8.self)
    }
}
