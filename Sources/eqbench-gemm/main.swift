// eqbench-gemm: speed of the matrix backends on GPT-2-small shapes (context 1024).
//
// Prints one tab-separated line per (implementation, shape) — scripts/bench-gemm joins
// them with PyTorch's numbers into docs/BENCHMARKS.md. Each product runs once to warm
// up, then at least `--reps` times and for at least `--min-seconds`; the best time is
// reported, as the least disturbed by other load on a shared 2-core machine.
import EasyQuant
import Foundation

struct Shape {
    let name: String, m: Int, n: Int, k: Int, transB: Bool
}

var reps = 3
var minSeconds = 1.0
var threads = Parallel.defaultThreads
var only: Set<String>? = nil
var onlyShapes: Set<String>? = nil
var vectorOps = false
var cpuTime = false
var args = CommandLine.arguments.dropFirst()
while let arg = args.popFirst() {
    switch arg {
    case "--reps": reps = Int(args.popFirst() ?? "") ?? reps
    case "--min-seconds": minSeconds = Double(args.popFirst() ?? "") ?? minSeconds
    case "--threads": threads = Int(args.popFirst() ?? "") ?? threads
    case "--only": only = Set((args.popFirst() ?? "").split(separator: ",").map(String.init))
    case "--vector-ops": vectorOps = true
    case "--cpu-time": cpuTime = true
    case "--shapes": onlyShapes = Set((args.popFirst() ?? "").split(separator: ",").map(String.init))
    default:
        FileHandle.standardError.write("usage: eqbench-gemm [--reps N] [--min-seconds S] [--threads T] [--only impl,...] [--shapes name,...] [--vector-ops] [--cpu-time]\n".data(using: .utf8)!)
        exit(2)
    }
}

let m = 1024
let shapes = [
    Shape(name: "attn.c_attn", m: m, n: 2304, k: 768, transB: false),
    Shape(name: "attn.c_proj", m: m, n: 768, k: 768, transB: false),
    Shape(name: "mlp.c_fc", m: m, n: 3072, k: 768, transB: false),
    Shape(name: "mlp.c_proj", m: m, n: 768, k: 3072, transB: false),
    Shape(name: "logits", m: m, n: 50257, k: 768, transB: true),
]

