/// Text taken from a file (a tensor name, a key, a dtype), made fit for a one-line message.
///
/// A hostile file can name a tensor "a\nb" or give it a megabyte-long name; the error that
/// quotes it must still be one readable line.
public enum MessageText {
    /// Longest text quoted in full, in Unicode scalars; longer text is cut with "…".
    public static let maxScalars = 120

    /// `text` with control characters escaped (`\n`, `\u{7f}`) and cut to `maxScalars`.
    public static func clean(_ text: String) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == maxScalars { out += "…"; break }
            count += 1
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let v = scalar.value
                // C0 and C1 controls, and the line and paragraph separators.
                if v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029 {
                    out += "\\u{" + String(v, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
