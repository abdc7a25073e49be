import Foundation

/// The number type a `TrainableBlock` computes in.
///
/// Training runs in `Float`, with the matrix products on a `MatrixBackend`. `Double` exists
/// so that the gradient checks can compare the analytic gradients of the very same code
/// against finite differences without f32 rounding noise drowning the comparison; its
/// products are plain loops (it only ever runs on tiny blocks).
public protocol TrainingScalar: BinaryFloatingPoint, Sendable {
    static func tanh(_ x: Self) -> Self
    static func exp(_ x: Self) -> Self
    /// `C = alpha·op(A)·op(B) + beta·C`, row-major, with the argument conventions of
    /// `MatrixBackend.sgemm` (when `beta` is 0, C is not read).
    static func gemm(_ backend: any MatrixBackend, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Self,
                     a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
}

extension Float: TrainingScalar {
    @inline(__always) public static func tanh(_ x: Float) -> Float { Foundation.tanh(x) }
    @inline(__always) public static func exp(_ x: Float) -> Float { Foundation.exp(x) }
    @inline(__always)
    public static func gemm(_ backend: any MatrixBackend, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        backend.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                      b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }
}

extension Double: TrainingScalar {
    @inline(__always) public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
    @inline(__always) public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    public static func gemm(_ backend: any MatrixBackend, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    s += (transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j])
                }
                c[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j])
            }
        }
    }
}
