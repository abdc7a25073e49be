import Foundation

/// AWQ (Lin et al., 2024): activation-aware weight quantization. Per input site of a block
/// (the linears that read the same activations, searched together as AWQ does for q/k/v),
/// the input channels are scaled by s (chosen by `AWQScaleSearch`) before group-wise int4
/// quantization, and 1/s is folded into the operation that produces the site's input
/// (`ChannelScaling`), so in f32 the model computes the same function:
///
/// - GPT-2: attn.c_attn ← ln_1, mlp.c_fc ← ln_2, attn.c_proj ← c_attn's value columns
///   (attention is linear in the values: softmax rows sum to 1); mlp.c_proj reads GELU's
///   output, which is not homogeneous, so there is nothing to fold into: it is not searched
///   and is quantized plainly (α = 0).
/// - Llama: q/k/v ← input_layernorm, gate/up ← post_attention_layernorm, down_proj ←
///   up_proj's rows (down_proj reads silu(gate)·up, linear in up), o_proj ← v_proj's rows
///   when every query head has its own value head; under grouped-query attention one value
///   head feeds several query heads, so o_proj is quantized plainly (as the AWQ reference does).
///   The AWQ reference, for GELU models, stores an explicit scale that divides the GELU
///   output instead; that needs a model change, and on the tiny fixture the scale the
///   search picked for h.0.mlp.c_proj (α = 0.25, output MSE −1.2%) made the model's
///   predictions worse than α = 0 (KL from the f32 model 1.33e-3 vs 1.29e-3 with only that
///   layer quantized), so it was left out.
///
/// The searches are independent, each on the f32 model's inputs, and this is what the
/// sequential search would find: folding leaves every layer's output unchanged in f32,
/// so the input a later layer sees in the folded model is X·diag(s)⁻¹ for the original X,
/// which is exactly what its objective models. The one interaction, attn.c_proj's 1/s on
/// the value columns of c_attn, scales whole output columns of c_attn by positive
/// constants; group quantization along the input axis commutes with that (every group lies
/// in one column, and min/max scale with it), so c_attn's quantized weight is the same up
/// to those column factors, which c_proj's rows undo.
public struct AWQScaling: ModelPreparation {
    /// The search result of one input site.
    public struct Layer: Sendable {
        public var layer: Int
        public var site: InputSite
        /// The site's first linear, as a canonical name without `.weight` (for tables).
        public var name: String
        public var result: AWQScaleSearch.Result
        public init(layer: Int, site: InputSite, name: String, result: AWQScaleSearch.Result) {
            self.layer = layer; self.site = site; self.name = name; self.result = result
        }
    }

    public let search: AWQScaleSearch
    public let sampleRows: Int
    /// Every searched site, block by block.
    public let layers: [Layer]
    /// The folding of the chosen scales.
    public let scaling: ChannelScaling
    private let absMean: [[InputSite: [Float]]]
    private let searchedSites: [InputSite]
    /// Each searched site's first linear, named inside the block.
    private let siteLinears: [String]
    private let recordNames: [[InputSite: String]]

    /// The sites whose scales can be folded into a preceding linear operation: the ones AWQ
    /// searches and scales.
    public static func searched(_ structure: BlockStructure) -> [InputSite] {
        structure.sites.filter {
            switch structure.producers[$0] {
            case .norm, .linear: return true
            default: return false
            }
        }
    }

    /// Searches every block's sites on `sample`, with activation magnitudes from
    /// `statistics`, in parallel over sites on `threads` threads.
    public init(source: any WeightSource, statistics: ActivationStatistics, sample: LinearInputSample, search: AWQScaleSearch,
                threads: Int, progress: ((Int, Int) -> Void)? = nil) throws {
        let config = try source.modelConfig()
        let family = source.family, structure = family.blockStructure(config)
        let sites = Self.searched(structure)
        let jobs = (0..<config.layerCount).flatMap { l in sites.map { (l, $0) } }
        var results = [Layer?](repeating: nil, count: jobs.count)
        let lock = Lock()
        var done = 0
        let means = statistics.absMean
        try Parallel.forEachThrowing(jobs.count, threads: threads) { i in
            let (l, site) = jobs[i]
            guard let mean = means[l][site] else {
                throw ModelError.unsupported(origin: source.origin, reason: "no calibration statistics for block \(l) \(site.rawValue)")
            }
            // The site's consumers side by side, [in, Σ out]: searched as one layer.
            let consumers = structure.consumers(of: site)
            var parts: [(values: [Float], outputs: Int)] = []
            for consumer in consumers {
                let name = family.blockTensorName(layer: l, consumer.weight)
                let layout = try LinearWeightLayout(source, name, consumer, inputs: mean.count)
                parts.append((layout.inputMajorCopy(try source.floats(name)), layout.outFeatures))
            }
            let outputs = parts.reduce(0) { $0 + $1.outputs }
            var weight = [Float](repeating: 0, count: mean.count * outputs)
            var column = 0
            for part in parts {
                for j in 0..<mean.count {
                    for c in 0..<part.outputs { weight[j * outputs + column + c] = part.values[j * part.outputs + c] }
                }
                column += part.outputs
            }
            let x = sample.rows(layer: l, site, width: mean.count)
            let backend = MatrixBackends.named(MatrixBackends.names[0], threads: 1)!
            let r = try search.search(inputs: x.values, rows: x.rows, weight: weight, shape: [mean.count, outputs],
                                      absMean: mean, backend: backend)
            let layer = Layer(layer: l, site: site, name: family.blockTensorName(layer: l, consumers[0].name), result: r)
            // Under the lock, so that `progress` is never called from two threads at once.
            lock.withLock { results[i] = layer; done += 1; progress?(done, jobs.count) }
        }
        try self.init(search: search, sampleRows: sample.maximumRows, source: source, config: config,
                      layers: results.map { $0! }, statistics: statistics)
    }

