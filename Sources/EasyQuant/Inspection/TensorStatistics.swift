/// Summary statistics of a tensor's values: range, mean, standard deviation, and how many
/// are exactly zero.
///
/// Built in one call per buffer and mergeable, so a tensor can be summarised piece by piece
/// (or on several threads) without holding more than a piece. Sums are kept in Double: a
/// Float accumulator loses the mean of a 38-million-element embedding to rounding.
public struct TensorStatistics: Equatable, Sendable {
    /// Finite values seen.
    public private(set) var count = 0
    /// NaN and infinite values seen; they are left out of every other statistic.
    public private(set) var nonFinite = 0
    /// Smallest finite value (+infinity when there is none).
    public private(set) var minimum = Float.infinity
    /// Largest finite value (-infinity when there is none).
    public private(set) var maximum = -Float.infinity
    /// Mean of the finite values (0 when there is none).
    public private(set) var mean = 0.0
    /// Values equal to zero (+0 or -0).
    public private(set) var zeros = 0
    /// Sum of squared deviations from `mean` (merged with Chan et al.'s pairwise update).
    private var squaredDeviations = 0.0

    /// No values yet.
    public init() {}

    /// The statistics of `values`.
    public init(_ values: [Float]) {
        values.withUnsafeBufferPointer { add($0) }
    }

    /// Adds a buffer of values.
    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        // Two passes over the buffer (sum, then squared deviations from the buffer's own mean)
        // keep the variance exact where the one-pass Σx² - n·mean² formula cancels badly.
        var part = TensorStatistics()
        var sum = 0.0
        for x in values {
            guard x.isFinite else { part.nonFinite += 1; continue }
            part.count += 1
            sum += Double(x)
            if x < part.minimum { part.minimum = x }
            if x > part.maximum { part.maximum = x }
            if x == 0 { part.zeros += 1 }
        }
        if part.count > 0 {
            let m = sum / Double(part.count)
            var ss = 0.0
            for x in values where x.isFinite {
                let d = Double(x) - m
                ss += d * d
            }
            part.mean = m
            part.squaredDeviations = ss
        }
        merge(part)
    }

    /// Combines the statistics of two disjoint sets of values.
    public mutating func merge(_ other: TensorStatistics) {
        nonFinite += other.nonFinite
        guard other.count > 0 else { return }
        guard count > 0 else {
            let nf = nonFinite
            self = other
            nonFinite = nf
            return
        }
        let n = Double(count), m = Double(other.count)
        let delta = other.mean - mean
        mean += delta * m / (n + m)
        squaredDeviations += other.squaredDeviations + delta * delta * n * m / (n + m)
        count += other.count
        zeros += other.zeros
        minimum = Swift.min(minimum, other.minimum)
        maximum = Swift.max(maximum, other.maximum)
    }

    /// Population variance (divided by the count, as numpy's default), 0 when empty.
    public var variance: Double { count == 0 ? 0 : squaredDeviations / Double(count) }
    /// Population standard deviation.
    public var standardDeviation: Double { variance.squareRoot() }
    /// Largest magnitude, 0 when empty.
    public var absMax: Float { count == 0 ? 0 : Swift.max(-minimum, maximum) }
    /// Share of the finite values that are exactly zero, 0 when empty.
    public var zeroShare: Double { count == 0 ? 0 : Double(zeros) / Double(count) }
}
