import CDNNL
#if canImport(Glibc)
import Glibc
#endif

/// Matrix products through oneDNN's BLAS-like calls (`dnnl_sgemm`, `dnnl_gemm_s8s8s32`),
/// which JIT-compile kernels for the vector units found at run time (AVX-512 and VNNI
/// on this project's machines, plain AVX2 or SSE4.1 elsewhere).
///
/// The Debian build of oneDNN 2.6 is threaded with OpenMP (libgomp); it has no
/// `dnnl_set_max_threads`, so the thread count is the OpenMP one. Each call sets it with
/// `omp_set_num_threads` on the calling thread right before calling oneDNN — OpenMP
/// keeps that setting per calling thread, so setting it once elsewhere would not do —
/// to `threads`, or with nil to OpenMP's own default as it was at first use
/// (`OMP_NUM_THREADS`, else every core), so one backend's setting never leaks into another's.
/// Calls from several threads at once are safe but each starts its own OpenMP team, so
/// the cores are oversubscribed; make large products from one thread.
public struct OneDNNBackend: MatrixBackend {
    /// How `gemmS8S8S32` reaches oneDNN.
    public enum Int8Path: String, Sendable, CaseIterable {
        /// `dnnl_gemm_s8s8s32` directly.
        case s8s8
        /// Flip A's sign bit (A + 128 as unsigned bytes) into a scratch copy and call
        /// `dnnl_gemm_u8s8s32` with A's zero point 128; exact, costs one pass over A.
        case u8s8
    }

    /// "onednn".
    public var name: String { "onednn" }
    /// Threads for each call, or nil for OpenMP's default.
    public let threads: Int?
    /// How the int8 product is computed (both are exact; see the benchmark for speed).
    public let int8Path: Int8Path

    /// A backend that runs each call on `threads` OpenMP threads (nil: OpenMP's default,
    /// i.e. `OMP_NUM_THREADS` or every core).
    public init(threads: Int? = nil, int8Path: Int8Path = .s8s8) {
        precondition(threads.map { $0 > 0 } ?? true, "OneDNNBackend: threads must be positive")
        self.threads = threads
        self.int8Path = int8Path
    }

    /// The instruction set oneDNN dispatches to on this machine, e.g. "avx512_core_bf16".
    public static var effectiveISA: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_sse41: return "sse41"
        case dnnl_cpu_isa_avx: return "avx"
        case dnnl_cpu_isa_avx2: return "avx2"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case let other: return "isa(0x\(String(other.rawValue, radix: 16)))"
        }
    }

    /// The oneDNN version, e.g. "2.6.3".
    public static var version: String {
        guard let v = dnnl_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }

    /// The number of threads a call with `threads: nil` uses: OpenMP's default
    /// (`OMP_NUM_THREADS`, else every core), or 1 if the OpenMP runtime was not found.
    public static var openMPDefaultThreads: Int { OpenMP.defaultThreads }

    /// Whether the OpenMP runtime's `omp_set_num_threads` was found, i.e. whether
    /// `threads` takes effect (it is always found with Debian's libdnnl, built on libgomp).
    public static var canSetThreads: Bool { OpenMP.setNumThreads != nil }

    /// `C = alpha·op(A)·op(B) + beta·C` in float; see `MatrixBackend.sgemm`.
    public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        precheckGemmShape("sgemm", transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        if m == 0 || n == 0 { return }
        if k == 0 {
            scaleMatrix(c, m: m, n: n, ldc: ldc, beta: beta)
            return
        }
        applyThreads()
        let status = dnnl_sgemm(flag(transA), flag(transB), dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k),
                                alpha, a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc))
        check(status, "dnnl_sgemm", m, n, k)
    }

    /// Exact `C = op(A)·op(B)` from int8 to int32; see `MatrixBackend.gemmS8S8S32`.
    public func gemmS8S8S32(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                            a: UnsafePointer<Int8>, lda: Int, b: UnsafePointer<Int8>, ldb: Int,
                            c: UnsafeMutablePointer<Int32>, ldc: Int) {
        precheckGemmShape("gemmS8S8S32", transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
            return
        }
        applyThreads()
        var zero: Int32 = 0
        switch int8Path {
        case .s8s8:
            let status = dnnl_gemm_s8s8s32(flag(transA), flag(transB), CChar(UInt8(ascii: "F")),
                                           dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), 1, a, dnnl_dim_t(lda), 0,
                                           b, dnnl_dim_t(ldb), 0, 0, c, dnnl_dim_t(ldc), &zero)
            check(status, "dnnl_gemm_s8s8s32", m, n, k)
        case .u8s8:
            // A stored as rows × cols with leading dimension lda; copy it compactly with the
            // sign bit flipped, which maps -128...127 onto 0...255 (x + 128).
            let rows = transA ? k : m, cols = transA ? m : k
            let shifted = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, rows * cols))
            defer { shifted.deallocate() }
            Parallel.forRanges(rows, threads: threads ?? Parallel.defaultThreads, minimumChunk: 64) { range in
                for r in range {
                    let src = UnsafeRawPointer(a + r * lda).assumingMemoryBound(to: UInt8.self)
                    let dst = shifted + r * cols
                    for j in 0..<cols { dst[j] = src[j] ^ 0x80 }
                }
            }
            let status = dnnl_gemm_u8s8s32(flag(transA), flag(transB), CChar(UInt8(ascii: "F")),
                                           dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), 1, shifted,
                                           dnnl_dim_t(max(1, cols)), 128, b, dnnl_dim_t(ldb), 0, 0, c,
                                           dnnl_dim_t(ldc), &zero)
            check(status, "dnnl_gemm_u8s8s32", m, n, k)
        }
    }

    private func flag(_ trans: Bool) -> CChar { CChar(UInt8(ascii: trans ? "T" : "N")) }

    private func applyThreads() {
        let count = threads ?? OpenMP.defaultThreads
        if let set = OpenMP.setNumThreads { set(Int32(count)) }
    }

    private func check(_ status: dnnl_status_t, _ call: String, _ m: Int, _ n: Int, _ k: Int) {
        if status != dnnl_success {
            fatalError("\(call) failed with oneDNN status \(status.rawValue) (m=\(m) n=\(n) k=\(k))")
        }
    }
}

/// The OpenMP runtime functions oneDNN's threads obey, looked up in the already loaded
/// libgomp (pulled in by libdnnl) so that EasyQuant need not link it by name.
private enum OpenMP {
    typealias SetNumThreads = @convention(c) (Int32) -> Void
    typealias GetMaxThreads = @convention(c) () -> Int32

    static let setNumThreads: SetNumThreads? = symbol("omp_set_num_threads")
    static let getMaxThreads: GetMaxThreads? = symbol("omp_get_max_threads")
    /// Read once, before this file ever sets a count (`applyThreads` reads it first).
    static let defaultThreads: Int = getMaxThreads.map { max(1, Int($0())) } ?? 1

    private static func symbol<F>(_ name: String) -> F? {
        #if canImport(Glibc)
        // Make sure oneDNN (and with it libgomp) is loaded before looking: a first
        // harmless call does it, since the library is linked, not dlopened.
        _ = dnnl_get_effective_cpu_isa()
        guard let p = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(p, to: F.self)
        #else
        return nil
        #endif
    }
}
