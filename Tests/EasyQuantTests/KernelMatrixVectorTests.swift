import EasyQuant
import XCTest

/// The batch-1 int8 product (`StreamingQuantizedWeight`, eqk_gemv_s8) against the batch int8
/// product of the same row bit for bit, and against the dequantized product computed here
/// in double, on every instruction set this CPU has, odd shapes, both weight orientations,
/// symmetric and zero-point codes, per-channel and grouped scales, and 1 to 3 threads.
final class KernelMatrixVectorTests: XCTestCase {
    override func tearDown() {
        VectorOps.useInstructionSet("auto")
        super.tearDown()
    }

    /// (inputs k, outputs n): neither a multiple of 4 nor of 16 in most, and wider than one
    /// tile and one group in several.
    static let shapes = [(1, 1), (3, 5), (37, 29), (67, 33), (130, 17), (96, 48), (257, 70)]

    struct Case {
        var name: String
        var method: any QuantizationMethod
        var granularity: Granularity
    }

    static let cases = [
        Case(name: "absmax channel", method: AbsMax(), granularity: .channel),
        Case(name: "absmax group:32", method: AbsMax(), granularity: .group(32)),
        Case(name: "simquant 8 channel", method: SimQuant(bits: 8), granularity: .channel),
        Case(name: "simquant 4 group:8", method: SimQuant(bits: 4), granularity: .group(8)),
        Case(name: "symquant 4 group:32", method: SymQuant(bits: 4), granularity: .group(32)),
        Case(name: "absmax 4 channel", method: AbsMax(bits: 4), granularity: .channel),
        Case(name: "simquant 3 group:12 (4-bit blocks, codes a byte each)", method: SimQuant(bits: 3), granularity: .group(12)),
        Case(name: "zeropoint 8 tensor", method: ZeroPoint(bits: 8), granularity: .tensor),
        Case(name: "absmax group:6 (no streaming layout)", method: AbsMax(), granularity: .group(6)),
    ]

    func linear(_ c: Case, k: Int, n: Int, outputIsRows: Bool, seed: UInt64) throws -> (Linear, QuantizedTensor) {
        var rng = SeededFloats(seed: seed)
        var w = rng.normal(k * n, std: 0.3)
        // An all-negative channel gives zero points outside the code range.
        for i in 0..<k { w[outputIsRows ? i : i * n] = -abs(w[outputIsRows ? i : i * n]) - 0.1 }
        let layout = BlockLayout(shape: outputIsRows ? [n, k] : [k, n], axis: outputIsRows ? 0 : 1, granularity: c.granularity)
        let q = try w.withUnsafeBufferPointer { try c.method.quantize($0, layout: layout) }
        let bias = seed % 2 == 0 ? rng.normal(n) : nil
        return (Linear(weight: .quantized(QuantizedWeight(q)), outputIsRows: outputIsRows, bias: bias), q)
    }

