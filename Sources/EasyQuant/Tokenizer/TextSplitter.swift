/// Cuts a text into parts that encode independently to the same ids as the whole, for each
/// rule set.
///
/// A cut at byte q is safe when q starts a piece in the whole text, the part before q ends
/// with the same pieces as the whole text has there, and the part from q on is scanned as
/// before. The last holds for every q, since no rule looks behind its start. A match that ends
/// before q - 1 has looked at no byte from q on (the runs and look-aheads of every pattern stop
/// at the first byte that does not belong), so only the piece that ends at q needs checking.
/// Below, "printable" means ASCII `!`…`~`; x = text[q-1] and y = text[q+1].
///
/// **gpt2**, two kinds of cut:
/// * q at a space with printable x and y (`x y`, the common case). The piece holding x ends at
///   q in the whole text: a run of letters, numbers or symbols stops at white space, and a
///   contraction lies in non-space bytes. Cut there, it ends at the end of the part instead,
///   the same place; a contraction test at q-1 or q-2 fails in both (it would need `s`, `e`, …
///   where there is a space or the end). The part from q begins " y…", as before.
/// * q at a newline with printable y (`\n` then `y`). In the whole text the white-space run
///   holding text[q] ends at q+1; `\s+(?!\S)` stops one scalar short of that end, at q, or, if
///   the run is text[q] alone, the piece before stopped at q because only a leading U+0020 joins
///   white space to a following run. Cut there, the run before q reaches the end of the part
///   and is one piece, the same one `\s+(?!\S)` gave in the whole.
///
/// **smollm** isolates every number scalar first and applies gpt2's rules to each stretch in
/// between; a cut adds one stretch boundary and leaves the others. The space cut is safe as for
/// gpt2 (if y is a digit, the stretch ends at q+1 and the space is a piece alone either way; if x
/// is a digit, q already starts a stretch). The newline cut needs y not to be a digit: before a
/// digit the stretch ends at q+1, and the whole white-space run up to it would be one piece.
///
/// **llama-bpe** and **qwen2**:
/// * q at a space with printable x and y. The piece holding x ends at q: a letter run
///   (`[^\r\n\p{L}\p{N}]?\p{L}+`) stops at the space, a number group at the end of its run (the
///   groups count from the run's start, which lies before q in both), a symbol run
///   (` ?[^\s\p{L}\p{N}]+[\r\n]*`) at the space (its `[\r\n]*` stops there too), and a
///   contraction is in non-space bytes. From q, " y…" starts a piece in both.
/// * q at a newline with x an ASCII letter or digit and printable y. The piece holding x ends at
///   q (a letter run or number group stops at a newline). In the whole text the white-space run
///   from q is the newline alone, and `\s*[\r\n]+` makes it a piece; cut there the same. (After a
///   symbol, `[\r\n]*` would take the newline into the symbol's piece, so x must not be one.)
///
/// BPE works on each piece alone, so equal pieces give equal ids.
enum TextSplitter {
    @inline(__always)
    private static func isPrintableASCII(_ b: UInt8) -> Bool { b > 0x20 && b < 0x7F }

    @inline(__always)
    private static func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

    @inline(__always)
    private static func isAlphanumericASCII(_ b: UInt8) -> Bool { isDigit(b) || (b | 0x20) &- 0x61 < 26 }

    /// Whether a cut before byte q (0 < q < count - 1) is safe by the rules above.
    @inline(__always)
    static func isSafeCut(_ text: UnsafePointer<UInt8>, _ q: Int, rules: PreTokenizerRules) -> Bool {
        switch text[q] {
        case 0x20:
            return isPrintableASCII(text[q - 1]) && isPrintableASCII(text[q + 1])
        case 0x0A:
            switch rules {
            case .gpt2: return isPrintableASCII(text[q + 1])
            case .smollm: return isPrintableASCII(text[q + 1]) && !isDigit(text[q + 1])
            case .llamaBPE, .qwen2: return isAlphanumericASCII(text[q - 1]) && isPrintableASCII(text[q + 1])
            }
        default:
            return false
        }
    }

    /// The first safe cut at or after `q` (with `from` < q), or nil if there is none before the
    /// last byte of `text[..<end]`.
    static func nextSafeCut(_ text: UnsafePointer<UInt8>, from q: Int, end: Int, rules: PreTokenizerRules) -> Int? {
        var q = max(q, 1)
        while q + 1 < end {
            if isSafeCut(text, q, rules: rules) { return q }
            q += 1
        }
        return nil
    }
}
