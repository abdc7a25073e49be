import EasyQuant
import XCTest

/// Each method's formula on hand-computed cases, the edge cases, and the round-trip bound.
final class QuantizerTests: XCTestCase {
    /// Quantizes a 1×n row per tensor (one block) and returns codes and the block's parameters.
    func quantizeRow(_ method: any QuantizationMethod, _ xs: [Float]) throws -> QuantizedTensor {
        try xs.withUnsafeBufferPointer {
            try method.quantize($0, layout: BlockLayout(shape: [1, xs.count], axis: 1, granularity: .tensor))
        }
    }
    func codes(_ q: QuantizedTensor) -> [Int32] { (0..<q.elementCount).map { q.code(at: $0) } }

    func testAbsMaxHandComputed() throws {
        // step = 4/127; 1/step = 31.75 → 32, -3/step = -95.25 → -95, 0.5/step = 15.875 → 16, 4 → 127.
        let q = try quantizeRow(AbsMax(), [1, -3, 0.5, 4])
        XCTAssertEqual(codes(q), [32, -95, 16, 127])
        XCTAssertEqual(q.scales, [Float(4) / 127])
        XCTAssertNil(q.zeroPoints)
        XCTAssertEqual(q.dequantized(), [32, -95, 16, 127].map { Float($0) * (Float(4) / 127) })
    }

    func testZeroPointHandComputed() throws {
        // scale = 255/4 = 63.75, zp = round(63.75 - 128) = round(-64.25) = -64.
        // -1 → round(-127.75) = -128; 0 → -64; 0.5 → round(-32.125) = -32; 3 → round(127.25) = 127.
        let q = try quantizeRow(ZeroPoint(), [-1, 0, 0.5, 3])
        XCTAssertEqual(codes(q), [-128, -64, -32, 127])
        XCTAssertEqual(q.zeroPoints, [-64])
        XCTAssertEqual(q.scales[0], 4 / 255, accuracy: 1e-9)
        let dq = q.dequantized()
        for (got, want) in zip(dq, [-64.0, 0, 32, 191].map { Float($0) / 63.75 }) { XCTAssertEqual(got, want, accuracy: 1e-6) }
    }

    func testSymQuantHandComputed() throws {
        // s = 4/127.5; 1/s = 31.875 → 32; -3/s = -95.625 → -96; 0.5/s = 15.9375 → 16; 4/s = 127.5 → 128 → clamp 127.
        let q = try quantizeRow(SymQuant(), [1, -3, 0.5, 4])
        XCTAssertEqual(codes(q), [32, -96, 16, 127])
        XCTAssertEqual(q.scales, [Float(4) / 127.5])
        // The most negative value reaches -128: with max|X| = 127.5, s = 1 and -127.5 → -128 (ties to even).
        XCTAssertEqual(codes(try quantizeRow(SymQuant(), [-127.5, 1, 127.5])), [-128, 1, 127])
    }

    func testSimQuantHandComputed8And4Bits() throws {
        // 8 bits: s = 255/4 = 63.75, z = round(63.75) = 64; codes 0, 64, round(95.875) = 96, round(255.25) → 255.
        let q8 = try quantizeRow(SimQuant(bits: 8), [-1, 0, 0.5, 3])
        XCTAssertEqual(codes(q8), [0, 64, 96, 255])
        XCTAssertEqual(q8.zeroPoints, [64])
        XCTAssertEqual(q8.codes.count, 4)
        // 4 bits: s = 15/4 = 3.75, z = round(3.75) = 4; codes round(0.25)=0, 4, round(5.875)=6, round(15.25)→15.
        let q4 = try quantizeRow(SimQuant(bits: 4), [-1, 0, 0.5, 3])
        XCTAssertEqual(codes(q4), [0, 4, 6, 15])
        XCTAssertEqual(q4.codes, [0x40, 0xF6], "two codes per byte, element 0 in the low nibble")
        XCTAssertEqual(q4.zeroPoints, [4])
    }

