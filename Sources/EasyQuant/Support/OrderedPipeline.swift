import Dispatch

/// Runs `produce` for items 0..<count on several threads and hands the results to
/// `consume` one at a time, in item order, on the calling thread.
///
/// At most `window` results exist at once (being produced or waiting), which bounds
/// memory when items are large tensors, while the output stays in a fixed order whatever
/// the thread timing. Workers take a window slot *before* taking an item number, so the
/// item the consumer waits for always holds a slot and the pipeline cannot deadlock.
public enum OrderedPipeline {
    public static func run<T>(count: Int, threads: Int, window: Int,
                              produce: @escaping @Sendable (Int) throws -> T,
                              consume: (Int, T) throws -> Void) throws {
        if count == 0 { return }
        let workers = max(1, min(threads, count))
        // Created at 0 and raised to the window: libdispatch traps when a semaphore is freed
        // below its initial value, which an early failure (slots still taken) would cause.
        let slots = DispatchSemaphore(value: 0)
        for _ in 0..<max(workers, window) { slots.signal() }
        let lock = Lock()
        let state = PipelineState<T>(count: count)
        let group = DispatchGroup()

        DispatchQueue.global().async(group: group) {
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    slots.wait()
                    let i: Int? = lock.withLock {
                        if state.cancelled || state.next >= count { return nil }
                        defer { state.next += 1 }
                        return state.next
                    }
                    guard let i else { slots.signal(); return }
                    let result = Result { try produce(i) }
                    lock.withLock { state.results[i] = result }
                    state.ready[i].signal()
                }
            }
        }

        var failure: Error?
        for i in 0..<count {
            state.ready[i].wait()
            let result = lock.withLock { () -> Result<T, Error>? in
                defer { state.results[i] = nil }
                return state.results[i]
            }
            do {
                try consume(i, try result!.get())
            } catch {
                failure = error
                break
            }
            slots.signal()
        }
        if failure != nil {
            lock.withLock { state.cancelled = true }
            for _ in 0..<workers { slots.signal() }
        }
        group.wait()
        if let failure { throw failure }
    }
}

private final class PipelineState<T>: @unchecked Sendable {
    var next = 0
    var cancelled = false
    var results: [Result<T, Error>?]
    let ready: [DispatchSemaphore]
    init(count: Int) {
        results = Array(repeating: nil, count: count)
        ready = (0..<count).map { _ in DispatchSemaphore(value: 0) }
    }
}
