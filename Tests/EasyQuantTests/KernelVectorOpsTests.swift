import Foundation
import XCTest
import EasyQuant

final class KernelVectorOpsTests: XCTestCase {
    /// GPT-2's gelu_new, in double from the float input. Below w = −5, 1 + tanh(w)
    /// cancels even in double, so the reference switches to the identical
    /// 1 + tanh(w) = 2/(1 + e^(−2w)) there.
    func geluReference(_ x: Float) -> Double {
        let v = Double(x)
        let w = (2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)
        return w >= -5 ? 0.5 * v * (1 + tanh(w)) : v / (1 + exp(-2 * w))
    }

    func testGeluMatchesTanhFormula() {
        // The two forms of the reference agree where both are accurate.
        for v in stride(from: -3.0, through: 3.0, by: 0.01) {
            let w = (2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)
            XCTAssertEqual(0.5 * v * (1 + tanh(w)), v / (1 + exp(-2 * w)), accuracy: 1e-14)
        }
        // Every 1/1024 step over [-12, 12] (24577 values: vector body and tail), plus extremes.
        var xs = (-12 * 1024...12 * 1024).map { Float($0) / 1024 }
        xs += [-1e30, -100, -20, 0, 1e-30, -1e-30, 20, 100, 1e30, 3.4e38]
        var ys = [Float](repeating: .nan, count: xs.count)
        VectorOps.gelu(xs, count: xs.count, out: &ys)
        var worstRel = 0.0, worstX: Float = 0, worstTail = 0.0, worstTailX: Float = 0
        for (x, y) in zip(xs, ys) {
            XCTAssertFalse(y.isNaN, "gelu(\(x)) is NaN")
            let ref = geluReference(x)
            let err = abs(Double(y) - ref)
            if x >= -3 {
                if err > worstRel * abs(ref) { worstRel = err / abs(ref); worstX = x }
            } else {
                // Below −3 the result is tiny and its float argument u carries a relative
                // error of ~|2u|·2^-24 into e^(−2u): bound the error against |x| instead.
                if err > worstTail * abs(Double(x)) { worstTail = err / abs(Double(x)); worstTailX = x }
            }
        }
        print("gelu: worst relative error \(worstRel) at \(worstX); worst tail error/|x| \(worstTail) at \(worstTailX)")
        XCTAssertLessThanOrEqual(worstRel, 1e-6, "worst relative error at x=\(worstX)")
        XCTAssertLessThanOrEqual(worstTail, 1e-9, "worst tail error at x=\(worstTailX)")
        // Values a reader can check by hand.
        XCTAssertEqual(ys[xs.firstIndex(of: 0)!], 0)
        XCTAssertEqual(ys[xs.firstIndex(of: 20)!], 20)
        XCTAssertEqual(ys[xs.firstIndex(of: 1e30)!], 1e30)
        XCTAssertEqual(ys[xs.firstIndex(of: -1e30)!], 0)
        XCTAssertEqual(Double(ys[xs.firstIndex(of: 1)!]), 0.841191990607, accuracy: 1e-6)
        XCTAssertEqual(Double(ys[xs.firstIndex(of: -1)!]), -0.158808009393, accuracy: 1e-6)
    }

    func testGeluInPlaceEqualsOutOfPlace() {
        var rng = SeededGenerator(seed: 5)
        let xs = (0..<100_003).map { _ in Float.random(in: -8...8, using: &rng) }
        var a = [Float](repeating: 0, count: xs.count)
        VectorOps.gelu(xs, count: xs.count, out: &a)
        var b = xs
        VectorOps.geluInPlace(&b, count: b.count, threads: 1)
        XCTAssertEqual(a, b)
    }

    func layerNormReference(_ row: ArraySlice<Float>, gamma: [Float], beta: [Float], eps: Float) -> [Double] {
        let xs = row.map(Double.init)
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
        let rstd = 1 / (variance + Double(eps)).squareRoot()
        return xs.indices.map { (xs[$0] - mean) * rstd * Double(gamma[$0]) + Double(beta[$0]) }
    }