    func testSignedFourBitPackingRoundTrips() throws {
        let xs: [Float] = [-7, -3, 0, 2, 7]
        let q = try quantizeRow(AbsMax(bits: 4), xs)
        XCTAssertEqual(codes(q), [-7, -3, 0, 2, 7])
        XCTAssertEqual(q.codes, [0xD9, 0x20, 0x07], "odd count: last high nibble is 0")
        XCTAssertEqual(q.dequantized(), xs)
    }

    func testConstantChannelsDoNotDivideByZero() throws {
        for method in try QuantizationMethods.names.map({ try QuantizationMethods.make($0) }) {
            for c: Float in [0, 2.5, -1.25] {
                let q = try quantizeRow(method, [c, c, c])
                XCTAssertTrue(q.scales.allSatisfy { $0.isFinite && $0 > 0 }, "\(method.name) c=\(c)")
                // symquant's top code is 127 for 127.5 steps, so it may miss by half a step;
                // the others map a constant exactly onto a code.
                let tolerance = method.name == "symquant" ? q.scales[0] / 2 * 1.0001 : abs(c) * 1e-6
                for v in q.dequantized() { XCTAssertEqual(v, c, accuracy: tolerance, "\(method.name) c=\(c)") }
            }
        }
    }

    func testSingleElementAndAllNegative() throws {
        for method in try QuantizationMethods.names.map({ try QuantizationMethods.make($0) }) {
            let single = try quantizeRow(method, [-0.75])
            XCTAssertEqual(single.dequantized()[0], -0.75, accuracy: single.scales[0] / 2 * 1.0001, method.name)
            let negatives: [Float] = [-3, -2, -1.5, -1]
            let q = try quantizeRow(method, negatives)
            let step = q.scales[0]
            for (x, d) in zip(negatives, q.dequantized()) {
                XCTAssertLessThanOrEqual(abs(x - d), step / 2 * 1.0001, "\(method.name) \(x)")
            }
        }
        // zeropoint on an all-negative row: the zero point lies outside int8, as the formula gives.
        let zp = try quantizeRow(ZeroPoint(), [-3, -2, -1])
        XCTAssertEqual(zp.zeroPoints, [254])  // round(127.5 · 3 - 128) = round(254.5) = 254 (ties to even)
        // round(-382.5 + 254) = round(-128.5) = -128, round(-255 + 254) = -1, round(-127.5 + 254) = round(126.5) = 126.
        XCTAssertEqual(codes(zp), [-128, -1, 126])
    }

    func testNonFiniteValuesAreRefusedWithTheTensorName() {
        for bad: Float in [.nan, .infinity, -.infinity] {
            let xs: [Float] = [1, 2, bad, 4]
            XCTAssertThrowsError(try xs.withUnsafeBufferPointer {
                try AbsMax().quantize($0, layout: BlockLayout(shape: [2, 2], axis: 1, granularity: .channel), name: "h.0.mlp.c_fc.weight")
            }) { error in
                guard case let .nonFinite(tensor, index, value) = error as? QuantizationError else { return XCTFail("\(error)") }
                XCTAssertEqual(tensor, "h.0.mlp.c_fc.weight")
                XCTAssertEqual(index, 2)
                XCTAssertEqual(value.bitPattern, bad.bitPattern)
                XCTAssertTrue("\(error)".contains("h.0.mlp.c_fc.weight"))
            }
        }
    }