    func testBatchOneEqualsTheBatchProductExactly() throws {
        var checked = 0, streamed = 0
        for set in ["baseline", "avx2", "avx512"] where VectorOps.useInstructionSet(set) {
            try forEachLayer(firstSeed: 1) { c, k, n, outputIsRows, layer, w, q, seed in
                if w.streaming(outputIsRows: outputIsRows) != nil { streamed += 1 }
                var rng = SeededFloats(seed: seed &* 7)
                let x = rng.normal(2 * k)
                for threads in [1, 2, 3] {
                    let context = ComputeContext(mode: .int8, threads: threads)
                    let batch = run(layer, x, rows: 2, context)
                    let single = run(layer, Array(x[0..<k]), rows: 1, context)
                    let label = "\(set) \(c.name) k=\(k) n=\(n) rows=\(outputIsRows) threads=\(threads)"
                    XCTAssertEqual(single.map(\.bitPattern), batch[0..<n].map(\.bitPattern), label)
                    // Against the definition: Σ_i x̂_i·ŵ_i in double from the dequantized codes.
                    let xq = x.withUnsafeBufferPointer {
                        QuantizedActivations($0.baseAddress!, rows: 1, columns: k, groupSize: k, withSums: false, threads: 1)
                    }
                    let wd = q.dequantized()
                    var scaleOfY = 1e-30
                    var expected = [Double](repeating: 0, count: n)
                    for o in 0..<n {
                        var s = Double(layer.bias?[o] ?? 0)
                        for i in 0..<k {
                            s += Double(xq.codes[i]) * Double(xq.scales[0]) * Double(wd[outputIsRows ? o * k + i : i * n + o])
                        }
                        expected[o] = s
                        scaleOfY = max(scaleOfY, abs(s))
                    }
                    let error = zip(single, expected).map { abs(Double($0) - $1) }.max()!
                    XCTAssertLessThan(error / scaleOfY, 1e-5, label)
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 0)
        XCTAssertGreaterThan(streamed, 0, "the streaming layout was never used")
    }

    /// A group size that is not a multiple of 4 (and smaller than the input) has no
    /// streaming layout; per-channel and group:32 weights have one.
    func testWhichWeightsStream() throws {
        let c = Self.cases
        let (a, _) = try linear(c[0], k: 37, n: 29, outputIsRows: true, seed: 1)
        let (g, _) = try linear(c.last!, k: 37, n: 29, outputIsRows: false, seed: 1)
        let (h, _) = try linear(c[1], k: 96, n: 29, outputIsRows: false, seed: 1)
        guard case .quantized(let aw) = a.weight, case .quantized(let gw) = g.weight, case .quantized(let hw) = h.weight else { return XCTFail() }
        XCTAssertNotNil(aw.streaming(outputIsRows: true))
        XCTAssertNil(gw.streaming(outputIsRows: false))
        let s = try XCTUnwrap(hw.streaming(outputIsRows: false))
        XCTAssertEqual(s.outputs, 29)
        XCTAssertEqual(s.inputs, 96)
        // 2 tiles × 24 blocks of 64 bytes, and per group (3) and padded channel (32): sums and scales.
        XCTAssertEqual(s.memoryBytes, 2 * 24 * 64 + 3 * 32 * 8)
    }

    /// f32 mode at one row (the codes read in the streaming layout, float sums) stays within
    /// 1e-5 of the largest output of the batch product through the dequantized weight.
    func testBatchOneFloatProductIsWithinRoundingOfTheBatchProduct() throws {
        var streamed = 0
        for set in ["baseline", "avx2", "avx512"] where VectorOps.useInstructionSet(set) {
            try forEachLayer(firstSeed: 900) { c, k, n, outputIsRows, layer, w, _, seed in
                if w.streaming(outputIsRows: outputIsRows) != nil { streamed += 1 }
                var rng = SeededFloats(seed: seed)
                let x = rng.normal(2 * k)
                for threads in [1, 2, 3] {
                    let context = ComputeContext(mode: .f32, threads: threads)
                    let batch = Array(run(layer, x, rows: 2, context)[0..<n])
                    let single = run(layer, Array(x[0..<k]), rows: 1, context)
                    let scale = max(1e-30, batch.map { abs(Double($0)) }.max()!)
                    let error = zip(single, batch).map { abs(Double($0) - Double($1)) }.max()!
                    XCTAssertLessThan(error / scale, 1e-5, "\(set) \(c.name) k=\(k) n=\(n) rows=\(outputIsRows) threads=\(threads)")
                }
            }
        }
        XCTAssertGreaterThan(streamed, 0, "the streaming layout was never used")
    }

    /// 4-bit codes kept two per byte give the same product, bit for bit, as the same codes
    /// widened to a byte each, on every set, and take half the bytes.
    func testPackedFourBitEqualsWidened() throws {
        var seed: UInt64 = 500
        for set in ["baseline", "avx2", "avx512"] where VectorOps.useInstructionSet(set) {
            for c in Self.cases where c.method.bits <= 4 {
                for (k, n) in Self.shapes {
                    for outputIsRows in [false, true] {
                        seed += 1
                        let (layer, _) = try linear(c, k: k, n: n, outputIsRows: outputIsRows, seed: seed)
                        guard case .quantized(let w) = layer.weight else { return XCTFail() }
                        let widened = try XCTUnwrap(StreamingQuantizedWeight(w, outputIsRows: outputIsRows, packNibbles: false))
                        let packed = try XCTUnwrap(StreamingQuantizedWeight(w, outputIsRows: outputIsRows))
                        XCTAssertFalse(widened.packedNibbles)
                        let label = "\(set) \(c.name) k=\(k) n=\(n) rows=\(outputIsRows)"
                        if c.name.contains("group:12") && k > 12 { XCTAssertFalse(packed.packedNibbles, label); continue }
                        XCTAssertTrue(packed.packedNibbles, label)
                        var rng = SeededFloats(seed: seed)
                        let x = rng.normal(k)
                        let xq = x.withUnsafeBufferPointer {
                            QuantizedActivations($0.baseAddress!, rows: 1, columns: k, groupSize: min(k, outputIsRows ? w.blockColumns : w.blockRows),
                                                 withSums: w.zeroPoints != nil, threads: 1)
                        }
                        // The same codes with their sums per group of the weight (which the packed
                        // product then reads instead of summing), and with sums per group of 8 more
                        // or of 5 inputs (which it cannot use, and sums itself: with k = 96 and
                        // groups of 32, groups of 40 are as many but cut elsewhere).
                        let group = min(k, outputIsRows ? w.blockColumns : w.blockRows)
                        let withSums = [group, group + 8, 5].map { size in
                            x.withUnsafeBufferPointer {
                                QuantizedActivations($0.baseAddress!, rows: 1, columns: k, groupSize: size, withSums: true, threads: 1)
                            }
                        }
                        for threads in [1, 2] {
                            var a = [Float](repeating: .nan, count: n), b = [Float](repeating: .nan, count: n)
                            a.withUnsafeMutableBufferPointer { widened.multiply(xq, bias: nil, into: $0.baseAddress!, threads: threads) }
                            b.withUnsafeMutableBufferPointer { packed.multiply(xq, bias: nil, into: $0.baseAddress!, threads: threads) }
                            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), label)
                            for xs in withSums where w.zeroPoints == nil || xs.groupSize == group {
                                var c = [Float](repeating: .nan, count: n)
                                c.withUnsafeMutableBufferPointer { packed.multiply(xs, bias: nil, into: $0.baseAddress!, threads: threads) }
                                XCTAssertEqual(a.map(\.bitPattern), c.map(\.bitPattern), "\(label), activation sums per \(xs.groupSize)")
                            }
                        }
                        if k >= 96 {
                            // Half the code bytes (blocks of 8 inputs instead of 4 padded); the per-group
                            // scales (and zero points) stay, the code sums go.
                            XCTAssertLessThanOrEqual(Double(packed.memoryBytes), 0.62 * Double(widened.memoryBytes), label)
                        }
                    }
                }
            }
        }
    }

