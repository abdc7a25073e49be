import Foundation

/// AWQ (Lin et al., 2024): activation-aware weight quantization. Per linear layer, the
/// input channels are scaled by s (chosen by `AWQScaleSearch`) before group-wise int4
/// quantization, and 1/s is folded into the operation that produces the layer's input,
/// so in f32 the model computes the same function:
///
/// - attn.c_attn: 1/s into ln_1's γ and β;
/// - mlp.c_fc: 1/s into ln_2's γ and β;
/// - attn.c_proj: 1/s into the value columns of attn.c_attn (weight and bias): attention
///   is linear in the values (softmax rows sum to 1), so its output columns scale with them;
/// - mlp.c_proj: its input comes through GELU, which is not homogeneous, so there is no
///   linear operation to fold into. It is not searched and is quantized plainly (α = 0).
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
    /// The search result of one linear layer.
    public struct Layer: Sendable {
        public var layer: Int
        public var linear: BlockLinear
        public var result: AWQScaleSearch.Result
        public init(layer: Int, linear: BlockLinear, result: AWQScaleSearch.Result) {
            self.layer = layer; self.linear = linear; self.result = result
        }
    }

    public let search: AWQScaleSearch
    public let sampleRows: Int
    public let embedding: Int
    /// Every searched layer, block by block in the order of `searched`.
    public let layers: [Layer]
    private let scales: [[BlockLinear: [Float]]]
    private let absMean: [[BlockLinear: [Float]]]

    /// The linear layers whose scales can be folded into a preceding linear operation:
    /// the ones AWQ searches and scales.
    public static let searched: [BlockLinear] = [.attention, .attentionProjection, .feedForward]

    /// Searches every block's linear layers on `sample`, with activation magnitudes from
    /// `statistics`, in parallel over layers on `threads` threads.
    public init(source: any WeightSource, statistics: ActivationStatistics, sample: LinearInputSample, search: AWQScaleSearch,
                threads: Int, progress: ((Int, Int) -> Void)? = nil) throws {
        let config = try GPT2Config(json: source.configJSON, inferred: GPT2Config.infer(shapes: source.shapes), origin: source.origin)
        let jobs = (0..<config.layerCount).flatMap { l in Self.searched.map { (l, $0) } }
        var results = [Layer?](repeating: nil, count: jobs.count)
        let lock = Lock()
        var done = 0
        let means = statistics.absMean
        try Parallel.forEachThrowing(jobs.count, threads: threads) { i in
            let (l, linear) = jobs[i]
            let name = "h.\(l).\(linear.rawValue).weight"
            guard let shape = source.shapes[name], let mean = means[l][linear] else {
                throw ModelError.unsupported(origin: source.origin, reason: "no calibration statistics for h.\(l).\(linear.rawValue)")
            }
            let x = sample.rows(layer: l, linear, width: shape[0])
            let backend = MatrixBackends.named(MatrixBackends.names[0], threads: 1)!
            let r = try search.search(inputs: x.values, rows: x.rows, weight: try source.floats(name), shape: shape,
                                      absMean: mean, backend: backend)
            let layer = Layer(layer: l, linear: linear, result: r)
            // Under the lock, so that `progress` is never called from two threads at once.
            lock.withLock { results[i] = layer; done += 1; progress?(done, jobs.count) }
        }
        self.init(search: search, sampleRows: sample.maximumRows, embedding: config.embeddingSize, blocks: config.layerCount,
                  layers: results.map { $0! }, statistics: statistics)
    }

    /// Scaling from given results (`layers` must cover every searched linear of `blocks`
    /// blocks); `statistics`, if given, supplies the activation magnitudes recorded in the file.
    public init(search: AWQScaleSearch, sampleRows: Int, embedding: Int, blocks: Int, layers: [Layer],
                statistics: ActivationStatistics? = nil) {
        self.search = search
        self.sampleRows = sampleRows
        self.embedding = embedding
        self.layers = layers
        var scales = Array(repeating: [BlockLinear: [Float]](), count: blocks)
        var means = Array(repeating: [BlockLinear: [Float]](), count: blocks)
        let recorded = statistics?.absMean
        for layer in layers {
            scales[layer.layer][layer.linear] = layer.result.scales
            means[layer.layer][layer.linear] = recorded?[layer.layer][layer.linear]
        }
        precondition(scales.allSatisfy { b in Self.searched.allSatisfy { b[$0] != nil } }, "every searched layer needs scales")
        self.scales = scales
        absMean = means
    }

    /// (layer, the rest of the name) for `h.N.rest`.
    private func target(_ name: String) -> (Int, String)? {
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "h", let l = Int(parts[1]), l < scales.count else { return nil }
        return (l, String(parts[2]))
    }

    private static let touched: Set<String> = ["ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias", "attn.c_attn.weight",
                                               "attn.c_attn.bias", "attn.c_proj.weight", "mlp.c_fc.weight"]

    public func changes(_ name: String) -> Bool {
        guard let (_, what) = target(name) else { return false }
        return Self.touched.contains(what)
    }

    public func transform(_ name: String, _ values: [Float]) -> [Float] {
        guard let (l, what) = target(name) else { return values }
        let s = scales[l]
        let e = embedding
        switch what {
        case "ln_1.weight", "ln_1.bias": return Self.divide(values, by: s[.attention]!)
        case "ln_2.weight", "ln_2.bias": return Self.divide(values, by: s[.feedForward]!)
        case "attn.c_attn.weight":
            // Rows (inputs) times c_attn's scales; value columns divided by c_proj's.
            var w = SmoothQuant.scaleRows(values, s[.attention]!)
            let v = s[.attentionProjection]!, cols = 3 * e
            for j in 0..<e { for c in 0..<e { w[j * cols + 2 * e + c] /= v[c] } }
            return w
        case "attn.c_attn.bias":
            var b = values
            let v = s[.attentionProjection]!
            for c in 0..<e { b[2 * e + c] /= v[c] }
            return b
        case "attn.c_proj.weight": return SmoothQuant.scaleRows(values, s[.attentionProjection]!)
        case "mlp.c_fc.weight": return SmoothQuant.scaleRows(values, s[.feedForward]!)
        default: return values
        }
    }

    static func divide(_ values: [Float], by s: [Float]) -> [Float] { zip(values, s).map { $0 / $1 } }

    /// The applied scales (`eqm.awq.h.N.<linear>.scales`) and the activation magnitudes the
    /// search used (`eqm.calibration.h.N.<linear>.act_absmean`), for eqinspect.
    public var extraTensors: [ExtraTensor] {
        var out: [ExtraTensor] = []
        for (l, layer) in absMean.enumerated() {
            for linear in BlockLinear.allCases {
                if let mean = layer[linear] {
                    out.append(ExtraTensor(name: "eqm.calibration.h.\(l).\(linear.rawValue).act_absmean", shape: [mean.count], values: mean))
                }
                if let s = scales[l][linear] {
                    out.append(ExtraTensor(name: "eqm.awq.h.\(l).\(linear.rawValue).scales", shape: [s.count], values: s))
                }
            }
        }
        return out
    }

    /// The grid, the sample size, and per block (in the order of `awq_linears`) the chosen α
    /// and the objective at α and at α = 0.
    public var parameters: [(String, JSONValue)] {
        let blocks = Dictionary(grouping: layers, by: \.layer).sorted { $0.key < $1.key }.map { $0.value }
        func table(_ f: (Layer) -> JSONValue) -> JSONValue { .array(blocks.map { .array($0.map(f)) }) }
        return [
            ("awq_grid", .array(search.alphas.map { .double(Double($0)) })),
            ("awq_sample_rows", JSONValue(sampleRows)),
            ("awq_linears", .array(Self.searched.map { .string($0.rawValue) })),
            ("awq_alpha", table { .double(Double($0.result.alpha)) }),
            ("awq_loss", table { .double($0.result.loss) }),
            ("awq_loss_alpha0", table { .double($0.result.plainLoss) }),
        ]
    }
}