    func testPerChannelAndGroupBlocks() throws {
        // A [4, 2] Conv1D-style weight ([in, out]): per channel means one scale per column.
        let w: [Float] = [1, -10,
                          2, 20,
                          -4, 5,
                          3, -40]
        let perChannel = try w.withUnsafeBufferPointer {
            try AbsMax().quantize($0, layout: BlockLayout(shape: [4, 2], axis: 1, granularity: .channel))
        }
        XCTAssertEqual(perChannel.layout.scaleShape, [1, 2])
        XCTAssertEqual(perChannel.scales, [Float(4) / 127, Float(40) / 127])
        // Groups of 2 input rows per column: scale shape [2, 2].
        let grouped = try w.withUnsafeBufferPointer {
            try AbsMax().quantize($0, layout: BlockLayout(shape: [4, 2], axis: 1, granularity: .group(2)))
        }
        XCTAssertEqual(grouped.layout.scaleShape, [2, 2])
        XCTAssertEqual(grouped.scales, [2, 20, 4, 40].map { Float($0) / 127 })
        // Axis 0 (an embedding: one row per token): one scale per row.
        let rows = try w.withUnsafeBufferPointer {
            try AbsMax().quantize($0, layout: BlockLayout(shape: [4, 2], axis: 0, granularity: .channel))
        }
        XCTAssertEqual(rows.scales, [10, 20, 5, 40].map { Float($0) / 127 })
        // Per tensor: one scale.
        let tensor = try w.withUnsafeBufferPointer {
            try AbsMax().quantize($0, layout: BlockLayout(shape: [4, 2], axis: 1, granularity: .tensor))
        }
        XCTAssertEqual(tensor.scales, [Float(40) / 127])
        // A group size that does not divide the axis leaves a shorter last block.
        let ragged = try w.withUnsafeBufferPointer {
            try AbsMax().quantize($0, layout: BlockLayout(shape: [4, 2], axis: 1, granularity: .group(3)))
        }
        XCTAssertEqual(ragged.layout.scaleShape, [2, 2])
        XCTAssertEqual(ragged.scales, [4, 20, 3, 40].map { Float($0) / 127 })
    }

    /// |x - dq(q(x))| <= step/2 for every method, granularity and width, on random data.
    func testRoundTripErrorIsAtMostHalfAStep() throws {
        var rng = SeededGenerator(seed: 42)
        let rows = 64, cols = 48
        let xs = (0..<(rows * cols)).map { _ in Float(rng.nextGaussian()) * (rng.nextUnit() < 0.01 ? 8 : 1) }
        for name in QuantizationMethods.names {
            for bits in [8, 4, 2] {
                let method = try QuantizationMethods.make(name, bits: bits)
                for g in [Granularity.tensor, .channel, .group(16), .group(7)] {
                    for axis in [0, 1] {
                        let layout = BlockLayout(shape: [rows, cols], axis: axis, granularity: g)
                        let q = try xs.withUnsafeBufferPointer { try method.quantize($0, layout: layout, threads: 2) }
                        let dq = q.dequantized()
                        let scaleCols = layout.scaleShape[1]
                        for r in 0..<rows {
                            for c in 0..<cols {
                                let step = q.scales[(r / layout.rows) * scaleCols + c / layout.columns]
                                let err = abs(xs[r * cols + c] - dq[r * cols + c])
                                XCTAssertLessThanOrEqual(err, step / 2 * 1.0001 + 1e-7, "\(name) \(bits)b \(g) axis \(axis) at (\(r),\(c))")
                            }
                        }
                    }
                }
            }
        }
    }

    func testGranularityParsing() {
        XCTAssertEqual(Granularity("channel"), .channel)
        XCTAssertEqual(Granularity("tensor"), .tensor)
        XCTAssertEqual(Granularity("group:128"), .group(128))
        XCTAssertNil(Granularity("group:0"))
        XCTAssertNil(Granularity("group:x"))
        XCTAssertNil(Granularity("rows"))
    }

    func testUnknownMethodAndBitsAreRefused() {
        XCTAssertThrowsError(try QuantizationMethods.make("gptq")) {
            XCTAssertTrue("\($0)".contains("absmax, zeropoint, symquant, simquant"))
        }
        XCTAssertThrowsError(try QuantizationMethods.make("absmax", bits: 9))
    }
}
