/// How far reconstructed (dequantized) values are from the originals: mean squared error,
/// largest absolute error, signal-to-quantization-noise ratio and cosine similarity.
///
/// Only sums are kept (in Double, errors taken in Double so tiny errors are not rounded
/// away), so metrics of pieces merge exactly into the metrics of the whole.
public struct ErrorMetrics: Equatable, Sendable {
    /// Pairs compared.
    public private(set) var count = 0
    /// Σ x² of the originals.
    public private(set) var signalEnergy = 0.0
    /// Σ x̂² of the reconstructions.
    public private(set) var reconstructionEnergy = 0.0
    /// Σ (x − x̂)².
    public private(set) var errorEnergy = 0.0
    /// Σ x·x̂.
    public private(set) var dotProduct = 0.0
    /// max |x − x̂|.
    public private(set) var maxAbsError = 0.0

    /// No pairs yet.
    public init() {}

    /// The metrics of `reconstructed` against `original` (same length).
    public init(original: [Float], reconstructed: [Float]) {
        original.withUnsafeBufferPointer { o in
            reconstructed.withUnsafeBufferPointer { r in add(original: o, reconstructed: r) }
        }
    }

    /// Adds pairs (`original[i]`, `reconstructed[i]`); the buffers must be equally long.
    public mutating func add(original: UnsafeBufferPointer<Float>, reconstructed: UnsafeBufferPointer<Float>) {
        precondition(original.count == reconstructed.count, "compared buffers differ in length")
        var sx = 0.0, sr = 0.0, se = 0.0, sd = 0.0, mx = maxAbsError
        for i in 0..<original.count {
            let x = Double(original[i]), r = Double(reconstructed[i])
            let e = x - r
            sx += x * x
            sr += r * r
            se += e * e
            sd += x * r
            // `!(a <= b)` also takes NaN, so a NaN error shows instead of vanishing.
            if !(abs(e) <= mx) { mx = abs(e) }
        }
        count += original.count
        signalEnergy += sx; reconstructionEnergy += sr; errorEnergy += se; dotProduct += sd
        maxAbsError = mx
    }

    /// Combines the metrics of two disjoint sets of pairs.
    public mutating func merge(_ other: ErrorMetrics) {
        count += other.count
        signalEnergy += other.signalEnergy
        reconstructionEnergy += other.reconstructionEnergy
        errorEnergy += other.errorEnergy
        dotProduct += other.dotProduct
        if !(other.maxAbsError <= maxAbsError) { maxAbsError = other.maxAbsError }
    }

    /// Mean squared error (0 when empty).
    public var mse: Double { count == 0 ? 0 : errorEnergy / Double(count) }

    /// 10·log10(Σx² / Σ(x − x̂)²) in dB: +infinity for an exact reconstruction, NaN when the
    /// original is all zeros and the reconstruction is not.
    public var sqnrDB: Double {
        if errorEnergy == 0 { return .infinity }
        if signalEnergy == 0 { return .nan }
        return 10 * log10(signalEnergy / errorEnergy)
    }

    /// x·x̂ / (|x|·|x̂|): 1 when both are zero vectors, 0 when only one is.
    public var cosine: Double {
        if signalEnergy == 0 || reconstructionEnergy == 0 { return signalEnergy == reconstructionEnergy ? 1 : 0 }
        // One square root of the product: exact for equal vectors, where two roots need not be.
        return Swift.max(-1, Swift.min(1, dotProduct / (signalEnergy * reconstructionEnergy).squareRoot()))
    }
}

/// Error metrics over many tensors, each tensor weighted by its element count.
public struct ErrorSummary: Equatable, Sendable {
    /// Tensors summarised.
    public private(set) var tensors = 0
    /// All pairs pooled: its `mse` is the element-weighted mean of the tensors' MSEs, its
    /// `sqnrDB` the ratio of total signal to total noise, its `maxAbsError` the largest of all.
    public private(set) var pooled = ErrorMetrics()
    /// Σ count·cosine over tensors (for the weighted mean).
    private var weightedCosineSum = 0.0

    /// No tensors yet.
    public init() {}

    /// Adds one tensor's metrics.
    public mutating func add(_ tensor: ErrorMetrics) {
        tensors += 1
        pooled.merge(tensor)
        weightedCosineSum += Double(tensor.count) * tensor.cosine
    }

    /// Element-weighted mean of the tensors' cosine similarities (1 when empty).
    public var cosine: Double { pooled.count == 0 ? 1 : weightedCosineSum / Double(pooled.count) }
}

import Foundation
