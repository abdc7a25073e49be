/// A bounded sample of the rows each linear-layer input site of each block receives: every n-th token
/// of the calibration windows, at most `maximumRows` per layer. AWQ measures candidate
/// scales on these rows, so the search sees real inputs without holding every token.
///
/// Memory is at most layers × maximumRows × (sum of the sites' widths) floats.
public final class LinearInputSample: ForwardObserver, @unchecked Sendable {
    public let maximumRows: Int
    /// Every `stride`-th token is kept, so the sample spreads over all windows.
    public let stride: Int
    private var store: [[InputSite: [Float]]]
    private var seen: [[InputSite: Int]]

    /// `expectedTokens` (windows × length) sets the stride.
    public init(layers: Int, expectedTokens: Int, maximumRows: Int = 512) {
        precondition(maximumRows > 0)
        self.maximumRows = maximumRows
        stride = max(1, (expectedTokens + maximumRows - 1) / maximumRows)
        store = Array(repeating: [:], count: layers)
        seen = Array(repeating: [:], count: layers)
    }

    public func linearInput(layer: Int, _ site: InputSite, _ x: UnsafeBufferPointer<Float>, tokens t: Int) {
        let width = x.count / max(1, t)
        var kept = store[layer][site] ?? []
        var count = seen[layer][site] ?? 0
        for i in 0..<t {
            defer { count += 1 }
            guard count % stride == 0, kept.count / max(1, width) < maximumRows else { continue }
            kept.append(contentsOf: x[(i * width)..<((i + 1) * width)])
        }
        store[layer][site] = kept
        seen[layer][site] = count
    }

    /// The sampled rows of `site` in block `layer`, [rows, in] row-major, and the row count.
    public func rows(layer: Int, _ site: InputSite, width: Int) -> (values: [Float], rows: Int) {
        let values = store[layer][site] ?? []
        return (values, values.count / max(1, width))
    }

    /// Runs `model` in f32 over `windows`, sampling every linear layer's input.
    public static func collect(model: any CausalLanguageModel, windows: [[Int32]], maximumRows: Int = 512, threads: Int,
                               progress: ((Int, Int) -> Void)? = nil) -> LinearInputSample {
        let total = windows.reduce(0) { $0 + $1.count }
        let sample = LinearInputSample(layers: model.config.layerCount, expectedTokens: total, maximumRows: maximumRows)
        let context = ComputeContext(mode: .f32, threads: threads)
        for (i, w) in windows.enumerated() {
            _ = model.hiddenStates(w, context: context, observer: sample)
            progress?(i + 1, windows.count)
        }
        return sample
    }
}
