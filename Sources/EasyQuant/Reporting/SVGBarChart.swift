/// A horizontal bar chart as a self-contained SVG: one labelled bar per row, a value axis
/// with ticks, a title. For the method comparison (perplexity change against f32 per method).
public struct SVGBarChart: Sendable {
    public struct Bar: Sendable {
        public var label: String
        public var value: Double
        /// Text printed at the end of the bar.
        public var annotation: String
        public init(label: String, value: Double, annotation: String) {
            self.label = label; self.value = value; self.annotation = annotation
        }
    }

    public var title: String
    public var axisLabel: String
    public var bars: [Bar]

    public init(title: String, axisLabel: String, bars: [Bar]) {
        self.title = title; self.axisLabel = axisLabel; self.bars = bars
    }

    static let labelWidth = 300.0, plotWidth = 520.0, rightMargin = 120.0
    static let barHeight = 22.0, gap = 8.0, top = 56.0, bottom = 56.0

    public func render() -> String {
        let values = bars.map(\.value).filter(\.isFinite)
        let lo = min(0, values.min() ?? 0), hi = max(0, values.max() ?? 1)
        let ticks = SVGPlot.ticks(lo, hi == lo ? lo + 1 : hi)
        let axisLo = min(lo, ticks.first ?? lo), axisHi = max(hi, ticks.last ?? hi)
        func x(_ v: Double) -> Double { Self.labelWidth + (v - axisLo) / (axisHi - axisLo) * Self.plotWidth }
        let height = Self.top + Double(bars.count) * (Self.barHeight + Self.gap) + Self.bottom
        let width = Self.labelWidth + Self.plotWidth + Self.rightMargin
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Int(width / 2))" y="28" text-anchor="middle" font-size="16">\(SVGPlot.escape(title))</text>

        """
        let plotBottom = height - Self.bottom
        for t in ticks {
            let tx = Format.fixed(x(t), 1)
            s += "<line x1=\"\(tx)\" y1=\"\(Int(Self.top - 6))\" x2=\"\(tx)\" y2=\"\(Format.fixed(plotBottom, 1))\" stroke=\"#dddddd\"/>\n"
            s += "<text x=\"\(tx)\" y=\"\(Format.fixed(plotBottom + 18, 1))\" text-anchor=\"middle\">\(SVGPlot.escape(Self.tickText(t)))</text>\n"
        }
        let zero = Format.fixed(x(0), 1)
        s += "<line x1=\"\(zero)\" y1=\"\(Int(Self.top - 6))\" x2=\"\(zero)\" y2=\"\(Format.fixed(plotBottom, 1))\" stroke=\"black\"/>\n"
        s += "<text x=\"\(Format.fixed(Self.labelWidth + Self.plotWidth / 2, 1))\" y=\"\(Format.fixed(plotBottom + 42, 1))\" text-anchor=\"middle\">\(SVGPlot.escape(axisLabel))</text>\n"
        for (i, bar) in bars.enumerated() {
            let y = Self.top + Double(i) * (Self.barHeight + Self.gap)
            let mid = Format.fixed(y + Self.barHeight / 2 + 4, 1)
            s += "<text x=\"\(Format.fixed(Self.labelWidth - 8, 1))\" y=\"\(mid)\" text-anchor=\"end\">\(SVGPlot.escape(bar.label))</text>\n"
            guard bar.value.isFinite else { continue }
            let x0 = x(min(0, bar.value)), x1 = x(max(0, bar.value))
            s += "<rect x=\"\(Format.fixed(x0, 1))\" y=\"\(Format.fixed(y, 1))\" width=\"\(Format.fixed(max(1, x1 - x0), 1))\" height=\"\(Format.fixed(Self.barHeight, 1))\" fill=\"\(bar.value > 0 ? "#D55E00" : "#0072B2")\"/>\n"
            s += "<text x=\"\(Format.fixed(max(x1, x(0)) + 6, 1))\" y=\"\(mid)\">\(SVGPlot.escape(bar.annotation))</text>\n"
        }
        return s + "</svg>\n"
    }

    static func tickText(_ v: Double) -> String {
        let a = abs(v)
        if a == 0 { return "0" }
        if a >= 100 { return Format.fixed(v, 0) }
        if a >= 1 { return Format.fixed(v, 1) }
        return Format.fixed(v, 2)
    }
}
