/// A bounded sample of the rows each linear layer of each block receives: every n-th token
/// of the calibration windows, at most `maximumRows` per layer. AWQ measures candidate
/// scales on these rows, so the search sees real inputs without holding every token.
///
/// Memory is at most layers × maximumRows × (3·n_embd + n_inner) floats.
public final class LinearInputSample: ForwardObserver, @unchecked Sendable {
    public let maximumRows: Int
    /// Every `stride`-th token is kept, so the sample spreads over all windows.
    public let stride: Int
    private var store: [[BlockLinear: [Float]]]
    private var seen: [[BlockLinear: Int]]

    /// `expectedTokens` (windows × length) sets the stride.
    public init(layers: Int, expectedTokens: Int, maximumRows: Int = 512) {
        precondition(maximumRows > 0)
        self.maximumRows = maximumRows
        stride = max(1, (expectedTokens + maximumRows - 1) / maximumRows)
        store = Array(repeating: [:], count: layers)
        seen = Array(repeating: [:], count: layers)
    }

    public func linearInput(layer: Int, _ linear: BlockLinear, _ x: UnsafeBufferPointer<Float>, tokens t: Int) {
        let width = x.count / max(1, t)
        var kept = store[layer][linear] ?? []
        var count = seen[layer][linear] ?? 0
        for i in 0..<t {
            defer { count += 1 }
            guard count % stride == 0, kept.count / max(1, width) < maximumRows else { continue }
            kept.append(contentsOf: x[(i * width)..<((i + 1) * width)])
        }
        store[layer][linear] = kept
        seen[layer][linear] = count
    }

    /// The sampled rows of `linear` in block `layer`, [rows, in] row-major, and the row count.
    public func rows(layer: Int, _ linear: BlockLinear, width: Int) -> (values: [Float], rows: Int) {
        let values = store[layer][linear] ?? []
        return (values, values.count / max(1, width))
    }

    /// Runs `model` in f32 over `windows`, sampling every linear layer's input.
    public static func collect(model: GPT2Model, windows: [[Int32]], maximumRows: Int = 512, threads: Int,
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
