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
