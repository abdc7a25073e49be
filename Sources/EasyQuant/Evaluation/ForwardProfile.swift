import CThreads
import Dispatch

/// Where a forward pass spends its time, by phase, for `eqppl --profile` and the benchmark.
public final class ForwardProfile: @unchecked Sendable {
    public enum Phase: String, CaseIterable, Sendable {
        case blockProducts = "matrix products in blocks"
        case attention = "attention (scores, softmax, values)"
        case outputLayer = "output layer (logits)"
        case logSoftmax = "log-softmax and NLL"
        case other = "norms, GELU, residuals, embeddings"
    }

    private var totals: [Phase: Double] = [:]
    private let lock = Lock()

    public init() {}

    /// Runs `body`, adding its wall time to `phase`.
    @inline(__always)
    public func measure<T>(_ phase: Phase, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            lock.withLock { totals[phase, default: 0] += elapsed }
        }
        return try body()
    }

    /// Seconds per phase.
    public var seconds: [(phase: Phase, seconds: Double)] {
        lock.withLock { Phase.allCases.map { ($0, totals[$0] ?? 0) } }
    }

    /// What handing parallel steps to the worker threads cost (Sources/CThreads), counted
    /// between `startCountingHandOffs` and `stopCountingHandOffs`, over all pools.
    public struct HandOffs: Sendable {
        /// Parallel steps run.
        public var steps: Int
        /// The calling thread's time from the end of one step to the start of the next: its
        /// own work between steps (norms, quantizing the next input, ...), which the workers
        /// wait through.
        public var secondsBetweenSteps: Double
        /// The workers' time taking and running parts of steps, and waiting for the next step.
        public var workerBusySeconds: Double
        public var workerWaitSeconds: Double
        /// The share of the workers' time spent waiting.
        public var workerWaitShare: Double {
            workerBusySeconds + workerWaitSeconds > 0 ? workerWaitSeconds / (workerBusySeconds + workerWaitSeconds) : 0
        }
    }

    private var counted: HandOffs?

    /// The hand-offs counted, once `stopCountingHandOffs` has been called.
    public var handOffs: HandOffs? { lock.withLock { counted } }

    /// Starts counting the pools' hand-offs from zero (process-wide: one profile at a time).
    public func startCountingHandOffs() { eqt_stats_count(1) }

    /// Stops counting and keeps the counts in `handOffs`.
    public func stopCountingHandOffs() {
        let s = eqt_stats_read()
        eqt_stats_count(0)
        let counts = HandOffs(steps: Int(s.steps), secondsBetweenSteps: Double(s.between_ns) / 1e9,
                              workerBusySeconds: Double(s.worker_busy_ns) / 1e9, workerWaitSeconds: Double(s.worker_wait_ns) / 1e9)
        lock.withLock { counted = counts }
    }
}

extension Optional where Wrapped == ForwardProfile {
    /// Measures when a profile is attached; just runs `body` otherwise.
    @inline(__always)
    func measure<T>(_ phase: ForwardProfile.Phase, _ body: () throws -> T) rethrows -> T {
        switch self {
        case .some(let p): return try p.measure(phase, body)
        case .none: return try body()
        }
    }
}