    /// A 4-bit weight keeps its codes two per byte in memory, and widens them to what the
    /// file's codes are, element by element.
    func testFourBitWeightsStayPacked() throws {
        let (k, n) = (64, 10)
        var rng = SeededFloats(seed: 77)
        let w = rng.normal(k * n)
        for method in [SymQuant(bits: 4), SimQuant(bits: 4)] as [any QuantizationMethod] {
            let q = try w.withUnsafeBufferPointer { try method.quantize($0, layout: BlockLayout(shape: [n, k], axis: 0, granularity: .group(32))) }
            let weight = QuantizedWeight(q)
            XCTAssertTrue(weight.isPacked)
            XCTAssertEqual(weight.memoryBytes, k * n / 2 + 4 * q.scales.count + 4 * (weight.zeroPoints?.count ?? 0))
            XCTAssertEqual(weight.codes, (0..<(k * n)).map { Int8(q.code(at: $0)) })
        }
    }

    /// After `keepOnlyStreamingForm` (what decoding does) the weight holds its codes once,
    /// in the batch-1 layout: they read back as before, rows dequantize as before, and
    /// products of several rows (a prompt), now taken row by row there, equal the batch
    /// products before the switch: bit for bit in int8, within 1e-5 in f32.
    func testCodesKeptOnlyInTheStreamingLayout() throws {
        var switched = 0
        try forEachLayer(firstSeed: 1300) { c, k, n, outputIsRows, layer, w, q, seed in
            var rng = SeededFloats(seed: seed)
            let rows = 5
            let x = rng.normal(rows * k)
            let label = "\(c.name) k=\(k) n=\(n) rows=\(outputIsRows)"
            let int8Before = run(layer, x, rows: rows, ComputeContext(mode: .int8, threads: 2))
            let f32Before = run(layer, x, rows: rows, ComputeContext(mode: .f32, threads: 2))
            var firstRow = [Float](repeating: .nan, count: q.shape[1])
            w.dequantize(rows: 0..<1, columns: 0..<q.shape[1], into: &firstRow, ld: q.shape[1])
            let codes = w.codes
            // As decoding does, the layout takes its memory from an arena; one in three times
            // the arena is full and it takes ordinary memory, one in three there is none.
            let arena = seed % 3 == 0 ? nil : PageArena(capacity: 1)
            if seed % 3 == 1, let arena { XCTAssertNotNil(arena.allocate(byteCount: arena.capacity - 64)) }
            let usedBefore = arena?.bytesUsed ?? 0
            guard w.keepOnlyStreamingForm(outputIsRows: outputIsRows, arena: arena) else {
                XCTAssertNil(w.streaming(outputIsRows: outputIsRows), label)
                return
            }
            switched += 1
            if let arena {
                XCTAssertEqual(arena.bytesUsed - usedBefore >= w.memoryBytes, seed % 3 == 2, "\(label): taken from the arena")
            }
            let form = try XCTUnwrap(w.streamedForm(outputIsRows: outputIsRows))
            XCTAssertNil(w.streamedForm(outputIsRows: !outputIsRows), label)
            XCTAssertEqual(w.memoryBytes, form.memoryBytes, label)
            XCTAssertEqual(w.codes, codes, label)
            var again = [Float](repeating: .nan, count: q.shape[1])
            w.dequantize(rows: 0..<1, columns: 0..<q.shape[1], into: &again, ld: q.shape[1])
            XCTAssertEqual(again.map(\.bitPattern), firstRow.map(\.bitPattern), label)
            for threads in [1, 2] {
                let int8After = run(layer, x, rows: rows, ComputeContext(mode: .int8, threads: threads))
                XCTAssertEqual(int8After.map(\.bitPattern), int8Before.map(\.bitPattern), "\(label) threads=\(threads)")
                let f32After = run(layer, x, rows: rows, ComputeContext(mode: .f32, threads: threads))
                let scale = max(1e-30, f32Before.map { abs(Double($0)) }.max()!)
                let error = zip(f32After, f32Before).map { abs(Double($0) - Double($1)) }.max()!
                XCTAssertLessThan(error / scale, 1e-5, "\(label) threads=\(threads)")
            }
        }
        XCTAssertGreaterThan(switched, 0, "no weight switched to the streaming layout")
    }

