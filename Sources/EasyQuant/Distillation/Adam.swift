/// Adam (Kingma & Ba, 2015) over one flat parameter vector, with bias correction, written
/// the way PyTorch's `torch.optim.Adam` computes it so the two can be compared step by step:
///
///     m ← m + (1 − β1)(g − m)          v ← β2·v + (1 − β2)·g²
///     p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
public struct Adam: Sendable {
    public let learningRate: Double
    public let beta1: Double
    public let beta2: Double
    public let epsilon: Double
    /// Updates done so far (t of the bias correction).
    public private(set) var step = 0
    private var m: [Float]
    private var v: [Float]

    public init(parameterCount: Int, learningRate: Double, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        m = [Float](repeating: 0, count: parameterCount)
        v = [Float](repeating: 0, count: parameterCount)
    }

    /// One update of `parameters` with `gradient` (same length).
    public mutating func update(_ parameters: inout [Float], gradient: [Float]) {
        precondition(parameters.count == m.count && gradient.count == m.count, "Adam: parameter count changed")
        step += 1
        // The bias corrections in Double, as PyTorch computes them in Python floats.
        let stepSize = Float(learningRate / (1 - pow(beta1, step)))
        let correction2 = Float((1 - pow(beta2, step)).squareRoot())
        let a1 = Float(1 - beta1), b2 = Float(beta2), a2 = Float(1 - beta2), eps = Float(epsilon)
        m.withUnsafeMutableBufferPointer { m in
            v.withUnsafeMutableBufferPointer { v in
                for i in 0..<gradient.count {
                    let g = gradient[i]
                    m[i] += a1 * (g - m[i])
                    v[i] = v[i] * b2 + a2 * g * g
                    parameters[i] -= stepSize * (m[i] / (v[i].squareRoot() / correction2 + eps))
                }
            }
        }
    }
}

/// x^n for a small non-negative integer n.
private func pow(_ x: Double, _ n: Int) -> Double {
    var r = 1.0
    for _ in 0..<n { r *= x }
    return r
}
