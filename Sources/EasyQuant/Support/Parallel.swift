import Dispatch
import Foundation

/// Work spread over a fixed number of threads.
///
/// `DispatchQueue.concurrentPerform` always uses every core; tools take `--threads`, so
/// this runs `threads` workers that each pull the next index from a shared counter.
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
