import EasyQuant
import Foundation
import XCTest

/// Every compiled copy of the C kernels (baseline, AVX2+FMA, AVX-512, as far as this CPU
/// has them) against double-precision or exact scalar definitions written here, and the
/// int8 quantization's codes bit for bit the same across copies.
final class KernelDispatchTests: XCTestCase {
    static let sets = ["baseline", "avx2", "avx512"]

    override func tearDown() {
        VectorOps.useInstructionSet("auto")
        super.tearDown()
    }

    /// Runs `body` once per instruction set this CPU can run, with the kernels switched to it.
    func forEachSet(_ body: (String) throws -> Void) rethrows {
        var ran = 0
        for set in Self.sets where VectorOps.useInstructionSet(set) {
            XCTAssertEqual(VectorOps.instructionSet, set)
            try body(set)
            ran += 1
        }
        XCTAssertGreaterThanOrEqual(ran, 1, "the baseline copy always runs")
        VectorOps.useInstructionSet("auto")
    }

    func testUnknownOrMissingSetIsRefused() {
        let before = VectorOps.instructionSet
        XCTAssertFalse(VectorOps.useInstructionSet("sse9"))
        XCTAssertEqual(VectorOps.instructionSet, before)
        XCTAssertTrue(VectorOps.useInstructionSet("baseline"))
        XCTAssertEqual(VectorOps.instructionSet, "baseline")
        XCTAssertTrue(VectorOps.useInstructionSet("auto"))
        XCTAssertEqual(VectorOps.instructionSet, before)
    }

    func testQuantizationIsExactOnEverySet() {
        var rng = SeededGenerator(seed: 21)
        let rows = 19, cols = 771 // vector bodies plus tails of every width
        var x = (0..<(rows * cols)).map { _ in Float.random(in: -4...4, using: &rng) }
        for j in 0..<cols { x[3 * cols + j] = 0 }
        // Exact halves of the step: round half to even decides them.
        for j in 0..<cols { x[5 * cols + j] = Float(j % 255 - 127) / 2 }
        x[5 * cols + 1] = 127 // max 127: scale 1, so every half-integer is a tie
        var results: [[Int8]] = []
        for groupSize in [cols, 64, 50] {
            let groups = (cols + groupSize - 1) / groupSize
            forEachSet { set in
                var codes = [Int8](repeating: 99, count: x.count), scales = [Float](repeating: .nan, count: rows)
                var sums = [Int32](repeating: 99, count: rows * groups)
                VectorOps.quantizeRowsInt8(x, rows: rows, cols: cols, out: &codes, scales: &scales, groupSums: &sums,
                                           groupSize: groupSize, threads: 2)
                for i in 0..<rows {
                    let scale = x[(i * cols)..<((i + 1) * cols)].map { abs($0) }.max()! / 127
                    XCTAssertEqual(scales[i], scale, "\(set) row \(i)")
                    for g in 0..<groups {
                        var sum: Int32 = 0
                        for j in (g * groupSize)..<min(cols, (g + 1) * groupSize) {
                            let q = scale == 0 ? 0 : Int8(min(127, max(-127, (x[i * cols + j] / scale).rounded(.toNearestOrEven))))
                            XCTAssertEqual(codes[i * cols + j], q, "\(set) row \(i) column \(j)")
                            if codes[i * cols + j] != q { return }
                            sum += Int32(q)
                        }
                        XCTAssertEqual(sums[i * groups + g], sum, "\(set) row \(i) group \(g)")
                    }
                }
                results.append(codes)
            }
        }
        XCTAssertTrue(results.allSatisfy { $0 == results[0] }, "every set gives the same codes")
    }

