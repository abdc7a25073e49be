/// LLM.int8() (Dettmers et al., 2022): vector-wise int8 with mixed-precision decomposition.
///
/// For every linear layer of every block, the input features whose activation magnitude
/// exceeds `threshold` (6 in the paper) are "outlier features": their weights are cut out
/// of the matrix and kept in f32, and the rest is quantized as vector-wise int8 (absmax per
/// output channel, the converter's `absmax` at 8 bits, channel granularity; activations per
/// token at inference). At run time
///
///     y = X[:, inliers] · W[inliers, :]  (int8 × int8 → int32, rescaled)  +  X[:, outliers] · W[outliers, :]  (f32)
///
/// Every input site is decomposed, including the ones no norm feeds: in Llama-family models
/// the largest outliers enter down_proj, which this handles like any other layer. Linears
/// that share a site (q, k, v) share its outlier set.
///
/// The outlier set: bitsandbytes decides it per batch at run time (a column of the batch's
/// activations with any |x| ≥ threshold). Here it is fixed at calibration, so the file is
/// static and every token uses the same decomposition: feature j is an outlier of a site
/// when its largest |x_j| over the calibration tokens exceeds `threshold` (strictly).
///
/// Storage: the weight's outlier input channels are zeroed before quantization, so the
/// absmax scales are computed over the inliers only; the cut-out weights go to
/// `eqm.outliers.<layer>.index` / `.weight` (`OutlierFeatures`). The embeddings and a tied
/// output layer are not decomposed: the embeddings are lookups (no activations to quantize),
/// and a tied output layer shares its matrix with the token embedding, whose columns cannot
/// be cut out without changing every lookup.
public struct LLMInt8Decomposition: ModelPreparation {
    public let threshold: Float
    /// [layer][site] → the outlier features (ascending), empty when there are none.
    public let outlierFeatures: [[InputSite: [Int]]]
    /// The f32 parts, by weight name, for the layers that have outliers.
    public let parts: [String: OutlierFeatures]
    /// The calibrated max |x_j| the selection used, [layer][site].
    let activationMax: [[InputSite: [Float]]]
    let structure: BlockStructure
    let family: any ModelFamily
    private let layouts: [String: LinearWeightLayout]

    /// Selects the outlier features from `statistics` and cuts their weights out of `source`'s.
    public init(source: any WeightSource, statistics: ActivationStatistics, config: ModelConfig, threshold: Float) throws {
        self.threshold = threshold
        family = source.family
        structure = family.blockStructure(config)
        var selected: [[InputSite: [Int]]] = [], maxima: [[InputSite: [Float]]] = []
        var parts: [String: OutlierFeatures] = [:], layouts: [String: LinearWeightLayout] = [:]
        for l in 0..<config.layerCount {
            var chosen: [InputSite: [Int]] = [:], layerMax: [InputSite: [Float]] = [:]
            for site in structure.sites {
                let xmax = try statistics.maxima(layer: l, site, origin: source.origin)
                let features = Self.selectOutliers(absMax: xmax, threshold: threshold)
                chosen[site] = features
                layerMax[site] = xmax
                guard !features.isEmpty else { continue }
                for consumer in structure.consumers(of: site) {
                    let name = family.blockTensorName(layer: l, consumer.weight)
                    let layout = try LinearWeightLayout(source, name, consumer, inputs: xmax.count)
                    let w = try source.floats(name)
                    parts[name] = OutlierFeatures(indices: features, weight: features.flatMap { layout.inputChannel(w, $0) },
                                                  outFeatures: layout.outFeatures)
                    layouts[name] = layout
                }
            }
            selected.append(chosen)
            maxima.append(layerMax)
        }
        outlierFeatures = selected
        self.parts = parts
        self.layouts = layouts
        activationMax = maxima
    }

    /// The input features whose calibrated max |x| exceeds `threshold`, ascending.
    public static func selectOutliers(absMax: [Float], threshold: Float) -> [Int] {
        absMax.indices.filter { absMax[$0] > threshold }
    }

    // MARK: ModelPreparation

    public func changes(_ name: String) -> Bool { parts[name] != nil }

    /// Zeroes the outlier input channels.
    public func transform(_ name: String, _ values: [Float]) -> [Float] {
        guard let part = parts[name], let layout = layouts[name] else { return values }
        return layout.zeroingInputs(values, part.indices)
    }

    /// Per block and site `eqm.calibration.<first linear>.act_absmax`, and per decomposed
    /// linear its outlier part.
    public var extraTensors: [ExtraTensor] {
        var out: [ExtraTensor] = []
        for (l, layer) in activationMax.enumerated() {
            for site in structure.sites {
                let xmax = layer[site]!
                let first = family.blockTensorName(layer: l, structure.consumers(of: site)[0].name)
                out.append(ExtraTensor(name: "eqm.calibration.\(first).act_absmax", shape: [xmax.count], values: xmax))
                for consumer in structure.consumers(of: site) {
                    let weight = family.blockTensorName(layer: l, consumer.weight)
                    guard let part = parts[weight] else { continue }
                    let names = OutlierFeatures.tensorNames(for: weight)
                    out.append(ExtraTensor(name: names.index, shape: [part.count], values: part.indices.map(Float.init)))
                    out.append(ExtraTensor(name: names.weight, shape: [part.count, part.outFeatures], values: part.weight))
                }
            }
        }
        return out
    }

    /// The threshold, the sites in order, and per block the number of outlier features of
    /// each site.
    public var parameters: [(String, JSONValue)] {
        [("threshold", .double(Double(threshold))),
         ("outlier_sites", .array(structure.sites.map { .string($0.rawValue) })),
         ("outlier_features", .array(outlierFeatures.map { layer in
             .array(structure.sites.map { JSONValue(layer[$0]?.count ?? 0) })
         }))]
    }
}
