import Foundation

/// Counts of values in equal-width bins over a fixed range.
///
/// The range is fixed up front so that two tensors (an original and its dequantized copy)
/// binned over the same range can be drawn on top of each other; values outside it are
/// counted in `below` / `above`, NaN and infinities in `nonFinite`.
public struct Histogram: Equatable, Sendable {
    /// Lower end of the range (of the first bin).
    public let lower: Double
    /// Upper end of the range (included in the last bin).
    public let upper: Double
    /// Values per bin.
    public private(set) var counts: [Int]
    /// Finite values below `lower`.
    public private(set) var below = 0
    /// Finite values above `upper`.
    public private(set) var above = 0
    /// NaN and infinite values.
    public private(set) var nonFinite = 0

    /// `bins` bins over `lower...upper`. An empty or inverted range is widened around `lower`
    /// (a constant tensor still gets a drawable histogram, its one value in the middle bin).
    public init(lower: Double, upper: Double, bins: Int) {
        precondition(bins >= 1, "a histogram needs at least one bin")
        var lo = lower.isFinite ? lower : 0, hi = upper.isFinite ? upper : lo
        if !(hi > lo) {
            let pad = Swift.max(abs(lo), 1) * 0.5
            lo -= pad; hi = lo + 2 * pad
        }
        self.lower = lo
        self.upper = hi
        counts = [Int](repeating: 0, count: bins)
    }

    /// Number of bins.
    public var bins: Int { counts.count }
    /// Width of every bin.
    public var binWidth: Double { (upper - lower) / Double(counts.count) }

    /// Values inside the range (all bins).
    public var inRange: Int { counts.reduce(0, +) }
    /// Every value added.
    public var total: Int { inRange + below + above + nonFinite }

    /// The bin `x` falls into, or nil outside the range; `upper` itself goes into the last bin.
    @inline(__always) public func bin(of x: Double) -> Int? {
        guard x >= lower, x <= upper else { return nil }
        return Swift.min(counts.count - 1, Int((x - lower) / (upper - lower) * Double(counts.count)))
    }

    /// Adds values.
    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        let n = counts.count
        let lo = lower, hi = upper, perUnit = Double(n) / (upper - lower)
        counts.withUnsafeMutableBufferPointer { c in
            for v in values {
                let x = Double(v)
                if !x.isFinite { nonFinite += 1 } else if x < lo { below += 1 } else if x > hi { above += 1 } else {
                    c[Swift.min(n - 1, Int((x - lo) * perUnit))] += 1
                }
            }
        }
    }

    /// Adds values.
    public mutating func add(_ values: [Float]) { values.withUnsafeBufferPointer { add($0) } }

    /// The bounds of bin `i`.
    public func range(ofBin i: Int) -> (lower: Double, upper: Double) {
        (lower + Double(i) * binWidth, i == counts.count - 1 ? upper : lower + Double(i + 1) * binWidth)
    }

    /// Share of all added values in bin `i` (0 for an empty histogram).
    public func share(ofBin i: Int) -> Double { total == 0 ? 0 : Double(counts[i]) / Double(total) }

    /// The histogram as aligned text: one line per bin with its range, a bar scaled to the
    /// fullest bin (`width` characters, eighth-block precision) and its count and share.
    public func renderText(width: Int = 40) -> String {
        let peak = counts.max() ?? 0
        let edges = (0...counts.count).map { i -> String in
            let x = i == counts.count ? upper : lower + Double(i) * binWidth
            return Format.scientific(x, 3)
        }
        let edgeWidth = edges.map(\.count).max() ?? 0
        let countWidth = String(peak).count
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: Swift.max(0, w - s.count)) + s }
        let eighths = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        var lines: [String] = []
        for i in 0..<counts.count {
            let units = peak == 0 ? 0 : Int((Double(counts[i]) / Double(peak) * Double(width * 8)).rounded())
            var bar = String(repeating: "█", count: units / 8) + eighths[units % 8]
            bar += String(repeating: " ", count: width - bar.count)
            lines.append("\(pad(edges[i], edgeWidth)) .. \(pad(edges[i + 1], edgeWidth)) │\(bar)│ \(pad(String(counts[i]), countWidth))  \(pad(Format.fixed(share(ofBin: i) * 100, 2), 6))%")
        }
        var notes: [String] = []
        if below > 0 { notes.append("\(below) below the range") }
        if above > 0 { notes.append("\(above) above the range") }
        if nonFinite > 0 { notes.append("\(nonFinite) NaN or infinite") }
        if !notes.isEmpty { lines.append("(" + notes.joined(separator: ", ") + ")") }
        return lines.joined(separator: "\n") + "\n"
    }
}