    func testSoftmaxAndLogSumExpOnEverySet() {
        var rng = SeededGenerator(seed: 22)
        let count = 1029
        let x = (0..<count).map { _ in Float.random(in: -20...20, using: &rng) }
        forEachSet { set in
            for length in [1, 3, 16, 17, 40, 1000, count] {
                let scale: Float = 0.125
                let m = x[0..<length].map { Double($0) * Double(scale) }.max()!
                let e = x[0..<length].map { exp(Double($0) * Double(scale) - m) }
                let s = e.reduce(0, +)
                var row = x
                VectorOps.softmaxInPlace(&row, count: count, length: length, scale: scale)
                var unnormalised = x
                let sum = VectorOps.unnormalisedSoftmaxInPlace(&unnormalised, count: count, length: length, scale: scale)
                XCTAssertEqual(Double(sum), s, accuracy: 1e-5 * s, "\(set) length \(length)")
                for j in 0..<length {
                    XCTAssertEqual(Double(row[j]), e[j] / s, accuracy: 1e-6 + 1e-5 * e[j] / s, "\(set) length \(length) j \(j)")
                    XCTAssertEqual(Double(unnormalised[j]), e[j], accuracy: 1e-6 + 1e-5 * e[j], "\(set) length \(length) j \(j)")
                }
                XCTAssertTrue(row[length...].allSatisfy { $0 == 0 } && unnormalised[length...].allSatisfy { $0 == 0 }, "\(set): masked entries are 0")
            }
            let logits = (0..<50257).map { _ in Float.random(in: -20...20, using: &rng) }
            let m = Double(logits.max()!)
            let ref = m + log(logits.reduce(0.0) { $0 + exp(Double($1) - m) })
            XCTAssertEqual(Double(VectorOps.logSumExp(logits, count: logits.count)), ref, accuracy: 1e-5 * abs(ref), set)
            for n in [1, 7, 31, 65] {
                let part = Array(logits.prefix(n))
                let pm = Double(part.max()!)
                let pref = pm + log(part.reduce(0.0) { $0 + exp(Double($1) - pm) })
                XCTAssertEqual(Double(VectorOps.logSumExp(part, count: n)), pref, accuracy: 1e-6 * max(1, abs(pref)), "\(set) n \(n)")
            }
        }
    }

    func testActivationsOnEverySet() {
        var rng = SeededGenerator(seed: 23)
        let n = 4096 * 2 + 13
        let g = (0..<n).map { _ in Float.random(in: -30...30, using: &rng) }
        let u = (0..<n).map { _ in Float.random(in: -3...3, using: &rng) }
        forEachSet { set in
            var out = [Float](repeating: .nan, count: n)
            VectorOps.swiglu(gate: g, up: u, count: n, out: &out)
            for i in 0..<n {
                let ref = Double(g[i]) / (1 + exp(-Double(g[i]))) * Double(u[i])
                XCTAssertEqual(Double(out[i]), ref, accuracy: 1e-6 * max(1e-3, abs(ref)), "\(set) swiglu \(g[i])")
                if abs(Double(out[i]) - ref) > 1e-6 * max(1e-3, abs(ref)) { return }
            }
            VectorOps.gelu(g, count: n, out: &out)
            for i in 0..<n where g[i] >= -3 {
                let v = Double(g[i]), w = (2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)
                let ref = 0.5 * v * (1 + tanh(w))
                XCTAssertEqual(Double(out[i]), ref, accuracy: 1e-6 * max(1e-3, abs(ref)), "\(set) gelu \(g[i])")
                if abs(Double(out[i]) - ref) > 1e-6 * max(1e-3, abs(ref)) { return }
            }
        }
    }

