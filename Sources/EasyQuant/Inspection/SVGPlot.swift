import Foundation

/// Overlaid histograms drawn as a self-contained SVG document: one panel per tensor, each
/// series (e.g. "original", "quantized") a step outline over the same bins, with axes,
/// ticks, a legend and a title. No fonts, scripts or external files are referenced, so the
/// file displays the same in a browser, an editor or a document.
public struct SVGPlot: Sendable {
    /// One histogram in a panel; series with the same index share a colour across panels.
    public struct Series: Sendable {
        /// Legend text.
        public var label: String
        /// The counts to draw.
        public var histogram: Histogram
        /// A series.
        public init(label: String, histogram: Histogram) { self.label = label; self.histogram = histogram }
    }

    /// One set of axes.
    public struct Panel: Sendable {
        /// Text above the panel (the tensor's name).
        public var title: String
        /// The histograms drawn over each other.
        public var series: [Series]
        /// A panel.
        public init(title: String, series: [Series]) { self.title = title; self.series = series }
    }

    /// Text above the figure.
    public var title: String
    /// Panels, laid out row by row.
    public var panels: [Panel]
    /// Label of every x axis.
    public var xLabel: String
    /// Label of every y axis.
    public var yLabel: String
    /// Panels per row.
    public var columns: Int

    /// A figure of `panels` under `title`.
    public init(title: String, panels: [Panel], xLabel: String = "weight value",
                yLabel: String = "share of weights (%)", columns: Int = 2) {
        self.title = title; self.panels = panels; self.xLabel = xLabel; self.yLabel = yLabel
        self.columns = max(1, columns)
    }

