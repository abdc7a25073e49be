import Foundation

/// SmoothQuant (Xiao et al., 2023): migrate activation outliers into the weights.
///
/// For the two linear layers fed by a LayerNorm in each block (attn.c_attn after ln_1,
/// mlp.c_fc after ln_2), per input channel j:
///     s_j = max|X_j|^α / max|W_j|^(1−α)
/// then the LayerNorm's γ and β are divided by s and row j of W (GPT-2 stores W as [in, out])
/// is multiplied by s_j. X·W = (X·diag(s)⁻¹)·(diag(s)·W), so in f32 the model computes the
/// same function; after smoothing, activations have smaller outliers and quantize better.
public struct SmoothQuant: ModelPreparation {
    public let alpha: Float
    /// [layer] → (scales for c_attn's inputs, scales for c_fc's inputs).
    public let scales: [(attention: [Float], feedForward: [Float])]
    /// The activation maxima the scales were computed from, for the file.
    let activationMax: [(attention: [Float], feedForward: [Float])]

    /// Scales are clamped to this range so that a dead channel (max 0) cannot produce 0 or ∞.
    public static let scaleRange: ClosedRange<Float> = 1e-5...1e5

    public init(source: any WeightSource, statistics: ActivationStatistics, layers: Int, alpha: Float) throws {
        self.alpha = alpha
        var scales: [(attention: [Float], feedForward: [Float])] = []
        var maxima: [(attention: [Float], feedForward: [Float])] = []
        for l in 0..<layers {
            func smoothing(_ linear: BlockLinear) throws -> ([Float], [Float]) {
                let name = "h.\(l).\(linear.rawValue).weight"
                let shape = source.shapes[name]!
                let w = try source.floats(name)
                let xmax = statistics.absMax[l][linear]!
                let (rows, cols) = (shape[0], shape[1])
                var s = [Float](repeating: 1, count: rows)
                for j in 0..<rows {
                    var wmax: Float = 0
                    for k in 0..<cols { wmax = max(wmax, abs(w[j * cols + k])) }
                    let x = xmax[j]
                    guard x > 0, wmax > 0 else { continue }
                    let v = Float(pow(Double(x), Double(alpha)) / pow(Double(wmax), Double(1 - alpha)))
                    s[j] = min(max(v, Self.scaleRange.lowerBound), Self.scaleRange.upperBound)
                }
                return (s, xmax)
            }
            let (sa, xa) = try smoothing(.attention)
            let (sf, xf) = try smoothing(.feedForward)
            scales.append((sa, sf))
            maxima.append((xa, xf))
        }
        self.scales = scales
        activationMax = maxima
    }

    /// (layer, what) for the tensors smoothing touches.
    private func target(_ name: String) -> (Int, String)? {
        let parts = name.split(separator: ".")
        guard parts.count >= 3, parts[0] == "h", let l = Int(parts[1]), l < scales.count else { return nil }
        let rest = parts[2...].joined(separator: ".")
        let touched = ["ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias", "attn.c_attn.weight", "mlp.c_fc.weight"]
        return touched.contains(rest) ? (l, rest) : nil
    }

    public func changes(_ name: String) -> Bool { target(name) != nil }

    public func transform(_ name: String, _ values: [Float]) -> [Float] {
        guard let (l, what) = target(name) else { return values }
        switch what {
        case "ln_1.weight", "ln_1.bias": return zip(values, scales[l].attention).map { $0 / $1 }
        case "ln_2.weight", "ln_2.bias": return zip(values, scales[l].feedForward).map { $0 / $1 }
        case "attn.c_attn.weight": return Self.scaleRows(values, scales[l].attention)
        default: return Self.scaleRows(values, scales[l].feedForward)
        }
    }

    /// W[j, :] *= s[j] for W stored [in, out].
    static func scaleRows(_ w: [Float], _ s: [Float]) -> [Float] {
        let cols = w.count / s.count
        var out = w
        for j in 0..<s.count { for k in 0..<cols { out[j * cols + k] *= s[j] } }
        return out
    }

    public var extraTensors: [ExtraTensor] {
        var out: [ExtraTensor] = []
        for (l, (s, x)) in zip(scales, activationMax).enumerated() {
            for (linear, scale, xmax) in [("attn.c_attn", s.attention, x.attention), ("mlp.c_fc", s.feedForward, x.feedForward)] {
                out.append(ExtraTensor(name: "eqm.calibration.h.\(l).\(linear).act_absmax", shape: [xmax.count], values: xmax))
                out.append(ExtraTensor(name: "eqm.smoothquant.h.\(l).\(linear).scales", shape: [scale.count], values: scale))
            }
        }
        return out
    }

    public var parameters: [(String, JSONValue)] { [("alpha", .double(Double(alpha)))] }
}
