import Foundation

/// SmoothQuant (Xiao et al., 2023): migrate activation outliers into the weights.
///
/// For each smoothed input site of every block (by default the two fed by a norm: GPT-2's
/// attn.c_attn after ln_1 and mlp.c_fc after ln_2; Llama's q/k/v after input_layernorm and
/// gate/up after post_attention_layernorm), per input channel j:
///
///     s_j = max|X_j|^α / max|W_j|^(1−α)
///
/// with max|W_j| over all the site's consumers; then the producer's outputs are divided by s
/// and the consumers' input channels multiplied by s (`ChannelScaling`). X·W = (X·diag(s)⁻¹)·
/// (diag(s)·W), so in f32 the model computes the same function; after smoothing,
/// activations have smaller outliers and quantize better.
///
/// `linearFedSites` extends this beyond the paper to sites fed by another linear layer:
/// Llama's down_proj input silu(gate)·up is linear in up's output, so its outliers (the
/// largest of a Llama model) can migrate into down_proj through up_proj's rows. The paper
/// leaves that site unsmoothed; both are offered, and `eqtable`'s smoothquant study
/// measures each.
public struct SmoothQuant: ModelPreparation {
    public let alpha: Float
    /// The folding; its `scales` are [block][site] → s.
    public let scaling: ChannelScaling
    /// The activation maxima the scales were computed from, [block][site].
    let activationMax: [[InputSite: [Float]]]
    let recordNames: [[InputSite: String]]
    let linearFedSites: Bool

    /// Scales are clamped to this range so that a dead channel (max 0) cannot produce 0 or ∞.
    public static let scaleRange: ClosedRange<Float> = 1e-5...1e5

    /// The sites smoothed: those fed by a norm, and with `linearFedSites` those fed by a linear layer.
    static func sites(_ structure: BlockStructure, linearFedSites: Bool) -> [InputSite] {
        structure.sites.filter {
            switch structure.producers[$0] {
            case .norm: return true
            case .linear: return linearFedSites
            default: return false
            }
        }
    }

    public init(source: any WeightSource, statistics: ActivationStatistics, config: ModelConfig, alpha: Float,
                linearFedSites: Bool = false) throws {
        self.alpha = alpha
        self.linearFedSites = linearFedSites
        let family = source.family, structure = family.blockStructure(config)
        var scales: [[InputSite: [Float]]] = [], maxima: [[InputSite: [Float]]] = [], names: [[InputSite: String]] = []
        for l in 0..<config.layerCount {
            var layerScales: [InputSite: [Float]] = [:], layerMax: [InputSite: [Float]] = [:], layerNames: [InputSite: String] = [:]
            for site in Self.sites(structure, linearFedSites: linearFedSites) {
                let xmax = try statistics.maxima(layer: l, site, origin: source.origin)
                var wmax = [Float](repeating: 0, count: xmax.count)
                let consumers = structure.consumers(of: site)
                for consumer in consumers {
                    let name = family.blockTensorName(layer: l, consumer.weight)
                    let layout = try LinearWeightLayout(source, name, consumer, inputs: xmax.count)
                    for (j, m) in layout.inputAbsMax(try source.floats(name)).enumerated() { wmax[j] = max(wmax[j], m) }
                }
                var s = [Float](repeating: 1, count: xmax.count)
                for j in 0..<xmax.count {
                    guard xmax[j] > 0, wmax[j] > 0 else { continue }
                    let v = Float(pow(Double(xmax[j]), Double(alpha)) / pow(Double(wmax[j]), Double(1 - alpha)))
                    s[j] = min(max(v, Self.scaleRange.lowerBound), Self.scaleRange.upperBound)
                }
                layerScales[site] = s
                layerMax[site] = xmax
                layerNames[site] = family.blockTensorName(layer: l, consumers[0].name)
            }
            scales.append(layerScales); maxima.append(layerMax); names.append(layerNames)
        }
        scaling = try ChannelScaling(scales: scales, source: source, config: config)
        activationMax = maxima
        recordNames = names
    }

    public func changes(_ name: String) -> Bool { scaling.changes(name) }
    public func transform(_ name: String, _ values: [Float]) -> [Float] { scaling.transform(name, values) }

    /// Per block and site, named after the site's first consumer:
    /// `eqm.calibration.<linear>.act_absmax` and `eqm.smoothquant.<linear>.scales`.
    public var extraTensors: [ExtraTensor] {
        var out: [ExtraTensor] = []
        for (l, sites) in scaling.scales.enumerated() {
            for site in sites.keys.sorted() {
                let name = recordNames[l][site]!, xmax = activationMax[l][site]!, s = sites[site]!
                out.append(ExtraTensor(name: "eqm.calibration.\(name).act_absmax", shape: [xmax.count], values: xmax))
                out.append(ExtraTensor(name: "eqm.smoothquant.\(name).scales", shape: [s.count], values: s))
            }
        }
        return out
    }

    public var parameters: [(String, JSONValue)] {
        [("alpha", .double(Double(alpha)))] + (linearFedSites ? [("smoothed_sites", "norm- and linear-fed")] : [])
    }
}
