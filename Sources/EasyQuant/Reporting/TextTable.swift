/// An aligned plain-text table: what people read on a terminal.
public struct TextTable {
    public enum Alignment { case left, right }
    public struct Column {
        public var title: String
        public var alignment: Alignment
        public init(_ title: String, _ alignment: Alignment = .right) { self.title = title; self.alignment = alignment }
    }

    public var columns: [Column]
    public var rows: [[String]] = []

    public init(_ columns: [Column]) { self.columns = columns }

    public mutating func add(_ row: [String]) {
        precondition(row.count == columns.count, "row has \(row.count) cells, table has \(columns.count) columns")
        rows.append(row)
    }

    /// The table with a header line and a rule under it; columns two spaces apart.
    public func render() -> String {
        var widths = columns.map { $0.title.count }
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, cell) in cells.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                parts.append(columns[i].alignment == .left ? cell + pad : pad + cell)
            }
            var s = parts.joined(separator: "  ")
            while s.hasSuffix(" ") { s.removeLast() }
            return s
        }
        var out = [line(columns.map(\.title)), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        out += rows.map(line)
        return out.joined(separator: "\n") + "\n"
    }

    /// Two aligned columns of label and value, no header: for summaries.
    public static func keyValue(_ pairs: [(String, String)]) -> String {
        let width = pairs.map(\.0.count).max() ?? 0
        return pairs.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 }.joined(separator: "\n") + "\n"
    }
}

/// Number formats for reports.
public enum Format {
    /// Bytes with a decimal unit: 512 B, 4.2 kB, 12.6 MB, 1.52 GB.
    public static func bytes(_ n: Int) -> String {
        let v = Double(n)
        if n < 1000 { return "\(n) B" }
        if v < 1e6 { return fixed(v / 1e3, 1) + " kB" }
        if v < 1e9 { return fixed(v / 1e6, 1) + " MB" }
        return fixed(v / 1e9, 2) + " GB"
    }

    /// `x` with exactly `digits` decimals.
    public static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        var p = 1.0
        for _ in 0..<digits { p *= 10 }
        let r = (abs(x) * p).rounded() / p
        var s = String(Int64(r))
        if digits > 0 {
            var frac = String(Int64(((r - r.rounded(.down)) * p).rounded()))
            while frac.count < digits { frac = "0" + frac }
            s += "." + frac
        }
        return (x < 0 && r != 0 ? "-" : "") + s
    }

    /// A number in scientific notation with `digits` significant decimals, for small errors.
    public static func scientific(_ x: Double, _ digits: Int = 3) -> String {
        guard x != 0, x.isFinite else { return x == 0 ? "0" : fixed(x, 0) }
        var e = Int(log10(abs(x)).rounded(.down))
        var m = x / pow10(e)
        if abs(m) >= 9.9995 { m /= 10; e += 1 }
        return fixed(m, digits) + "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
    }

    static func pow10(_ e: Int) -> Double {
        var r = 1.0
        for _ in 0..<abs(e) { r *= 10 }
        return e < 0 ? 1 / r : r
    }

    /// Seconds as "0.42 s", "12.3 s", "3 min 05 s".
    public static func duration(_ s: Double) -> String {
        if s < 10 { return fixed(s, 2) + " s" }
        if s < 100 { return fixed(s, 1) + " s" }
        let m = Int(s) / 60, r = Int(s) % 60
        return "\(m) min \(r < 10 ? "0" : "")\(r) s"
    }
}

#if canImport(Glibc)
import Glibc
#endif
