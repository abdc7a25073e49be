/// Per-input-channel max |x| and mean |x| of every linear layer's input over the calibration
/// windows: SmoothQuant's activation scales, LLM.int8()'s outlier features, AWQ's saliency.
public final class ActivationStatistics: ForwardObserver, @unchecked Sendable {
    /// [layer][linear] → max |x_j| per input channel j.
    public private(set) var absMax: [[BlockLinear: [Float]]]
    /// [layer][linear] → Σ |x_j| and the number of tokens summed.
    private var sums: [[BlockLinear: (total: [Double], tokens: Int)]]

    public init(layers: Int) {
        absMax = Array(repeating: [:], count: layers)
        sums = Array(repeating: [:], count: layers)
    }

    /// [layer][linear] → mean |x_j| per input channel j (AWQ's activation magnitude).
    public var absMean: [[BlockLinear: [Float]]] {
        sums.map { layer in layer.mapValues { s in s.total.map { Float($0 / Double(max(1, s.tokens))) } } }
    }

    public func linearInput(layer: Int, _ linear: BlockLinear, _ x: UnsafeBufferPointer<Float>, tokens t: Int) {
        let width = x.count / t
        var maxima = absMax[layer][linear] ?? [Float](repeating: 0, count: width)
        var (total, seen) = sums[layer][linear] ?? ([Double](repeating: 0, count: width), 0)
        for i in 0..<t {
            for j in 0..<width {
                let v = abs(x[i * width + j])
                if v > maxima[j] { maxima[j] = v }
                total[j] += Double(v)
            }
        }
        absMax[layer][linear] = maxima
        sums[layer][linear] = (total, seen + t)
    }

    /// Runs `model` in f32 over every window, collecting the statistics.
    public static func collect(model: GPT2Model, windows: [[Int32]], context: ComputeContext,
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