    func testNormsAndSumsOnEverySet() {
        var rng = SeededGenerator(seed: 24)
        let rows = 6, cols = 577
        var x = (0..<(rows * cols)).map { _ in Float.random(in: -2...2, using: &rng) }
        for j in 0..<cols { x[cols + j] += 1000 } // a large common offset (LayerNorm's hi + lo)
        x[2 * cols + 5] = 3000 // an outlier channel
        let gamma = (0..<cols).map { _ in Float.random(in: 0.5...2, using: &rng) }
        let beta = (0..<cols).map { _ in Float.random(in: -1...1, using: &rng) }
        forEachSet { set in
            var rms = [Float](repeating: .nan, count: x.count), ln = rms
            VectorOps.rmsNorm(x, rows: rows, cols: cols, gamma: gamma, eps: 1e-5, out: &rms)
            VectorOps.layerNorm(x, rows: rows, cols: cols, gamma: gamma, beta: beta, eps: 1e-5, out: &ln)
            for i in 0..<rows {
                let r = x[(i * cols)..<((i + 1) * cols)].map(Double.init)
                let rstd = 1 / (r.map { $0 * $0 }.reduce(0, +) / Double(cols) + 1e-5).squareRoot()
                let mean = r.reduce(0, +) / Double(cols)
                let lstd = 1 / (r.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(cols) + 1e-5).squareRoot()
                for j in 0..<cols {
                    let refRMS = r[j] * rstd * Double(gamma[j])
                    XCTAssertEqual(Double(rms[i * cols + j]), refRMS, accuracy: 1e-5 * max(1, abs(refRMS)), "\(set) rms row \(i) col \(j)")
                    let refLN = (r[j] - mean) * lstd * Double(gamma[j]) + Double(beta[j])
                    XCTAssertEqual(Double(ln[i * cols + j]), refLN, accuracy: 1e-5 * max(1, abs(refLN)), "\(set) layer norm row \(i) col \(j)")
                }
            }
            var a = x
            VectorOps.add(gamma + gamma + gamma + gamma + gamma + gamma, into: &a, count: rows * cols)
            XCTAssertEqual(a, (0..<(rows * cols)).map { x[$0] + gamma[$0 % cols] }, set)
            var b = x
            VectorOps.addBias(&b, rows: rows, cols: cols - 1, ld: cols, bias: gamma)
            XCTAssertEqual(b, (0..<(rows * cols)).map { $0 % cols == cols - 1 ? x[$0] : x[$0] + gamma[$0 % cols] }, set)
        }
    }

    /// Decoding's attention of one token (eqk_attend_one) against softmax attention in
    /// double, on head sizes and key counts with vector tails, with several query heads per
    /// key/value head and rows wider than a head (the cache's layout).
    func testAttentionOfOneTokenOnEverySet() {
        var rng = SeededGenerator(seed: 5)
        for (group, d, count, ld) in [(1, 64, 37, 192), (3, 20, 1, 20), (2, 7, 50, 9), (1, 128, 300, 128), (4, 64, 45, 64), (7, 16, 33, 16)] {
            let q = (0..<(group * d)).map { _ in Float.random(in: -2...2, using: &rng) }
            let k = (0..<(count * ld)).map { _ in Float.random(in: -2...2, using: &rng) }
            let v = (0..<(count * ld)).map { _ in Float.random(in: -3...3, using: &rng) }
            let scale = 1 / Float(d).squareRoot()
            var expected = [Double](repeating: 0, count: group * d)
            for h in 0..<group {
                let s = (0..<count).map { t in Double(scale) * (0..<d).reduce(0.0) { $0 + Double(q[h * d + $1]) * Double(k[t * ld + $1]) } }
                let m = s.max()!, e = s.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
                for c in 0..<d { expected[h * d + c] = (0..<count).reduce(0.0) { $0 + e[$1] / z * Double(v[$1 * ld + c]) } }
            }
            forEachSet { set in
                var out = [Float](repeating: .nan, count: group * d), scores = [Float](repeating: .nan, count: group * count)
                VectorOps.attendOne(q, group: group, headSize: d, keys: k, ldk: ld, values: v, ldv: ld, count: count, scale: scale,
                                    scores: &scores, out: &out)
                for i in 0..<(group * d) {
                    XCTAssertEqual(Double(out[i]), expected[i], accuracy: 1e-5 * max(1, abs(expected[i])), "\(set) group \(group) d \(d) keys \(count) [\(i)]")
                }
                // Heads done together (up to three per pass over the rows) give, bit for bit,
                // what each gives alone.
                for h in 0..<group {
                    var alone = [Float](repeating: .nan, count: d)
                    VectorOps.attendOne(Array(q[(h * d)..<((h + 1) * d)]), group: 1, headSize: d, keys: k, ldk: ld, values: v, ldv: ld,
                                        count: count, scale: scale, scores: &scores, out: &alone)
                    XCTAssertEqual(alone.map(\.bitPattern), out[(h * d)..<((h + 1) * d)].map(\.bitPattern), "\(set) head \(h) of \(group)")
                }
                // The same keys cut into up to three parts (as decoding cuts them over threads),
                // each left undivided with its maxima and sums, then merged.
                for parts in 2...3 where parts <= count {
                    var sums = [Float](repeating: .nan, count: parts * group * d), partials = [Float](repeating: .nan, count: parts * 2 * group)
                    for p in 0..<parts {
                        let t0 = count * p / parts, t1 = count * (p + 1) / parts
                        sums.withUnsafeMutableBufferPointer { sp in
                            partials.withUnsafeMutableBufferPointer { pp in
                                VectorOps.attendOne(q, group: group, headSize: d, keys: Array(k[(t0 * ld)...]), ldk: ld, values: Array(v[(t0 * ld)...]),
                                                    ldv: ld, count: t1 - t0, scale: scale, scores: &scores, out: sp.baseAddress! + p * group * d,
                                                    partial: pp.baseAddress! + p * 2 * group)
                            }
                        }
                    }
                    var merged = [Float](repeating: .nan, count: group * d)
                    VectorOps.mergeAttentionParts(parts, group: group, headSize: d, sums: sums, partials: partials, out: &merged)
                    for i in 0..<(group * d) {
                        XCTAssertEqual(Double(merged[i]), expected[i], accuracy: 1e-5 * max(1, abs(expected[i])),
                                       "\(set) \(parts) parts, group \(group) d \(d) keys \(count) [\(i)]")
                    }
                }
            }
        }
    }

