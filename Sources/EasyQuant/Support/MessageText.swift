/// Text taken from a file (a tensor name, a key, a dtype), made fit for a one-line message.
///
/// A hostile file can name a tensor "a\nb" or give it a megabyte-long name; the error that
/// quotes it must still be one readable line.
public enum MessageText {
    /// Longest text quoted in full, in Unicode scalars; longer text is cut with "…".
    public static let maxScalars = 120

    /// `text` with control characters escaped (`\n`, `\u{7f}`) and cut to `maxScalars`.
    public static func clean(_ text: String) -> String { clean(text, limit: maxScalars) }

    /// A path (typed by the user, so never cut) with its control characters escaped.
    public static func path(_ text: String) -> String { clean(text, limit: Int.max) }

    /// A whole message with any control character left in it escaped, never cut: the last
    /// guarantee that an error description is one line, whatever text went into it.
    public static func oneLine(_ text: String) -> String { clean(text, limit: Int.max) }

    static func clean(_ text: String, limit: Int) -> String {
        // Most text needs nothing: return it as it is.
        if text.utf8.count <= limit, !text.unicodeScalars.contains(where: needsEscape) { return text }
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit { out += "…"; break }
            count += 1
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if needsEscape(scalar) {
                    out += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// C0 and C1 controls, and the line and paragraph separators.
    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029
    }
}
