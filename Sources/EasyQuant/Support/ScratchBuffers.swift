/// Scratch memory that the parallel pieces of a forward pass borrow and give back.
///
/// Attention's score blocks (up to 1.5 MiB) and the int8 products' int32 tiles are needed
/// thousands of times per window. Allocated afresh each time, glibc hands large blocks back
/// to the kernel on free, so every piece paid for new zeroed pages (page faults were 5% of an
/// int8 SmolLM2 run). Here a few buffers are kept and lent out again.
final class ScratchBuffers: @unchecked Sendable {
    /// The pool the model code shares.
    static let shared = ScratchBuffers(kept: 16)

    private let lock = Lock()
    private var free: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []
    /// Buffers kept for reuse at most; more are freed when given back.
    let kept: Int

    init(kept: Int) { self.kept = kept }

    deinit { for b in free { b.pointer.deallocate() } }

    /// Calls `body` with at least `bytes` bytes (64-byte aligned, contents unspecified), lent
    /// for the duration of the call.
    func withBuffer<R>(bytes: Int, _ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
        precondition(bytes >= 0, "ScratchBuffers: negative size")
        let buffer = take(bytes: max(64, bytes))
        defer { giveBack(buffer) }
        return try body(buffer.pointer)
    }

    /// `withBuffer` typed as `count` values of T.
    func withBuffer<T, R>(of type: T.Type, count: Int, _ body: (UnsafeMutablePointer<T>) throws -> R) rethrows -> R {
        let (bytes, overflow) = max(0, count).multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        precondition(!overflow, "ScratchBuffers: \(count) values overflow")
        return try withBuffer(bytes: bytes) { raw in
            try body(raw.bindMemory(to: T.self, capacity: max(1, count)))
        }
    }

    private func take(bytes: Int) -> (pointer: UnsafeMutableRawPointer, bytes: Int) {
        let reused: (pointer: UnsafeMutableRawPointer, bytes: Int)? = lock.withLock {
            // The smallest buffer that fits, so large ones stay for large requests.
            var best: Int?
            for (i, b) in free.enumerated() where b.bytes >= bytes && (best == nil || b.bytes < free[best!].bytes) { best = i }
            return best.map { free.remove(at: $0) }
        }
        return reused ?? (UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64), bytes)
    }

    private func giveBack(_ buffer: (pointer: UnsafeMutableRawPointer, bytes: Int)) {
        let dropped: UnsafeMutableRawPointer? = lock.withLock {
            free.append(buffer)
            guard free.count > kept else { return nil }
            // Drop the smallest: it is the cheapest to allocate again.
            let i = free.indices.min { free[$0].bytes < free[$1].bytes }!
            return free.remove(at: i).pointer
        }
        dropped?.deallocate()
    }
}
