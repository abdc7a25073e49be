/// Per-input-channel max |x| and mean |x| of every linear-layer input site over the
/// calibration windows: SmoothQuant's activation scales, LLM.int8()'s outlier features,
/// AWQ's saliency. Linears that share a site (q, k and v; gate and up) read the same
/// activations, so statistics are kept per site.
public final class ActivationStatistics: ForwardObserver, @unchecked Sendable {
    /// [layer][site] → max |x_j| per input channel j.
    public private(set) var absMax: [[InputSite: [Float]]]
    /// [layer][site] → Σ |x_j| and the number of tokens summed.
    private var sums: [[InputSite: (total: [Double], tokens: Int)]]

    public init(layers: Int) {
        absMax = Array(repeating: [:], count: layers)
        sums = Array(repeating: [:], count: layers)
    }

    /// [layer][site] → mean |x_j| per input channel j (AWQ's activation magnitude).
    public var absMean: [[InputSite: [Float]]] {
        sums.map { layer in layer.mapValues { s in s.total.map { Float($0 / Double(max(1, s.tokens))) } } }
    }

    public func linearInput(layer: Int, _ site: InputSite, _ x: UnsafeBufferPointer<Float>, tokens t: Int) {
        let width = x.count / max(1, t)
        var maxima = absMax[layer][site] ?? [Float](repeating: 0, count: width)
        var (total, seen) = sums[layer][site] ?? ([Double](repeating: 0, count: width), 0)
        for i in 0..<t {
            for j in 0..<width {
                let v = abs(x[i * width + j])
                if v > maxima[j] { maxima[j] = v }
                total[j] += Double(v)
            }
        }
        absMax[layer][site] = maxima
        sums[layer][site] = (total, seen + t)
    }

    /// The statistics of block `layer`'s `site`, or an error naming what is missing.
    func maxima(layer: Int, _ site: InputSite, origin: String) throws -> [Float] {
        guard layer < absMax.count, let m = absMax[layer][site] else {
            throw ModelError.unsupported(origin: origin, reason: "no calibration statistics for block \(layer) \(site.rawValue)")
        }
        return m
    }

    /// Runs `model` in f32 over every window, collecting the statistics.
    public static func collect(model: any CausalLanguageModel, windows: [[Int32]], context: ComputeContext,
                               progress: ((Int, Int) -> Void)? = nil) -> ActivationStatistics {
        let stats = ActivationStatistics(layers: model.config.layerCount)
        var f32 = context
        f32.mode = .f32
        for (i, w) in windows.enumerated() {
            _ = model.hiddenStates(w, context: f32, observer: stats)
            progress?(i + 1, windows.count)
        }
        return stats
    }
}
