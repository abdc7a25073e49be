/// LLM.int8() (Dettmers et al., 2022): vector-wise int8 with mixed-precision decomposition.
///
/// For each of the four linear layers of every block, the input features whose activation
/// magnitude exceeds `threshold` (6 in the paper) are "outlier features": their weight rows
/// are cut out of the matrix and kept in f32, and the rest is quantized as vector-wise int8
/// (absmax per output channel, the converter's `absmax` at 8 bits, channel granularity;
/// activations per token at inference). At run time
///
///     y = X[:, inliers] · W[inliers, :]  (int8 × int8 → int32, rescaled)  +  X[:, outliers] · W[outliers, :]  (f32)
///
/// The outlier set: bitsandbytes decides it per batch at run time (a column of the batch's
/// activations with any |x| ≥ threshold). Here it is fixed at calibration, so the file is
/// static and every token uses the same decomposition: feature j is an outlier of a layer
/// when its largest |x_j| over the calibration tokens exceeds `threshold` (strictly).
///
/// Storage: the weight's outlier rows are zeroed before quantization, so the absmax scales
/// are computed over the inlier rows only and the outlier rows' codes are 0; the rows
/// themselves go to `eqm.outliers.<layer>.index` / `.weight` (`OutlierFeatures`).
/// The embeddings and the tied output layer are not decomposed: the embeddings are
/// lookups (no activations to quantize), and the output layer shares its matrix with the
/// token embedding, whose columns cannot be cut out without changing every lookup.
public struct LLMInt8Decomposition: ModelPreparation {
    public let threshold: Float
    /// [layer][linear] → the outlier features (ascending), empty when there are none.
    public let outlierFeatures: [[BlockLinear: [Int]]]
    /// The f32 parts, by weight name, for the layers that have outliers.
    public let parts: [String: OutlierFeatures]
    /// The calibrated max |x_j| the selection used, [layer][linear].
    let activationMax: [[BlockLinear: [Float]]]

    /// Selects the outlier features from `statistics` and cuts their rows out of `source`'s weights.
    public init(source: any WeightSource, statistics: ActivationStatistics, layers: Int, threshold: Float) throws {
        self.threshold = threshold
        var selected: [[BlockLinear: [Int]]] = []
        var parts: [String: OutlierFeatures] = [:]
        var maxima: [[BlockLinear: [Float]]] = []
        for l in 0..<layers {
            var chosen: [BlockLinear: [Int]] = [:], layerMax: [BlockLinear: [Float]] = [:]
            for linear in BlockLinear.allCases {
                guard let xmax = statistics.absMax[l][linear] else {
                    throw ModelError.unsupported(origin: source.origin, reason: "no calibration statistics for h.\(l).\(linear.rawValue)")
                }
                let features = Self.selectOutliers(absMax: xmax, threshold: threshold)
                chosen[linear] = features
                layerMax[linear] = xmax
                guard !features.isEmpty else { continue }
                let name = Self.weightName(layer: l, linear)
                let w = try source.floats(name)
                let cols = source.shapes[name]![1]
                let rows = features.flatMap { w[($0 * cols)..<(($0 + 1) * cols)] }
                parts[name] = OutlierFeatures(indices: features, weight: rows, outFeatures: cols)
            }
            selected.append(chosen)
            maxima.append(layerMax)
        }
        outlierFeatures = selected
        self.parts = parts
        activationMax = maxima
    }

    /// The input features whose calibrated max |x| exceeds `threshold`, ascending.
    public static func selectOutliers(absMax: [Float], threshold: Float) -> [Int] {
        absMax.indices.filter { absMax[$0] > threshold }
    }

    static func weightName(layer: Int, _ linear: BlockLinear) -> String { "h.\(layer).\(linear.rawValue).weight" }

    // MARK: ModelPreparation

    public func changes(_ name: String) -> Bool { parts[name] != nil }

    /// Zeroes the outlier rows (GPT-2's Conv1D weights are [in, out], one row per input feature).
    public func transform(_ name: String, _ values: [Float]) -> [Float] {
        guard let part = parts[name] else { return values }
        var out = values
        let cols = part.outFeatures
        for j in part.indices { for k in 0..<cols { out[j * cols + k] = 0 } }
        return out
    }

    public var extraTensors: [ExtraTensor] {
        var out: [ExtraTensor] = []
        for (l, layer) in activationMax.enumerated() {
            for linear in BlockLinear.allCases {
                let xmax = layer[linear]!
                out.append(ExtraTensor(name: "eqm.calibration.h.\(l).\(linear.rawValue).act_absmax", shape: [xmax.count], values: xmax))
                guard let part = parts[Self.weightName(layer: l, linear)] else { continue }
                let names = OutlierFeatures.tensorNames(for: Self.weightName(layer: l, linear))
                out.append(ExtraTensor(name: names.index, shape: [part.count], values: part.indices.map(Float.init)))
                out.append(ExtraTensor(name: names.weight, shape: [part.count, part.outFeatures], values: part.weight))
            }
        }
        return out
    }

    /// The threshold, and per layer the number of outlier features of each linear layer
    /// (in `BlockLinear` order: c_attn, attn.c_proj, c_fc, mlp.c_proj).
    public var parameters: [(String, JSONValue)] {
        [("threshold", .double(Double(threshold))),
         ("outlier_features", .array(outlierFeatures.map { layer in
             .array(BlockLinear.allCases.map { JSONValue(layer[$0]?.count ?? 0) })
         }))]
    }
}
