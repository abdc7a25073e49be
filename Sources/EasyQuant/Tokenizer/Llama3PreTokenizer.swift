/// Llama 3's pre-tokenization (rule set `llama-bpe`) and Qwen2's (rule set `qwen2`), as a
/// hand-written scanner over valid UTF-8.
///
/// Llama 3 splits text with the pattern
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// and Qwen2 with the same pattern where `\p{N}{1,3}` is `\p{N}`. At each position the first
/// alternative that matches wins, which comes to these cases, in this order:
///
/// 1. `'` followed by `s t m d` or `re ve ll` in either case (`'S`, `'Ll`): a contraction.
///    Case-insensitive means ASCII only here, as in llama.cpp (`'[sS]|…`); the Rust regex of HF
///    tokenizers also folds U+017F (ſ) to s.
/// 2. A scalar that is not CR, LF or a number, followed by letters, or a letter: one optional
///    leading scalar (a space, a tab, punctuation, `'`…) and the longest run of letters.
/// 3. A number: up to `digitGroup` numbers (3 for Llama 3, 1 for Qwen2); a longer run is cut
///    into groups from its start ("12345" → "123" "45").
/// 4. An optional space and a run of other scalars, then every CR and LF that follow.
/// 5. White space, in a run that ends at j (the run is all white space, so cases 1–4 failed):
///    - if the run holds a CR or LF, up to and including the last of them (`\s*[\r\n]+`);
///    - else if it reaches the end of the text, the whole run;
///    - else if it has two or more scalars, all but the last (`\s+(?!\S)`), whose turn comes
///      next (and may lead a word by case 2);
///    - else the single scalar (`\s+`).
///
/// As for GPT-2, a match depends only on the text from its start on (see `TextSplitter`).
struct Llama3PreTokenizer: PieceScanner {
    private let reader: ScalarClassReader
    private let text: UnsafePointer<UInt8>
    private let end: Int
    private let digitGroup: Int
    private var position: Int

    init(text: UnsafePointer<UInt8>, start: Int, end: Int) {
        self.init(text: text, start: start, end: end, digitGroup: 3)
    }

    init(text: UnsafePointer<UInt8>, start: Int, end: Int, digitGroup: Int) {
        self.reader = ScalarClassReader(text: text)
        self.text = text
        self.end = end
        self.digitGroup = digitGroup
        self.position = start
    }

    @inline(__always)
    mutating func next() -> Range<Int>? {
        let i = position
        guard i < end else { return nil }
        let piece = i..<pieceEnd(from: i)
        position = piece.upperBound
        return piece
    }

    /// An ASCII byte in lower case (other bytes unchanged).
    @inline(__always)
    private func lower(_ b: UInt8) -> UInt8 { b &- 0x41 < 26 ? b | 0x20 : b }

    @inline(__always)
    private func isCROrLF(_ b: UInt8) -> Bool { b == 0x0A || b == 0x0D }

    @inline(__always)
    private func pieceEnd(from i: Int) -> Int {
        let b = text[i]
        // 1. Contractions, in either case.
        if b == UInt8(ascii: "'"), i + 1 < end {
            switch lower(text[i + 1]) {
            case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
                return i + 2
            case UInt8(ascii: "r"), UInt8(ascii: "v"):
                if i + 2 < end, lower(text[i + 2]) == UInt8(ascii: "e") { return i + 3 }
            case UInt8(ascii: "l"):
                if i + 2 < end, lower(text[i + 2]) == UInt8(ascii: "l") { return i + 3 }
            default:
                break
            }
        }
        let (c, length) = reader.classAt(i)
        // 2. [^\r\n\p{L}\p{N}]?\p{L}+
        if c == ScalarClass.letter { return reader.runEnd(ScalarClass.letter, from: i + length, end: end) }
        if c != ScalarClass.number, !isCROrLF(b), i + length < end {
            let (c2, length2) = reader.classAt(i + length)
            if c2 == ScalarClass.letter { return reader.runEnd(ScalarClass.letter, from: i + length + length2, end: end) }
        }
        // 3. \p{N}{1,digitGroup}
        if c == ScalarClass.number {
            var j = i + length
            var count = 1
            while count < digitGroup, j < end {
                let (c2, length2) = reader.classAt(j)
                if c2 != ScalarClass.number { break }
                j += length2
                count += 1
            }
            return j
        }
        // 4. ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var otherStart = -1
        if c == ScalarClass.other {
            otherStart = i + length
        } else if b == 0x20, i + 1 < end {
            let (c2, length2) = reader.classAt(i + 1)
            if c2 == ScalarClass.other { otherStart = i + 1 + length2 }
        }
        if otherStart >= 0 {
            var j = reader.runEnd(ScalarClass.other, from: otherStart, end: end)
            while j < end, isCROrLF(text[j]) { j += 1 }
            return j
        }
        // 5. White space (c is space here).
        var lastStart = i
        var lastNewlineEnd = isCROrLF(b) ? i + 1 : -1
        var j = i + length
        while j < end {
            let (c2, length2) = reader.classAt(j)
            if c2 != ScalarClass.space { break }
            if isCROrLF(text[j]) { lastNewlineEnd = j + 1 }
            lastStart = j
            j += length2
        }
        if lastNewlineEnd >= 0 { return lastNewlineEnd }
        if j == end { return end }
        return lastStart > i ? lastStart : j
    }
}

/// Qwen2's scanner: Llama 3's with numbers one at a time.
struct Qwen2PreTokenizer: PieceScanner {
    private var scanner: Llama3PreTokenizer

    init(text: UnsafePointer<UInt8>, start: Int, end: Int) {
        scanner = Llama3PreTokenizer(text: text, start: start, end: end, digitGroup: 1)
    }

    @inline(__always)
    mutating func next() -> Range<Int>? { scanner.next() }
}