/// Wall-clock seconds of `body`, or with `--cpu-time` the process's CPU seconds: with
/// `--threads 1` on a machine shared with other jobs, that is the time the product
/// itself took, which makes tuning comparisons less noisy (the report uses wall time).
func seconds(_ body: () -> Void) -> Double {
    func now() -> Double {
        if cpuTime {
            var ts = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
        return Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }
    let t0 = now()
    body()
    return now() - t0
}

func best(_ body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    var total = 0.0
    while times.count < reps || total < minSeconds {
        let t = seconds(body)
        times.append(t)
        total += t
    }
    return times.min()!
}

// SeededGenerator: the system generator makes a syscall per number, far too slow for 38M values.
var rng = SeededGenerator(seed: 42)

/// Times of the GPT-2 vector operations at context 1024, and of GELU through Foundation's
/// scalar tanhf for comparison, one line each: name, elements, best seconds, Melem/s.
func benchVectorOps() {
    func line(_ name: String, _ elements: Int, _ t: Double) {
        print("\(name)\t\(elements)\t\(String(format: "%.5f", t))\t\(String(format: "%.0f", Double(elements) / t / 1e6))")
        fflush(stdout)
    }
    print("# op\telements\tseconds\tMelem/s")
    let n = 1024 * 3072
    let x = (0..<n).map { _ in Float.random(in: -6...6, using: &rng) }
    var y = [Float](repeating: 0, count: n)
    line("gelu (SIMD exp form, \(threads) threads)", n, best { VectorOps.gelu(x, count: n, out: &y, threads: threads) })
    line("gelu (SIMD exp form, 1 thread)", n, best { VectorOps.gelu(x, count: n, out: &y, threads: 1) })
    line("gelu (Foundation tanhf, 1 thread)", n, best {
        y.withUnsafeMutableBufferPointer { out in
            for i in 0..<n {
                let v = x[i]
                out[i] = 0.5 * v * (1 + tanhf(0.797_884_56 * (v + 0.044715 * v * v * v)))
            }
        }
    })
    let gamma = [Float](repeating: 1.1, count: 768), beta = [Float](repeating: 0.1, count: 768)
    line("layerNorm 1024×768", 1024 * 768, best {
        VectorOps.layerNorm(x, rows: 1024, cols: 768, gamma: gamma, beta: beta, eps: 1e-5, out: &y, threads: threads)
    })
    var scores = Array(x[0..<(1024 * 1024)])
    line("softmax 1024 causal rows of 1024 (one head)", 1024 * 1024 / 2, best {
        scores.withUnsafeMutableBufferPointer { p in
            Parallel.forEach(1024, threads: threads) { i in
                VectorOps.softmaxInPlace(p.baseAddress! + i * 1024, count: 1024, length: i + 1, scale: 0.125)
            }
        }
    })
    let logits = (0..<(64 * 50257)).map { _ in Float.random(in: -20...20, using: &rng) }
    var lse = 0 as Float
    line("logSumExp 64 rows of 50257 (1 thread)", 64 * 50257, best {
        logits.withUnsafeBufferPointer { p in
            for r in 0..<64 { lse += VectorOps.logSumExp(p.baseAddress! + r * 50257, count: 50257) }
        }
    })
    var codes = [Int8](repeating: 0, count: n), scales = [Float](repeating: 0, count: 1024), sums = [Int32](repeating: 0, count: 1024)
    line("quantizeRowsInt8 1024×3072 (+row sums)", n, best {
        VectorOps.quantizeRowsInt8(x, rows: 1024, cols: 3072, out: &codes, scales: &scales, rowSums: &sums, threads: threads)
    })
}

if vectorOps {
    benchVectorOps()
    exit(0)
}
print("# oneDNN \(OneDNNBackend.version), ISA \(OneDNNBackend.effectiveISA), OpenMP default threads \(OneDNNBackend.openMPDefaultThreads)")
print("# SIMD backend: \(SIMDKernelInfo.description); threads \(threads)")
print("# impl\tshape\tM\tN\tK\ttransB\tunit\trate\tseconds\tcheck")

let onednn = OneDNNBackend(threads: threads, int8Path: .s8s8)
let onednnU8 = OneDNNBackend(threads: threads, int8Path: .u8s8)
let simd = SIMDBackend(threads: threads)

for s in shapes where onlyShapes.map({ $0.contains(s.name) }) ?? true {
    let a = (0..<(s.m * s.k)).map { _ in Float.random(in: -1...1, using: &rng) }
    let b = (0..<(s.k * s.n)).map { _ in Float.random(in: -1...1, using: &rng) }
    let a8 = (0..<(s.m * s.k)).map { _ in Int8.random(in: .min ... .max, using: &rng) }
    let b8 = (0..<(s.k * s.n)).map { _ in Int8.random(in: .min ... .max, using: &rng) }
    let ldb = s.transB ? s.k : s.n
    var reference = [Float](repeating: 0, count: s.m * s.n)
    var reference32 = [Int32](repeating: 0, count: s.m * s.n)
    let ops = 2.0 * Double(s.m) * Double(s.n) * Double(s.k)

    func report(_ impl: String, unit: String, _ t: Double, _ check: String) {
        let rate = ops / t / 1e9
        print("\(impl)\t\(s.name)\t\(s.m)\t\(s.n)\t\(s.k)\t\(s.transB ? "T" : "N")\t\(unit)\t\(String(format: "%.1f", rate))\t\(String(format: "%.4f", t))\t\(check)")
        fflush(stdout)
    }
    func want(_ impl: String) -> Bool { only.map { $0.contains(impl) } ?? true }

    for (impl, backend) in [("onednn-f32", onednn as any MatrixBackend), ("simd-f32", simd)] where want(impl) || impl == "onednn-f32" {
        var c = [Float](repeating: 0, count: s.m * s.n)
        let t = best {
            backend.sgemm(transA: false, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: 1, a: a, lda: s.k,
                          b: b, ldb: ldb, beta: 0, c: &c, ldc: s.n)
        }
        var check = "reference"
        if impl == "onednn-f32" {
            reference = c
        } else {
            var worst: Float = 0
            for i in 0..<c.count { worst = max(worst, abs(c[i] - reference[i]) / max(1, abs(reference[i]))) }
            check = String(format: "max rel diff %.1e", worst)
        }
        if want(impl) { report(impl, unit: "GFLOP/s", t, check) }
    }
    for (impl, backend) in [("onednn-s8s8s32", onednn as any MatrixBackend), ("onednn-u8s8s32", onednnU8),
                            ("simd-s8s8s32", simd)] where want(impl) || impl == "onednn-s8s8s32" {
        var c = [Int32](repeating: 0, count: s.m * s.n)
        let t = best {
            backend.gemmS8S8S32(transA: false, transB: s.transB, m: s.m, n: s.n, k: s.k, a: a8, lda: s.k,
                                b: b8, ldb: ldb, c: &c, ldc: s.n)
        }
        var check = "reference"
        if impl == "onednn-s8s8s32" {
            reference32 = c
        } else {
            check = c == reference32 ? "exact" : "MISMATCH"
        }
        if want(impl) { report(impl, unit: "GOP/s", t, check) }
    }
}