    /// Colour-blind-safe colours (Okabe–Ito); the first series is filled, the others outlined.
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]

    // Geometry, in SVG user units (pixels).
    static let panelWidth = 480.0, panelHeight = 320.0
    static let marginLeft = 72.0, marginRight = 18.0, marginTop = 30.0, marginBottom = 52.0
    static let headerHeight = 64.0

    /// The SVG document.
    public func render() -> String {
        let cols = max(1, min(columns, panels.count))
        let rows = (panels.count + cols - 1) / cols
        let width = Double(cols) * Self.panelWidth
        let height = Self.headerHeight + Double(max(rows, 1)) * Self.panelHeight
        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" viewBox="0 0 \(n(width)) \(n(height))" font-family="Helvetica, Arial, sans-serif">

        """
        s += "<title>\(Self.escape(title))</title>\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"#ffffff\"/>\n"
        s += "<text x=\"\(n(width / 2))\" y=\"26\" text-anchor=\"middle\" font-size=\"18\" font-weight=\"bold\">\(Self.escape(title))</text>\n"
        s += legend(width: width)
        for (i, panel) in panels.enumerated() {
            let x0 = Double(i % cols) * Self.panelWidth, y0 = Self.headerHeight + Double(i / cols) * Self.panelHeight
            s += draw(panel, x0: x0, y0: y0)
        }
        s += "</svg>\n"
        return s
    }

    /// Series labels with their colours, centred under the title.
    private func legend(width: Double) -> String {
        let labels = panels.first?.series.map(\.label) ?? []
        guard !labels.isEmpty else { return "" }
        let itemWidth = 150.0
        var x = width / 2 - itemWidth * Double(labels.count) / 2
        var s = "<g class=\"legend\">\n"
        for (i, label) in labels.enumerated() {
            let colour = Self.palette[i % Self.palette.count]
            let fill = i == 0 ? "fill=\"\(colour)\" fill-opacity=\"0.35\"" : "fill=\"none\""
            s += "<rect x=\"\(n(x))\" y=\"38\" width=\"18\" height=\"12\" \(fill) stroke=\"\(colour)\" stroke-width=\"1.5\"/>\n"
            s += "<text x=\"\(n(x + 24))\" y=\"49\" font-size=\"13\">\(Self.escape(label))</text>\n"
            x += itemWidth
        }
        return s + "</g>\n"
    }

    private func draw(_ panel: Panel, x0: Double, y0: Double) -> String {
        let left = x0 + Self.marginLeft, right = x0 + Self.panelWidth - Self.marginRight
        let top = y0 + Self.marginTop, bottom = y0 + Self.panelHeight - Self.marginBottom
        let xLo = panel.series.map(\.histogram.lower).min() ?? 0
        let xHi = panel.series.map(\.histogram.upper).max() ?? 1
        let peak = panel.series.flatMap { h in (0..<h.histogram.bins).map { h.histogram.share(ofBin: $0) * 100 } }.max() ?? 0
        let yTicks = Self.ticks(0, peak > 0 ? peak * 1.05 : 1)
        let yHi = max(yTicks.last ?? 1, peak > 0 ? peak * 1.05 : 1)
        let xTicks = Self.ticks(xLo, xHi)
        func px(_ x: Double) -> Double { left + (x - xLo) / (xHi - xLo) * (right - left) }
        func py(_ y: Double) -> Double { bottom - y / yHi * (bottom - top) }

        var s = "<g class=\"panel\">\n"
        s += "<text x=\"\((n((left + right) / 2)))\" y=\"\(n(y0 + 18))\" text-anchor=\"middle\" font-size=\"13\">\(Self.escape(panel.title))</text>\n"
        // Grid and ticks first, so the histograms draw over them.
        let xDigits = Self.decimals(for: xTicks), yDigits = Self.decimals(for: yTicks)
        for t in yTicks where t <= yHi {
            s += "<line x1=\"\(n(left))\" y1=\"\(n(py(t)))\" x2=\"\(n(right))\" y2=\"\(n(py(t)))\" stroke=\"#e4e4e4\" stroke-width=\"1\"/>\n"
            s += "<text x=\"\(n(left - 6))\" y=\"\(n(py(t) + 4))\" text-anchor=\"end\" font-size=\"11\">\(Self.label(t, yDigits))</text>\n"
        }
        for t in xTicks where t >= xLo && t <= xHi {
            s += "<line x1=\"\(n(px(t)))\" y1=\"\(n(bottom))\" x2=\"\(n(px(t)))\" y2=\"\(n(bottom + 5))\" stroke=\"#333333\" stroke-width=\"1\"/>\n"
            s += "<text x=\"\(n(px(t)))\" y=\"\(n(bottom + 18))\" text-anchor=\"middle\" font-size=\"11\">\(Self.label(t, xDigits))</text>\n"
        }
        for (i, series) in panel.series.enumerated() {
            let h = series.histogram
            let colour = Self.palette[i % Self.palette.count]
            // A step outline closed down to the baseline: bin tops joined by verticals.
            var d = "M\(n(px(h.lower))),\(n(py(0)))"
            for b in 0..<h.bins {
                let (a, z) = h.range(ofBin: b)
                let y = py(h.share(ofBin: b) * 100)
                d += " L\(n(px(a))),\(n(y)) L\(n(px(z))),\(n(y))"
            }
            d += " L\(n(px(h.upper))),\(n(py(0))) Z"
            let paint = i == 0 ? "fill=\"\(colour)\" fill-opacity=\"0.35\" stroke=\"\(colour)\" stroke-width=\"1\""
                               : "fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.4\""
            s += "<path class=\"histogram\" data-series=\"\(Self.escape(series.label))\" d=\"\(d)\" \(paint)/>\n"
        }
        // Axes on top.
        s += "<line x1=\"\(n(left))\" y1=\"\(n(bottom))\" x2=\"\(n(right))\" y2=\"\(n(bottom))\" stroke=\"#333333\" stroke-width=\"1\"/>\n"
        s += "<line x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(bottom))\" stroke=\"#333333\" stroke-width=\"1\"/>\n"
        s += "<text x=\"\(n((left + right) / 2))\" y=\"\(n(bottom + 38))\" text-anchor=\"middle\" font-size=\"12\">\(Self.escape(xLabel))</text>\n"
        let yMid = (top + bottom) / 2, yLabelX = x0 + 16
        s += "<text x=\"\(n(yLabelX))\" y=\"\(n(yMid))\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 \(n(yLabelX)) \(n(yMid)))\">\(Self.escape(yLabel))</text>\n"
        return s + "</g>\n"
    }

    /// Tick positions at a "nice" step (1, 2 or 5 times a power of ten) covering lo...hi,
    /// about five of them.
    public static func ticks(_ lo: Double, _ hi: Double, target: Int = 5) -> [Double] {
        guard lo.isFinite, hi.isFinite, hi > lo else { return [lo.isFinite ? lo : 0] }
        let raw = (hi - lo) / Double(target)
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        // The nice step whose tick count comes closest to the target (ties: the larger step).
        func tickCount(_ step: Double) -> Int { Int((hi / step).rounded(.down) - (lo / step).rounded(.up)) + 1 }
        let step = [20.0, 10, 5, 2, 1].map { $0 * magnitude }.min { abs(tickCount($0) - target) < abs(tickCount($1) - target) }!
        var t = (lo / step).rounded(.up) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9, out.count < 100 {
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return out
    }

    /// Decimals that tell consecutive ticks apart.
    static func decimals(for ticks: [Double]) -> Int {
        guard ticks.count >= 2 else { return 2 }
        let step = abs(ticks[1] - ticks[0])
        return max(0, min(8, Int((-log10(step)).rounded(.up))))
    }

    /// A tick label: fixed decimals for ordinary ranges, scientific notation for the extreme
    /// values a damaged or unusual tensor can have (fixed notation would need 30 digits).
    static func label(_ x: Double, _ digits: Int) -> String {
        if x != 0 && (abs(x) >= 1e6 || abs(x) < 1e-6) || digits > 6 { return Format.scientific(x, 2) }
        return Format.fixed(x, digits)
    }

    /// Text made safe for XML character data and attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        for ch in text.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // Control characters other than tab and newline are not allowed in XML 1.0.
                if ch.value < 0x20 && ch != "\t" && ch != "\n" { out += "?" } else { out.unicodeScalars.append(ch) }
            }
        }
        return out
    }

    /// A coordinate with two decimals, trailing zeros dropped.
    private func n(_ x: Double) -> String {
        var s = Format.fixed(x, 2)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s == "-0" ? "0" : s
    }
}