    /// Scaling from given results (`layers` must cover every searched site of every block);
    /// `statistics`, if given, supplies the activation magnitudes recorded in the file.
    public init(search: AWQScaleSearch, sampleRows: Int, source: any WeightSource, config: ModelConfig, layers: [Layer],
                statistics: ActivationStatistics? = nil) throws {
        self.search = search
        self.sampleRows = sampleRows
        self.layers = layers
        let structure = source.family.blockStructure(config)
        searchedSites = Self.searched(structure)
        siteLinears = searchedSites.map { structure.consumers(of: $0)[0].name }
        var scales = Array(repeating: [InputSite: [Float]](), count: config.layerCount)
        var means = scales
        var names = Array(repeating: [InputSite: String](), count: config.layerCount)
        let recorded = statistics?.absMean
        for layer in layers where layer.layer < config.layerCount {
            scales[layer.layer][layer.site] = layer.result.scales
            means[layer.layer][layer.site] = recorded?[layer.layer][layer.site]
            names[layer.layer][layer.site] = layer.name
        }
        let sites = searchedSites
        guard scales.allSatisfy({ b in sites.allSatisfy { b[$0] != nil } }) else {
            throw ModelError.unsupported(origin: source.origin, reason: "AWQ scales are missing for some searched sites")
        }
        scaling = try ChannelScaling(scales: scales, source: source, config: config)
        absMean = means
        recordNames = names
    }

    public func changes(_ name: String) -> Bool { scaling.changes(name) }
    public func transform(_ name: String, _ values: [Float]) -> [Float] { scaling.transform(name, values) }

    /// The applied scales (`eqm.awq.<linear>.scales`) and the activation magnitudes the
    /// search used (`eqm.calibration.<linear>.act_absmean`), named after each site's first
    /// linear, for eqinspect.
    public var extraTensors: [ExtraTensor] {
        var out: [ExtraTensor] = []
        for (l, sites) in scaling.scales.enumerated() {
            for site in sites.keys.sorted() {
                let name = recordNames[l][site]!
                if let mean = absMean[l][site] {
                    out.append(ExtraTensor(name: "eqm.calibration.\(name).act_absmean", shape: [mean.count], values: mean))
                }
                let s = sites[site]!
                out.append(ExtraTensor(name: "eqm.awq.\(name).scales", shape: [s.count], values: s))
            }
        }
        return out
    }

    /// The grid, the sample size, and per block (in the order of `awq_linears`) the chosen α
    /// and the objective at α and at α = 0.
    public var parameters: [(String, JSONValue)] {
        let blocks = Dictionary(grouping: layers, by: \.layer).sorted { $0.key < $1.key }.map { $0.value.sorted { $0.site < $1.site } }
        func table(_ f: (Layer) -> JSONValue) -> JSONValue { .array(blocks.map { .array($0.map(f)) }) }
        return [
            ("awq_grid", .array(search.alphas.map { .double(Double($0)) })),
            ("awq_sample_rows", JSONValue(sampleRows)),
            ("awq_sites", .array(searchedSites.map { .string($0.rawValue) })),
            ("awq_linears", .array(siteLinears.map { .string($0) })),
            ("awq_alpha", table { .double(Double($0.result.alpha)) }),
            ("awq_loss", table { .double($0.result.loss) }),
            ("awq_loss_alpha0", table { .double($0.result.plainLoss) }),
        ]
    }
}
