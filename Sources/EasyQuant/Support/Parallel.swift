import CThreads
import Dispatch
import Foundation

/// Work spread over a fixed number of threads.
///
/// A step runs on the calling thread and the helpers of a `WorkerPool` (threads that poll
/// for work for a moment before they sleep, so that the hundred short steps of decoding one
/// token do not each wait for threads to wake). A step started while the pool is busy (a
/// nested one, or one from another thread) runs on `DispatchQueue.concurrentPerform`
/// instead: `threads` workers that each pull the next index from a shared counter.
public enum Parallel {
    /// The number of cores this process may use.
    public static var defaultThreads: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Calls `body(i)` for every i in 0..<count on up to `threads` threads; returns when all are done.
    public static func forEach(_ count: Int, threads: Int = defaultThreads, _ body: (Int) -> Void) {
        if count == 0 { return }
        let workers = max(1, min(threads, count))
        if workers == 1 {
            for i in 0..<count { body(i) }
            return
        }
        // One pool per thread count the tools asked for (not per step size), so that a
        // small step does not start a second set of polling helpers.
        if WorkerPool.run(count, threads: threads, body) { return }
        let lock = Lock()
        var next = 0
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let i = lock.withLock { () -> Int in
                        defer { next += 1 }
                        return next
                    }
                    if i >= count { return }
                    body(i)
                }
            }
        }
    }

    /// Calls the C function `body(context, i)` for every i in 0..<count on up to `threads`
    /// threads, as `forEach` does, with nothing between the pool and the body per index.
    public static func forEach(_ count: Int, threads: Int = defaultThreads, body: eqt_body,
                               context: UnsafeMutableRawPointer) {
        if count == 0 { return }
        if min(threads, count) > 1, WorkerPool.run(count, threads: threads, body: body, context: context) { return }
        forEach(count, threads: threads) { body(context, $0) }
    }

    /// Like `forEach`, for a body that throws: the first error stops the hand-out of new
    /// indices and is rethrown once the running ones finish.
    public static func forEachThrowing(_ count: Int, threads: Int = defaultThreads, _ body: (Int) throws -> Void) throws {
        let lock = Lock()
        var firstError: Error?
        forEach(count, threads: threads) { i in
            if lock.withLock({ firstError != nil }) { return }
            do { try body(i) } catch {
                lock.withLock { if firstError == nil { firstError = error } }
            }
        }
        if let firstError { throw firstError }
    }

    /// Splits 0..<count into about `threads` contiguous ranges of at least `minimumChunk`
    /// and runs them in parallel.
    public static func forRanges(_ count: Int, threads: Int = defaultThreads, minimumChunk: Int = 1,
                                 _ body: (Range<Int>) -> Void) {
        if count == 0 { return }
        let chunks = max(1, min(threads, count / max(1, minimumChunk)))
        let size = (count + chunks - 1) / chunks
        forEach(chunks, threads: threads) { c in
            let lo = c * size
            let hi = min(count, lo + size)
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// `threads − 1` helper threads that run the steps of `Parallel` with the calling thread
/// (Sources/CThreads: they poll for 200 µs after each step, then sleep). One pool per
/// thread count asked for, made on first use and kept for the process (`eqt_pool_shared`:
/// after the first step, finding it is one atomic load).
enum WorkerPool {
    /// Runs the C function body(context, i) for i in 0..<count on this thread and the helpers
    /// of the pool for `threads`; false, having run nothing, when there is no such pool or it
    /// is running another step.
    static func run(_ count: Int, threads: Int, body: eqt_body, context: UnsafeMutableRawPointer) -> Bool {
        guard let pool = eqt_pool_shared(Int32(clamping: threads)) else { return false }
        return eqt_pool_run(pool, count, body, context) != 0
    }

    /// The closure a step calls, passed to C as its context.
    private final class Step {
        let body: (Int) -> Void
        init(_ body: @escaping (Int) -> Void) { self.body = body }
    }

    /// Runs body(i) for i in 0..<count on this thread and the helpers of the pool for
    /// `threads`; false, having run nothing, when there is no such pool or it is running
    /// another step.
    static func run(_ count: Int, threads: Int, _ body: (Int) -> Void) -> Bool {
        guard let pool = eqt_pool_shared(Int32(clamping: threads)) else { return false }
        return withoutActuallyEscaping(body) { body in
            let step = Step(body)
            return withExtendedLifetime(step) {
                eqt_pool_run(pool, count, { context, index in
                    Unmanaged<Step>.fromOpaque(context!).takeUnretainedValue().body(index)
                }, Unmanaged.passUnretained(step).toOpaque()) != 0
            }
        }
    }
}