    func testLayerNormMatchesDoublePrecisionReference() {
        var rng = SeededGenerator(seed: 6)
        for cols in [1, 7, 768, 1029] {
            let rows = 9
            var x = [Float](repeating: 0, count: rows * cols)
            for i in 0..<rows {
                for j in 0..<cols {
                    let noise = Float.random(in: -1...1, using: &rng)
                    switch i {
                    case 0: x[i * cols + j] = noise
                    case 1: x[i * cols + j] = 1000 + noise // large mean, unit spread
                    case 2: x[i * cols + j] = j == 3 % cols ? 3000 : noise // a GPT-2-like outlier channel
                    case 3: x[i * cols + j] = 1e-3 * noise // spread comparable to eps
                    case 4: x[i * cols + j] = 5 // constant row: output is beta
                    default: x[i * cols + j] = Float.random(in: -50...50, using: &rng)
                    }
                }
            }
            let gamma = (0..<cols).map { _ in Float.random(in: 0.5...2, using: &rng) }
            let beta = (0..<cols).map { _ in Float.random(in: -1...1, using: &rng) }
            let eps: Float = 1e-5
            var out = [Float](repeating: .nan, count: x.count)
            VectorOps.layerNorm(x, rows: rows, cols: cols, gamma: gamma, beta: beta, eps: eps, out: &out)
            for i in 0..<rows {
                let ref = layerNormReference(x[(i * cols)..<((i + 1) * cols)], gamma: gamma, beta: beta, eps: eps)
                for j in 0..<cols {
                    let err = abs(Double(out[i * cols + j]) - ref[j]) / max(1, abs(ref[j]))
                    XCTAssertLessThanOrEqual(err, 1e-5, "row \(i) col \(j) cols \(cols): \(out[i * cols + j]) vs \(ref[j])")
                    if err > 1e-5 { return }
                }
            }
            if cols > 1 { XCTAssertEqual(Array(out[(4 * cols)..<(5 * cols)]), beta, "constant row gives beta") }
            // In place gives the same numbers.
            var inPlace = x
            inPlace.withUnsafeMutableBufferPointer { p in
                VectorOps.layerNorm(p.baseAddress!, rows: rows, cols: cols, gamma: gamma, beta: beta, eps: eps, out: p.baseAddress!)
            }
            XCTAssertEqual(inPlace, out)
        }
    }

    func testAddBiasAndResidual() {
        var x: [Float] = [1, 2, 3, 99, 4, 5, 6, 99]
        VectorOps.addBias(&x, rows: 2, cols: 3, ld: 4, bias: [10, 20, 30])
        XCTAssertEqual(x, [11, 22, 33, 99, 14, 25, 36, 99])
        let n = 70_001
        var a = (0..<n).map { Float($0) }
        let b = (0..<n).map { Float(2 * $0) }
        VectorOps.add(b, into: &a, count: n)
        XCTAssertEqual(a, (0..<n).map { Float(3 * $0) })
        // A wide matrix through the vector body and tails, parallel path included.
        let rows = 300, cols = 771
        var m = [Float](repeating: 1, count: rows * cols)
        let bias = (0..<cols).map { Float($0) }
        VectorOps.addBias(&m, rows: rows, cols: cols, bias: bias)
        XCTAssertEqual(m, (0..<(rows * cols)).map { Float($0 % cols) + 1 })
    }

    func testSoftmaxWithCausalLength() {
        var rng = SeededGenerator(seed: 7)
        for count in [1, 5, 16, 17, 1024] {
            for length in Set([1, (count + 1) / 2, count]) {
                for scale: Float in [1, 0.125] {
                    let x = (0..<count).map { _ in Float.random(in: -30...30, using: &rng) }
                    var row = x
                    VectorOps.softmaxInPlace(&row, count: count, length: length, scale: scale)
                    let m = x[0..<length].map { Double($0) * Double(scale) }.max()!
                    let e = x[0..<length].map { exp(Double($0) * Double(scale) - m) }
                    let s = e.reduce(0, +)
                    var total = 0.0
                    for j in 0..<length {
                        XCTAssertEqual(Double(row[j]), e[j] / s, accuracy: 1e-6 + 1e-5 * e[j] / s, "count \(count) length \(length) j \(j)")
                        total += Double(row[j])
                    }
                    XCTAssertEqual(total, 1, accuracy: 1e-5)
                    XCTAssertTrue(row[length...].allSatisfy { $0 == 0 }, "masked positions are zero")
                }
            }
        }
        var equal: [Float] = [3, 3, 3, 3, 7]
        VectorOps.softmaxInPlace(&equal, count: 5, length: 4)
        XCTAssertEqual(equal, [0.25, 0.25, 0.25, 0.25, 0])
    }

