import Foundation

/// AWQ's scale search for one linear layer (Lin et al., 2024, §3.2).
///
/// With a_j = mean |x_j| over calibration tokens (the activation magnitude of input channel
/// j) and α on a grid over [0, 1], the candidate scales are s = a^α, normalised as the AWQ
/// reference does (s_j ≥ 1e-4, then divided by √(max s · min s)). For each candidate the
/// weight W [in, out] becomes W' = diag(s)·W, is quantized group-wise (asymmetric, the
/// converter's simquant), and the layer's output error on sampled inputs X
///
///     L(α) = mean over rows and outputs of (X·W − (X·diag(s)⁻¹)·Q(W'))²
///
/// is measured; the α with the smallest error wins (the smallest such α on ties). α = 0
/// gives s = 1, plain group quantization, so the winner is never worse on this objective.
public struct AWQScaleSearch: Sendable {
    /// The weight quantizer (simquant at the file's width).
    public var method: SimQuant
    public var granularity: Granularity
    /// α takes the values i / gridPoints for i = 0 ... gridPoints.
    public var gridPoints: Int

    public init(bits: Int = 4, granularity: Granularity = .group(128), gridPoints: Int = 20) {
        precondition(gridPoints >= 1)
        method = SimQuant(bits: bits); self.granularity = granularity; self.gridPoints = gridPoints
    }

    /// The α grid, ascending, from 0 to 1.
    public var alphas: [Float] { (0...gridPoints).map { Float($0) / Float(gridPoints) } }

    /// Smallest scale before normalisation, so that a channel that never fired (mean 0)
    /// cannot make a zero scale (the AWQ reference clamps at the same value).
    public static let minimumScale: Float = 1e-4

    /// s = max(a^α, 1e-4) / √(max · min): the candidate scales for activation magnitudes `absMean`.
    public static func scales(absMean: [Float], alpha: Float) -> [Float] {
        let raw = absMean.map { Swift.max(Float(pow(Double(Swift.max($0, 0)), Double(alpha))), minimumScale) }
        guard let hi = raw.max(), let lo = raw.min() else { return raw }
        let norm = (hi * lo).squareRoot()
        return raw.map { $0 / norm }
    }

    /// What one candidate gave.
    public struct Result: Sendable {
        public var alpha: Float
        public var scales: [Float]
        /// The objective at `alpha`, and at α = 0 (plain group quantization).
        public var loss: Double
        public var plainLoss: Double
        /// The objective at every α of the grid, in grid order.
        public var losses: [Double]
        public init(alpha: Float, scales: [Float], loss: Double, plainLoss: Double, losses: [Double]) {
            self.alpha = alpha; self.scales = scales; self.loss = loss; self.plainLoss = plainLoss; self.losses = losses
        }
    }

    /// The weight as the layer computes with it after scaling and quantization:
    /// diag(s)⁻¹ · dequant(Q(diag(s) · W)), [in, out] (s nil: plain quantization).
    public func effectiveWeight(_ weight: [Float], shape: [Int], scales: [Float]?) throws -> [Float] {
        let (rows, cols) = (shape[0], shape[1])
        var scaled = weight
        if let scales { for j in 0..<rows { for k in 0..<cols { scaled[j * cols + k] *= scales[j] } } }
        let layout = BlockLayout(shape: shape, axis: 1, granularity: granularity)
        var out = try scaled.withUnsafeBufferPointer { try method.quantize($0, layout: layout) }.dequantized()
        if let scales { for j in 0..<rows { let inv = 1 / scales[j]; for k in 0..<cols { out[j * cols + k] *= inv } } }
        return out
    }

    /// The objective for `scales` (nil: plain quantization): mean squared difference between
    /// X·W (`reference`, [rows, out]) and X·W_eff, on `inputs` [rows, in].
    public func loss(inputs: [Float], rows: Int, weight: [Float], shape: [Int], scales: [Float]?, reference: [Float],
                     backend: any MatrixBackend) throws -> Double {
        let effective = try effectiveWeight(weight, shape: shape, scales: scales)
        let product = Self.multiply(inputs, rows: rows, effective, shape: shape, backend: backend)
        var total = 0.0
        for i in 0..<product.count { let d = Double(product[i] - reference[i]); total += d * d }
        return total / Double(max(1, product.count))
    }

    /// Searches α for a layer with weight `weight` ([in, out]), sampled `inputs` and activation magnitudes `absMean`.
    public func search(inputs: [Float], rows: Int, weight: [Float], shape: [Int], absMean: [Float],
                       backend: any MatrixBackend) throws -> Result {
        precondition(absMean.count == shape[0] && inputs.count == rows * shape[0])
        let reference = Self.multiply(inputs, rows: rows, weight, shape: shape, backend: backend)
        var losses: [Double] = []
        var best = (alpha: Float(0), scales: [Float](repeating: 1, count: shape[0]), loss: Double.infinity)
        for alpha in alphas {
            let s = alpha == 0 ? nil : Self.scales(absMean: absMean, alpha: alpha)
            let l = try loss(inputs: inputs, rows: rows, weight: weight, shape: shape, scales: s, reference: reference, backend: backend)
            losses.append(l)
            if l < best.loss { best = (alpha, s ?? best.scales, l) }
        }
        return Result(alpha: best.alpha, scales: best.scales, loss: best.loss, plainLoss: losses[0], losses: losses)
    }

    /// X [rows, in] · W [in, out].
    static func multiply(_ x: [Float], rows: Int, _ w: [Float], shape: [Int], backend: any MatrixBackend) -> [Float] {
        let (k, n) = (shape[0], shape[1])
        var y = [Float](repeating: 0, count: rows * n)
        guard rows > 0 else { return y }
        x.withUnsafeBufferPointer { a in
            w.withUnsafeBufferPointer { b in
                y.withUnsafeMutableBufferPointer { c in
                    backend.sgemm(transA: false, transB: false, m: rows, n: n, k: k, alpha: 1, a: a.baseAddress!, lda: k,
                                  b: b.baseAddress!, ldb: n, beta: 0, c: c.baseAddress!, ldc: n)
                }
            }
        }
        return y
    }
}
