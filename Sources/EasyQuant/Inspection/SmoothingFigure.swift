/// SmoothQuant's effect on one layer, from what an .eqm stores: the per-input-channel
/// activation maxima the calibration saw (`eqm.calibration.…act_absmax`) and the same maxima
/// after smoothing divided them by the scales (`eqm.smoothquant.…scales`), for every smoothed
/// input site. Drawn as one panel per site, channels on the x axis.
public struct SmoothingFigure {
    public struct Panel: Sendable {
        public var title: String
        public var before: [Float]
        public var after: [Float]
    }
    public var title: String
    public var panels: [Panel]

    public enum Failure: Error, CustomStringConvertible {
        case notSmoothed(path: String, layer: Int)
        public var description: String {
            switch self {
            case let .notSmoothed(p, l):
                return "\(p): no SmoothQuant calibration data for layer \(l); make the file with eqconvert --method smoothquant --calib FILE"
            }
        }
    }

    /// Reads layer `layer`'s data from `file`: one panel per smoothed input site, named
    /// after the site's first linear layer (GPT-2's attn.c_attn and mlp.c_fc, Llama's
    /// q_proj and gate_proj, and down_proj when linear-fed sites were smoothed too).
    public init(file: EQMFile, layer: Int) throws {
        let family = try EQMWeightSource(file: file).family
        let prefix = family.blockTensorName(layer: layer, "")
        var panels: [Panel] = []
        for record in file.tensors where record.name.hasPrefix("eqm.smoothquant." + prefix) && record.name.hasSuffix(".scales") {
            let linear = String(record.name.dropFirst("eqm.smoothquant.".count).dropLast(".scales".count))
            guard let m = file.record("eqm.calibration.\(linear).act_absmax") else { throw Failure.notSmoothed(path: file.path, layer: layer) }
            let before = try file.floats(m), factors = try file.floats(record)
            guard before.count == factors.count else { throw Failure.notSmoothed(path: file.path, layer: layer) }
            panels.append(Panel(title: "\(linear) input", before: before, after: zip(before, factors).map { $0 / $1 }))
        }
        guard !panels.isEmpty else { throw Failure.notSmoothed(path: file.path, layer: layer) }
        let alpha = file.quantizationInfo?["parameters"]?["alpha"]?.doubleValue.map { " (alpha \(Format.fixed($0, 2)))" } ?? ""
        title = "Per-channel activation max |x| before and after smoothing\(alpha)"
        self.panels = panels
    }

    static let width = 900.0, panelHeight = 280.0, left = 70.0, right = 20.0, top = 40.0, bottom = 40.0, header = 50.0

    /// The figure as a self-contained SVG document.
    public func render() -> String {
        let height = Self.header + Double(panels.count) * (Self.panelHeight + Self.top)
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(Self.width))" height="\(Int(height))" viewBox="0 0 \(Int(Self.width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Int(Self.width / 2))" y="26" text-anchor="middle" font-size="16">\(SVGPlot.escape(title))</text>

        """
        for (p, panel) in panels.enumerated() {
            let y0 = Self.header + Double(p) * (Self.panelHeight + Self.top) + Self.top
            let plotW = Self.width - Self.left - Self.right, plotH = Self.panelHeight - Self.bottom
            let hi = Double(max(panel.before.max() ?? 1, panel.after.max() ?? 1, 1e-9))
            let ticks = SVGPlot.ticks(0, hi)
            let top = max(hi, ticks.last ?? hi)
            func x(_ i: Int) -> Double { Self.left + (Double(i) + 0.5) / Double(max(1, panel.before.count)) * plotW }
            func y(_ v: Double) -> Double { y0 + plotH - v / top * plotH }
            s += "<text x=\"\(Int(Self.left))\" y=\"\(Format.fixed(y0 - 8, 1))\" font-size=\"13\">\(SVGPlot.escape(panel.title))</text>\n"
            for t in ticks {
                s += "<line x1=\"\(Int(Self.left))\" y1=\"\(Format.fixed(y(t), 1))\" x2=\"\(Int(Self.width - Self.right))\" y2=\"\(Format.fixed(y(t), 1))\" stroke=\"#e5e5e5\"/>\n"
                s += "<text x=\"\(Int(Self.left - 6))\" y=\"\(Format.fixed(y(t) + 4, 1))\" text-anchor=\"end\">\(SVGPlot.escape(SVGBarChart.tickText(t)))</text>\n"
            }
            s += "<line x1=\"\(Int(Self.left))\" y1=\"\(Format.fixed(y0 + plotH, 1))\" x2=\"\(Int(Self.width - Self.right))\" y2=\"\(Format.fixed(y0 + plotH, 1))\" stroke=\"black\"/>\n"
            s += "<text x=\"\(Int(Self.left + plotW / 2))\" y=\"\(Format.fixed(y0 + plotH + 28, 1))\" text-anchor=\"middle\">input channel (0 … \(panel.before.count - 1))</text>\n"
            for (series, color, label, offset) in [(panel.before, "#D55E00", "before smoothing", 0.0), (panel.after, "#0072B2", "after smoothing", 150.0)] {
                let points = series.enumerated().map { "\(Format.fixed(x($0.offset), 1)),\(Format.fixed(y(Double($0.element)), 1))" }.joined(separator: " ")
                s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.2\" points=\"\(points)\"/>\n"
                s += "<rect x=\"\(Format.fixed(Self.width - Self.right - 300 + offset, 1))\" y=\"\(Format.fixed(y0 - 18, 1))\" width=\"12\" height=\"12\" fill=\"\(color)\"/>\n"
                s += "<text x=\"\(Format.fixed(Self.width - Self.right - 284 + offset, 1))\" y=\"\(Format.fixed(y0 - 8, 1))\">\(label)</text>\n"
            }
        }
        return s + "</svg>\n"
    }
}