    /// The arena hands out aligned, zero-filled, writable memory front to back, in 2 MiB
    /// pages' worth of capacity, and says nil, not less, when the room left is too small.
    func testPageArenaHandsOutAlignedMemoryUntilFull() throws {
        let arena = try XCTUnwrap(PageArena(capacity: 3 << 20))
        XCTAssertEqual(arena.capacity, 4 << 20)
        let a = try XCTUnwrap(arena.allocate(byteCount: 100))
        let b = try XCTUnwrap(arena.allocate(byteCount: 10, alignment: 4096))
        XCTAssertEqual(Int(bitPattern: b) % 4096, 0)
        XCTAssertEqual(Int(bitPattern: b) - Int(bitPattern: a), 4096)
        XCTAssertEqual(arena.bytesUsed, 4096 + 10)
        let bytes = UnsafeMutableRawBufferPointer(start: a, count: 100)
        XCTAssertTrue(bytes.allSatisfy { $0 == 0 })
        bytes.copyBytes(from: [UInt8](repeating: 7, count: 100))
        XCTAssertEqual(a.load(fromByteOffset: 99, as: UInt8.self), 7)
        XCTAssertNil(arena.allocate(byteCount: arena.capacity))
        let rest = arena.capacity - 4160
        XCTAssertNotNil(arena.allocate(byteCount: rest))
        XCTAssertEqual(arena.bytesUsed, arena.capacity)
        XCTAssertNil(arena.allocate(byteCount: 1))
        XCTAssertNotNil(arena.allocate(byteCount: 0))
        XCTAssertNil(PageArena(capacity: 0))
        XCTAssertNil(PageArena(capacity: .max))
    }

    /// Calls `body` with a fresh layer for every case, shape and orientation (seeds counting
    /// up from `firstSeed`): case, k, n, orientation, layer, its weight, its tensor, seed.
    func forEachLayer(firstSeed: UInt64,
                      _ body: (Case, Int, Int, Bool, Linear, QuantizedWeight, QuantizedTensor, UInt64) throws -> Void) throws {
        var seed = firstSeed
        for c in Self.cases {
            for (k, n) in Self.shapes {
                for outputIsRows in [false, true] {
                    seed += 1
                    let (layer, q) = try linear(c, k: k, n: n, outputIsRows: outputIsRows, seed: seed)
                    guard case .quantized(let w) = layer.weight else { return XCTFail("not quantized") }
                    try body(c, k, n, outputIsRows, layer, w, q, seed)
                }
            }
        }
    }

