/// A provider of the two matrix products the quantized GPT-2 forward pass needs.
///
/// All matrices are row-major, as in the rest of EasyQuant (and as oneDNN's BLAS-like
/// calls take them): element (i, j) of a matrix with leading dimension `ld` is at
/// `p[i * ld + j]`. With `transA`, the stored matrix is K×M and `op(A)` is its transpose,
/// so A's element (i, p) is at `a[p * lda + i]`; `transB` likewise for B (stored N×K).
/// Leading dimensions may exceed the minimal ones, which lets callers multiply
/// sub-blocks of larger buffers (for example one attention head's columns of QKV).
///
/// Implementations must be safe to call from several threads at once with disjoint
/// outputs; each call may itself use several threads.
public protocol MatrixBackend: Sendable {
    /// The short name used to choose this backend (`--backend NAME`).
    var name: String { get }

    /// `C = alpha·op(A)·op(B) + beta·C` in 32-bit float, with op(A) M×K, op(B) K×N, C M×N.
    ///
    /// As in BLAS, when `beta` is 0 the old contents of C are not read (they may be NaN).
    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int)

    /// `C = op(A)·op(B)` with signed 8-bit inputs and exact 32-bit integer results
    /// (C is overwritten). Every code -128...127 is allowed in both operands; no
    /// intermediate saturation is permitted, so K may be as large as 2^17 before even
    /// the int32 result could overflow.
    func gemmS8S8S32(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     a: UnsafePointer<Int8>, lda: Int, b: UnsafePointer<Int8>, ldb: Int,
                     c: UnsafeMutablePointer<Int32>, ldc: Int)
}

/// Checks the shape arguments shared by every backend, so that a caller's mistake stops
/// with a message instead of reading out of bounds.
@inline(__always)
func precheckGemmShape(_ call: StaticString, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                       lda: Int, ldb: Int, ldc: Int) {
    precondition(m >= 0 && n >= 0 && k >= 0, "\(call): negative dimension m=\(m) n=\(n) k=\(k)")
    precondition(lda >= max(1, transA ? m : k), "\(call): lda=\(lda) too small")
    precondition(ldb >= max(1, transB ? k : n), "\(call): ldb=\(ldb) too small")
    precondition(ldc >= max(1, n), "\(call): ldc=\(ldc) too small")
}

/// `C = beta·C` for an m×n block, not reading C when beta is 0 (the BLAS rule); what
/// sgemm reduces to when there is nothing to add (k = 0 or alpha = 0). oneDNN 2.6 leaves
/// C untouched for k = 0, so both backends handle this case themselves.
func scaleMatrix(_ c: UnsafeMutablePointer<Float>, m: Int, n: Int, ldc: Int, beta: Float) {
    for i in 0..<m {
        let row = c + i * ldc
        if beta == 0 {
            row.update(repeating: 0, count: n)
        } else {
            for j in 0..<n { row[j] *= beta }
        }
    }
}

/// The available matrix backends and the choice among them.
public enum MatrixBackends {
    /// Names accepted by `named(_:)`, default first.
    public static let names: [String] = {
        #if os(Linux) && arch(x86_64)
        return ["onednn", "simd"]
        #else
        return ["simd", "onednn"]
        #endif
    }()

    /// The backend to use when the user did not ask for one: oneDNN on x86-64 Linux,
    /// where it has JIT kernels for the machine's vector units; the portable SIMD
    /// backend elsewhere.
    public static var `default`: any MatrixBackend {
        named(names[0])!
    }

    /// The backend called `name` (case-insensitive: "onednn" or "simd"), using
    /// `threads` threads (nil: every core this process may use), or nil for an unknown name.
    public static func named(_ name: String, threads: Int? = nil) -> (any MatrixBackend)? {
        switch name.lowercased() {
        case "onednn", "dnnl": return OneDNNBackend(threads: threads)
        case "simd": return SIMDBackend(threads: threads ?? Parallel.defaultThreads)
        default: return nil
        }
    }
}