    /// Floats to halves and back on every set, against Swift's Float16 (correctly rounded,
    /// ties to even): every half's bits widen to the float Float16 gives, and floats of every
    /// kind (normal, subnormal and zero halves, ties, the overflow threshold, ±∞, NaN) narrow
    /// to Float16's bits, in the vector body and in the scalar tail; the count of values
    /// beyond the range (which a cache of halves reports) is exact.
    func testHalfConversionsOnEverySet() {
        let everyHalf = (0...UInt16.max).map { $0 }
        var rng = SeededGenerator(seed: 11)
        var floats: [Float] = [0, -0, 1, -1, 65504, 65519.996, 65520, -65520, 1e9, .infinity, -.infinity, .nan,
                               0x1p-14, 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-26, 3 * 0x1p-25, 0x1.ffcp-15, 1e-30, -5.96e-8,
                               1 + 0x1p-11, 1 + 0x3p-11, 1 + 0x1p-11 + 0x1p-20, 2049, 2051, 0.1, -0.3333333]
        floats += (0..<4000).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng)) }
        floats += (0..<4000).map { _ in Float.random(in: -70000...70000, using: &rng) }
        floats += (0..<4000).map { _ in Float.random(in: -0x1p-13...0x1p-13, using: &rng) }
        forEachSet { set in
            let wide = VectorOps.floats(halves: everyHalf)
            for (h, f) in zip(everyHalf, wide) {
                let expected = Float(Float16(bitPattern: h))
                if expected.isNaN { XCTAssertTrue(f.isNaN, "\(set) half \(h)") } else {
                    XCTAssertEqual(f.bitPattern, expected.bitPattern, "\(set) half \(h)")
                }
            }
            // Odd lengths leave a tail for the scalar path of the vector copies.
            for count in [floats.count, 13] {
                let narrow = VectorOps.halves(Array(floats.prefix(count)))
                var ignored = [UInt16](repeating: 0, count: count)
                XCTAssertEqual(VectorOps.halvesOverflowing(Array(floats.prefix(count)), into: &ignored),
                               floats.prefix(count).filter { abs($0) >= 65520 }.count, "\(set): values beyond the halves' range")
                for (x, h) in zip(floats, narrow) {
                    let expected = Float16(x)
                    if expected.isNaN { XCTAssertTrue(Float16(bitPattern: h).isNaN, "\(set) \(x)") } else {
                        XCTAssertEqual(h, expected.bitPattern, "\(set) \(x) (\(x.bitPattern))")
                    }
                }
            }
        }
    }

    /// Decoding attention over keys and values held as halves gives, bit for bit, what it
    /// gives over their floats, on every set, whole and in parts.
    func testAttentionOverHalvesEqualsAttentionOverTheirFloats() {
        var rng = SeededGenerator(seed: 9)
        for (group, d, count, ld) in [(1, 64, 37, 192), (3, 20, 1, 20), (2, 7, 50, 9), (3, 64, 301, 64)] {
            let q = (0..<(group * d)).map { _ in Float.random(in: -2...2, using: &rng) }
            let k = VectorOps.halves((0..<(count * ld)).map { _ in Float.random(in: -2...2, using: &rng) })
            let v = VectorOps.halves((0..<(count * ld)).map { _ in Float.random(in: -3...3, using: &rng) })
            let (kf, vf) = (VectorOps.floats(halves: k), VectorOps.floats(halves: v))
            let scale = 1 / Float(d).squareRoot()
            forEachSet { set in
                for partial in [false, true] {
                    var scores = [Float](repeating: .nan, count: group * count)
                    var fromFloats = [Float](repeating: .nan, count: group * d), fromHalves = fromFloats
                    var partsF = [Float](repeating: .nan, count: 2 * group), partsH = partsF
                    kf.withUnsafeBytes { kp in vf.withUnsafeBytes { vp in partsF.withUnsafeMutableBufferPointer { pp in
                        VectorOps.attendOne(q, group: group, headSize: d, keys: kp.baseAddress!, ldk: ld, values: vp.baseAddress!, ldv: ld,
                                            storage: .f32, count: count, scale: scale, scores: &scores, out: &fromFloats,
                                            partial: partial ? pp.baseAddress! : nil)
                    } } }
                    k.withUnsafeBytes { kp in v.withUnsafeBytes { vp in partsH.withUnsafeMutableBufferPointer { pp in
                        VectorOps.attendOne(q, group: group, headSize: d, keys: kp.baseAddress!, ldk: ld, values: vp.baseAddress!, ldv: ld,
                                            storage: .f16, count: count, scale: scale, scores: &scores, out: &fromHalves,
                                            partial: partial ? pp.baseAddress! : nil)
                    } } }
                    XCTAssertFalse(fromHalves.contains { $0.isNaN }, set)
                    XCTAssertEqual(fromHalves.map(\.bitPattern), fromFloats.map(\.bitPattern), "\(set) group \(group) d \(d) keys \(count)")
                    if partial { XCTAssertEqual(partsH.map(\.bitPattern), partsF.map(\.bitPattern), set) }
                }
            }
        }
    }

    /// Greedy choice (eqk_argmax) on every set against a scalar scan: the first of equal
    /// maxima, in the vector body and in the tail, NaNs passed over, ±∞, all NaN, empty.
    func testArgmaxOnEverySet() {
        var rng = SeededGenerator(seed: 3)
        func scan(_ x: [Float]) -> Int {
            var best: Int?
            for (i, v) in x.enumerated() where !v.isNaN && (best == nil || v > x[best!]) { best = i }
            return best ?? 0
        }
        var cases: [[Float]] = [[], [.nan], [.nan, .nan, 1], [-.infinity, -.infinity], [3, .infinity, .infinity, 2], [.nan, -1, -2]]
        for n in [1, 5, 16, 17, 49, 49152] {
            var x = (0..<n).map { _ in Float(Int.random(in: -20...20, using: &rng)) }  // many ties
            cases.append(x)
            x[n / 2] = .nan
            x[n - 1] = 21
            cases.append(x)
        }
        forEachSet { set in
            for x in cases {
                XCTAssertEqual(x.withUnsafeBufferPointer(VectorOps.argmax), scan(x), "\(set) \(x.prefix(8))… (\(x.count))")
            }
        }
    }
}