    /// Layers reading one input in one step (`Linear.forward(_:sharing:)`: q, k and v; gate
    /// and up) give each layer's own product bit for bit, one row or several, with and
    /// without biases, also when one weight has no batch-1 layout and when weights of one
    /// layout share the prepared rows.
    func testLayersSharingAnInputEqualTheirOwnProducts() throws {
        let k = 67
        // The last two sets share one preparation of the rows (same layout, as q, k and v).
        for (i, picks) in [[0, 2, 4], [1, 3], [0, 8, 2], [4, 4, 4], [0, 0]].enumerated() {
            let layers = try picks.enumerated().map { j, c in
                try linear(Self.cases[c], k: k, n: [29, 70, 16][j], outputIsRows: j % 2 == 0, seed: UInt64(40 + 10 * i + j)).0
            }
            for rows in [1, 3] {
                var rng = SeededFloats(seed: UInt64(7 + i))
                let x = rng.normal(rows * k)
                for threads in [1, 2] {
                    let context = ComputeContext(mode: .int8, threads: threads)
                    let alone = layers.map { run($0, x, rows: rows, context) }
                    let outputs = layers.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * $0.outFeatures) }
                    defer { outputs.forEach { $0.deallocate() } }
                    outputs.forEach { $0.initialize(repeating: .nan) }
                    x.withUnsafeBufferPointer { xb in
                        let input = SharedInput(xb.baseAddress!, rows: rows, columns: k)
                        Linear.forward(Array(zip(layers, outputs.map { $0.baseAddress! })), sharing: input, context: context)
                    }
                    for j in layers.indices {
                        XCTAssertEqual(outputs[j].map(\.bitPattern), alone[j].map(\.bitPattern), "set \(i) layer \(j) rows \(rows) threads \(threads)")
                    }
                }
            }
        }
    }

    /// The runs one parallel step hands out cover every tile of every product once, in order,
    /// never span two products, shrink from 1 / threads of the work down to the smallest run,
    /// and are one run per product on one thread.
    func testRunsOfTilesCoverEveryTileOnceLargestFirst() {
        let minimum = StreamingQuantizedWeight.minimumTilesPerRun
        for tiles in [[36, 12, 12], [96, 96], [1], [3, 0, 5], [3072], [1, 1, 1]] {
            for threads in [1, 2, 3, 8] {
                let runs = StreamingQuantizedWeight.runs(tiles: tiles, threads: threads)
                var next = Array(repeating: 0, count: tiles.count), lastProduct = 0
                for run in runs {
                    let product = run.product, range = run.tile0..<run.tile1
                    XCTAssertGreaterThanOrEqual(product, lastProduct, "\(tiles) on \(threads): products in order")
                    XCTAssertEqual(range.lowerBound, next[product], "\(tiles) on \(threads): run \(range) of product \(product)")
                    XCTAssertFalse(range.isEmpty)
                    next[product] = range.upperBound; lastProduct = product
                    // Smaller than the minimum only where a product ends.
                    if range.count < minimum { XCTAssertEqual(range.upperBound, tiles[product], "\(tiles) on \(threads): run \(range)") }
                }
                XCTAssertEqual(next, tiles, "\(tiles) on \(threads): every tile once")
                if threads == 1 { XCTAssertEqual(runs.count, tiles.filter { $0 > 0 }.count) }
            }
        }
        // Two threads over 2 × 96 tiles: half of what is left each time (the first run is the
        // whole first product), down to 2; the last run is the one tile left.
        let sizes = StreamingQuantizedWeight.runs(tiles: [96, 96], threads: 2).map { $0.tile1 - $0.tile0 }
        XCTAssertEqual(sizes, [96, 48, 24, 12, 6, 3, 2, 1])
        // Three threads over q, k and v of SmolLM2 (36, 12, 12 tiles): a third of what is left,
        // cut where a product ends.
        let qkv = StreamingQuantizedWeight.runs(tiles: [36, 12, 12], threads: 3).map { [$0.product, $0.tile1 - $0.tile0] }
        XCTAssertEqual(qkv, [[0, 20], [0, 14], [0, 2], [1, 8], [1, 4], [2, 4], [2, 3], [2, 2], [2, 2], [2, 1]])
    }

    func run(_ layer: Linear, _ x: [Float], rows: Int, _ context: ComputeContext) -> [Float] {
        var y = [Float](repeating: .nan, count: rows * layer.outFeatures)
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { layer.forward(xb.baseAddress!, rows: rows, into: $0.baseAddress!, context: context) }
        }
        return y
    }
}