    func testSoftmaxCausalRowsEqualsRowByRow() {
        var rng = SeededGenerator(seed: 11)
        let rows = 40, cols = 37, ld = 41
        let x = (0..<(rows * ld)).map { _ in Float.random(in: -5...5, using: &rng) }
        for firstLength in [1, 4] {
            var block = x
            VectorOps.softmaxCausalRows(&block, rows: rows, cols: cols, ld: ld, firstLength: firstLength, scale: 0.5)
            for i in 0..<rows {
                var row = Array(x[(i * ld)..<(i * ld + cols)])
                VectorOps.softmaxInPlace(&row, count: cols, length: min(cols, firstLength + i), scale: 0.5)
                XCTAssertEqual(Array(block[(i * ld)..<(i * ld + cols)]), row, "row \(i)")
                XCTAssertEqual(Array(block[(i * ld + cols)..<(i * ld + ld)]), Array(x[(i * ld + cols)..<(i * ld + ld)]), "stride padding untouched")
            }
            XCTAssertEqual(block[0], firstLength == 1 ? 1 : block[0], "the first query sees only itself")
        }
    }

    func testLogSumExpRows() {
        var rng = SeededGenerator(seed: 12)
        let rows = 70, cols = 1001, ld = 1003
        let x = (0..<(rows * ld)).map { _ in Float.random(in: -9...9, using: &rng) }
        var out = [Float](repeating: .nan, count: rows)
        VectorOps.logSumExpRows(x, rows: rows, cols: cols, ld: ld, out: &out)
        for i in 0..<rows {
            XCTAssertEqual(out[i], x.withUnsafeBufferPointer { VectorOps.logSumExp($0.baseAddress! + i * ld, count: cols) })
            let ref = log(x[(i * ld)..<(i * ld + cols)].reduce(0.0) { $0 + exp(Double($1)) })
            XCTAssertEqual(Double(out[i]), ref, accuracy: 1e-5 * abs(ref))
        }
    }

    func testLogSumExp() {
        var rng = SeededGenerator(seed: 8)
        let n = 50257
        let logits = (0..<n).map { _ in Float.random(in: -20...20, using: &rng) }
        let m = Double(logits.max()!)
        let ref = m + log(logits.reduce(0.0) { $0 + exp(Double($1) - m) })
        XCTAssertEqual(Double(VectorOps.logSumExp(logits, count: n)), ref, accuracy: 1e-5 * abs(ref))
        XCTAssertEqual(Double(VectorOps.logSumExp([Float](repeating: 0, count: 1000), count: 1000)), log(1000), accuracy: 1e-6)
        XCTAssertEqual(VectorOps.logSumExp([-3.5], count: 1), -3.5)
        // Shifting every logit shifts the result: no overflow at 1e4.
        let shifted = logits.map { $0 + 10_000 }
        XCTAssertEqual(Double(VectorOps.logSumExp(shifted, count: n)), ref + 10_000, accuracy: 2e-3)
        // A very negative logit far below the max contributes nothing.
        XCTAssertEqual(VectorOps.logSumExp([0, -1000, -1000, -1000, -1000, -1000, -1000, -1000, -1000, -1000, -1000, -1000, -1000, -1000, -1000, -1000, -1000], count: 17), 0)
    }

