import XCTest
import EasyQuant

final class KernelGemmTests: XCTestCase {
    let backends: [any MatrixBackend] = [
        OneDNNBackend(),
        OneDNNBackend(threads: 1, int8Path: .u8s8),
        SIMDBackend(),
        SIMDBackend(threads: 1),
    ]

    /// (m, n, k) shapes: scalars, odd sizes around the kernels' tile edges, and
    /// multiples of the blocking depth.
    let shapes: [(Int, Int, Int)] = [(1, 1, 1), (7, 13, 5), (65, 129, 33), (6, 32, 256), (13, 70, 513), (1, 300, 64), (200, 3, 17)]

    func testSgemmMatchesDoubleReferenceForAllTranspositionsAndStrides() {
        var rng = SeededGenerator(seed: 1)
        for (m, n, k) in shapes {
            for transA in [false, true] {
                for transB in [false, true] {
                    for extra in [0, 3] {
                        let aRows = transA ? k : m, aCols = transA ? m : k
                        let bRows = transB ? n : k, bCols = transB ? k : n
                        let lda = aCols + extra, ldb = bCols + 2 * extra, ldc = n + extra
                        // NaN padding: reading past the logical matrix would poison results.
                        let a = paddedMatrix(rows: aRows, cols: aCols, ld: lda, pad: Float.nan) { _, _ in Float.random(in: -1...1, using: &rng) }
                        let b = paddedMatrix(rows: bRows, cols: bCols, ld: ldb, pad: Float.nan) { _, _ in Float.random(in: -1...1, using: &rng) }
                        let c0 = paddedMatrix(rows: m, cols: n, ld: ldc, pad: Float(-7)) { _, _ in Float.random(in: -1...1, using: &rng) }
                        for (alpha, beta) in [(Float(1), Float(0)), (Float(0.5), Float(2)), (Float(-1.5), Float(1))] {
                            // Reference in double; the bound scales with Σ|a·b| so cancellation cannot hide errors.
                            var ref = [Double](repeating: 0, count: m * n), mag = ref
                            for i in 0..<m {
                                for j in 0..<n {
                                    var s = 0.0, sa = 0.0
                                    for p in 0..<k {
                                        let v = Double(element(a, transA, lda, i, p)) * Double(element(b, transB, ldb, p, j))
                                        s += v
                                        sa += abs(v)
                                    }
                                    ref[i * n + j] = Double(alpha) * s + Double(beta) * Double(c0[i * ldc + j])
                                    mag[i * n + j] = abs(Double(alpha)) * sa + abs(Double(beta) * Double(c0[i * ldc + j]))
                                }
                            }
                            var results: [[Float]] = []
                            for backend in backends {
                                var c = c0
                                if beta == 0 {
                                    // beta = 0 must not read C: NaN there must not leak through.
                                    for i in 0..<m { for j in 0..<n { c[i * ldc + j] = .nan } }
                                }
                                backend.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                              a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &c, ldc: ldc)
                                var worst = 0.0
                                for i in 0..<m {
                                    for j in 0..<n {
                                        let err = abs(Double(c[i * ldc + j]) - ref[i * n + j]) / max(mag[i * n + j], 1e-30)
                                        if !(err <= worst) { worst = err.isNaN ? .infinity : err }
                                    }
                                    for j in n..<ldc where c[i * ldc + j] != -7 {
                                        XCTFail("\(backend.name) wrote padding column \(j) of C")
                                    }
                                }
                                XCTAssertLessThanOrEqual(worst, 1e-5, "\(backend.name) m=\(m) n=\(n) k=\(k) tA=\(transA) tB=\(transB) extra=\(extra) alpha=\(alpha) beta=\(beta)")
                                results.append(c)
                            }
                            // The backends agree with each other as closely as each with the reference.
                            for r in results.dropFirst() {
                                for i in 0..<m {
                                    for j in 0..<n {
                                        let d = abs(Double(r[i * ldc + j]) - Double(results[0][i * ldc + j]))
                                        if d > 2e-5 * max(mag[i * n + j], 1e-30) {
                                            XCTFail("backends disagree at (\(i),\(j)) m=\(m) n=\(n) k=\(k)")
                                            return
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func testSgemmWithZeroDepthScalesC() {
        for backend in backends {
            var c: [Float] = [1, 2, 3, 4, 5, 6]
            let dummy: [Float] = [0]
            backend.sgemm(transA: false, transB: false, m: 2, n: 3, k: 0, alpha: 1, a: dummy, lda: 1,
                          b: dummy, ldb: 3, beta: 2, c: &c, ldc: 3)
            XCTAssertEqual(c, [2, 4, 6, 8, 10, 12], backend.name)
            var z: [Float] = [.nan, .nan, .nan]
            backend.sgemm(transA: false, transB: false, m: 1, n: 3, k: 0, alpha: 1, a: dummy, lda: 1,
                          b: dummy, ldb: 3, beta: 0, c: &z, ldc: 3)
            XCTAssertEqual(z, [0, 0, 0], backend.name)
        }
    }

    func testSIMDBackendIsBitwiseIndependentOfThreadCount() {
        var rng = SeededGenerator(seed: 2)
        let m = 97, n = 301, k = 700
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &rng) }
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        SIMDBackend(threads: 1).sgemm(transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k,
                                      b: b, ldb: k, beta: 0, c: &c1, ldc: n)
        SIMDBackend(threads: 2).sgemm(transA: false, transB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k,
                                      b: b, ldb: k, beta: 0, c: &c2, ldc: n)
        XCTAssertEqual(c1, c2)
    }

    /// Naive exact reference.
    func int8Reference(_ a: [Int8], _ transA: Bool, _ lda: Int, _ b: [Int8], _ transB: Bool, _ ldb: Int,
                       m: Int, n: Int, k: Int) -> [Int32] {
        var c = [Int32](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Int64 = 0
                for p in 0..<k { s += Int64(element(a, transA, lda, i, p)) * Int64(element(b, transB, ldb, p, j)) }
                c[i * n + j] = Int32(s)
            }
        }
        return c
    }

    func checkInt8(_ a: [Int8], _ transA: Bool, _ lda: Int, _ b: [Int8], _ transB: Bool, _ ldb: Int,
                   m: Int, n: Int, k: Int, ldc: Int, _ label: String) {
        let ref = int8Reference(a, transA, lda, b, transB, ldb, m: m, n: n, k: k)
        for backend in backends {
            var c = [Int32](repeating: 12345, count: m * ldc)
            backend.gemmS8S8S32(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                c: &c, ldc: ldc)
            var mismatches = 0
            var first = ""
            for i in 0..<m {
                for j in 0..<n where c[i * ldc + j] != ref[i * n + j] {
                    if mismatches == 0 { first = "(\(i),\(j)): \(c[i * ldc + j]) != \(ref[i * n + j])" }
                    mismatches += 1
                }
                for j in n..<ldc where c[i * ldc + j] != 12345 {
                    XCTFail("\(backend.name) wrote padding column \(j) of C")
                }
            }
            XCTAssertEqual(mismatches, 0, "\(backend.name) \(label) m=\(m) n=\(n) k=\(k) tA=\(transA) tB=\(transB): first \(first)")
        }
    }

    func testInt8GemmIsExactOnRandomMatricesWithStrides() {
        var rng = SeededGenerator(seed: 3)
        for (m, n, k) in shapes + [(9, 40, 1000)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let extra = (m + n) % 3 + 1
                    let aRows = transA ? k : m, aCols = transA ? m : k
                    let bRows = transB ? n : k, bCols = transB ? k : n
                    let lda = aCols + extra, ldb = bCols + extra
                    let a = paddedMatrix(rows: aRows, cols: aCols, ld: lda, pad: Int8(99)) { _, _ in Int8.random(in: .min ... .max, using: &rng) }
                    let b = paddedMatrix(rows: bRows, cols: bCols, ld: ldb, pad: Int8(-99)) { _, _ in Int8.random(in: .min ... .max, using: &rng) }
                    checkInt8(a, transA, lda, b, transB, ldb, m: m, n: n, k: k, ldc: n + extra, "random")
                }
            }
        }
    }

    /// All-extreme codes over K = 4096: (-128)·(-128)·4096 = 2^26 per entry, and pairs of
    /// products reach ±32768, which a path summing adjacent int8 products in int16 (as
    /// vpmaddubsw does) would saturate.
    func testInt8GemmIsExactWithExtremeValuesAndDeepK() {
        let k = 4096
        for (m, n) in [(1, 1), (5, 37), (33, 17)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let aRows = transA ? k : m, aCols = transA ? m : k
                    let bRows = transB ? n : k, bCols = transB ? k : n
                    let cases: [(String, (Int, Int) -> Int8, (Int, Int) -> Int8)] = [
                        ("all -128", { _, _ in -128 }, { _, _ in -128 }),
                        ("-128 x 127", { _, _ in -128 }, { _, _ in 127 }),
                        ("127 x 127", { _, _ in 127 }, { _, _ in 127 }),
                        ("checkerboard", { r, c in (r + c) % 2 == 0 ? -128 : 127 }, { r, c in (r * 3 + c) % 2 == 0 ? -128 : 127 }),
                    ]
                    for (label, fa, fb) in cases {
                        let a = paddedMatrix(rows: aRows, cols: aCols, ld: aCols, pad: Int8(0), fa)
                        let b = paddedMatrix(rows: bRows, cols: bCols, ld: bCols, pad: Int8(0), fb)
                        checkInt8(a, transA, aCols, b, transB, bCols, m: m, n: n, k: k, ldc: n, label)
                    }
                }
            }
        }
        // Spot-check the reference itself on the plainest case.
        let ones = [Int8](repeating: -128, count: k)
        XCTAssertEqual(int8Reference(ones, false, k, ones, false, 1, m: 1, n: 1, k: k), [67_108_864])
    }

    func testInt8GemmWithZeroDepthGivesZeros() {
        for backend in backends {
            var c: [Int32] = [7, 7, 7, 7]
            let dummy: [Int8] = [1]
            backend.gemmS8S8S32(transA: false, transB: false, m: 2, n: 2, k: 0, a: dummy, lda: 1, b: dummy, ldb: 2,
                                c: &c, ldc: 2)
            XCTAssertEqual(c, [0, 0, 0, 0], backend.name)
        }
    }

    func testBackendSelectionByName() {
        XCTAssertEqual(MatrixBackends.default.name, "onednn")
        XCTAssertEqual(MatrixBackends.names, ["onednn", "simd"])
        XCTAssertEqual(MatrixBackends.named("SIMD")?.name, "simd")
        XCTAssertEqual(MatrixBackends.named("onednn", threads: 1)?.name, "onednn")
        XCTAssertNil(MatrixBackends.named("cublas"))
        XCTAssertEqual((MatrixBackends.named("simd", threads: 3) as? SIMDBackend)?.threads, 3)
        XCTAssertEqual((MatrixBackends.named("onednn", threads: 1) as? OneDNNBackend)?.threads, 1)
    }

    func testOneDNNReportsItsVersionAndThreads() {
        XCTAssertTrue(OneDNNBackend.version.hasPrefix("2."), OneDNNBackend.version)
        XCTAssertFalse(OneDNNBackend.effectiveISA.isEmpty)
        XCTAssertGreaterThanOrEqual(OneDNNBackend.openMPDefaultThreads, 1)
        XCTAssertTrue(OneDNNBackend.canSetThreads, "omp_set_num_threads not found in the loaded libgomp")
    }
}