    func testQuantizeRowsInt8HandComputed() {
        // Row 0: max 254 → scale 2; x/2 = 127, 0.5, 1.5, -0.5, -1.5, -127, 63.5, 2.5, 62.5
        //   → half to even: 127, 0, 2, 0, -2, -127, 64, 2, 62 (sum 128).
        // Row 1: zeros → scale 0, codes 0.
        // Row 2: max 127 → scale 1: -127, 0.5 → 0, -2.5 → -2, 100.49 → 100, 3.5 → 4, 0, -0 → 0,
        //   126.5 → 126, 1 (sum 102).
        let cols = 9
        let x: [Float] = [254, 1, 3, -1, -3, -254, 127, 5, 125,
                          0, 0, 0, 0, 0, 0, 0, 0, 0,
                          -127, 0.5, -2.5, 100.49, 3.5, 0, -0, 126.5, 1]
        var codes = [Int8](repeating: 55, count: x.count)
        var scales = [Float](repeating: .nan, count: 3)
        var sums = [Int32](repeating: 55, count: 3)
        VectorOps.quantizeRowsInt8(x, rows: 3, cols: cols, out: &codes, scales: &scales, rowSums: &sums)
        XCTAssertEqual(scales, [2, 0, 1])
        XCTAssertEqual(Array(codes[0..<9]), [127, 0, 2, 0, -2, -127, 64, 2, 62])
        XCTAssertEqual(Array(codes[9..<18]), [0, 0, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(Array(codes[18..<27]), [-127, 0, -2, 100, 4, 0, 0, 126, 1])
        XCTAssertEqual(sums, [128, 0, 102])
    }

    func testQuantizeRowsInt8LongRowsAgainstScalarDefinition() {
        var rng = SeededGenerator(seed: 9)
        let rows = 64, cols = 771 // vector body plus a tail
        var x = (0..<(rows * cols)).map { _ in Float.random(in: -3...3, using: &rng) }
        for j in 0..<cols { x[5 * cols + j] = 0 } // one zero row
        x[7 * cols + 770] = -40 // max in the tail, negative
        var codes = [Int8](repeating: 0, count: x.count)
        var scales = [Float](repeating: 0, count: rows)
        var sums = [Int32](repeating: 0, count: rows)
        VectorOps.quantizeRowsInt8(x, rows: rows, cols: cols, out: &codes, scales: &scales, rowSums: &sums)
        for i in 0..<rows {
            let row = x[(i * cols)..<((i + 1) * cols)]
            let scale = row.map { abs($0) }.max()! / 127
            XCTAssertEqual(scales[i], scale)
            var sum: Int32 = 0
            var maxCode: Int8 = 0
            for j in 0..<cols {
                let expected = scale == 0 ? 0 : Int8(min(127, max(-127, (x[i * cols + j] / scale).rounded(.toNearestOrEven))))
                XCTAssertEqual(codes[i * cols + j], expected, "row \(i) col \(j)")
                if codes[i * cols + j] != expected { return }
                sum += Int32(expected)
                maxCode = max(maxCode, Int8(abs(Int(expected))))
            }
            XCTAssertEqual(sums[i], sum)
            XCTAssertEqual(maxCode, scale == 0 ? 0 : 127, "the largest magnitude maps to ±127")
        }
        XCTAssertEqual(codes[7 * cols + 770], -127)
        // Without row sums the codes are the same.
        var codes2 = [Int8](repeating: 0, count: x.count)
        VectorOps.quantizeRowsInt8(x, rows: rows, cols: cols, out: &codes2, scales: &scales, threads: 1)
        XCTAssertEqual(codes2, codes)
    }

    /// The zero-point correction the row sums exist for, end to end with a backend:
    /// Σₖ xq[i,k]·(wq[k,j] − zpⱼ) = (Xq·Wq)[i,j] − zpⱼ·rowSum[i].
    func testRowSumsCorrectPerChannelZeroPoints() {
        var rng = SeededGenerator(seed: 10)
        let m = 5, k = 33, n = 7
        let x = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        var xq = [Int8](repeating: 0, count: m * k), scales = [Float](repeating: 0, count: m), sums = [Int32](repeating: 0, count: m)
        VectorOps.quantizeRowsInt8(x, rows: m, cols: k, out: &xq, scales: &scales, rowSums: &sums)
        let wq = (0..<(k * n)).map { _ in Int8.random(in: -100...100, using: &rng) }
        let zp = (0..<n).map { _ in Int32.random(in: -20...20, using: &rng) }
        var c = [Int32](repeating: 0, count: m * n)
        MatrixBackends.default.gemmS8S8S32(transA: false, transB: false, m: m, n: n, k: k, a: xq, lda: k, b: wq, ldb: n, c: &c, ldc: n)
        for i in 0..<m {
            for j in 0..<n {
                var direct: Int32 = 0
                for p in 0..<k { direct += Int32(xq[i * k + p]) * (Int32(wq[p * n + j]) - zp[j]) }
                XCTAssertEqual(c[i * n + j] - zp[j] * sums[i], direct)
            }
        }
    }
}
