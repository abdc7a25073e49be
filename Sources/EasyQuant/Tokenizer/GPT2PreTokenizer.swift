/// GPT-2's pre-tokenization (rule set `gpt2`), as a hand-written scanner over valid UTF-8.
///
/// GPT-2 splits text with the pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// (leftmost match, first alternative that matches) and runs BPE on each piece separately.
/// Every scalar is a letter, a number, white space or "other" (see `ScalarClass`), so at any
/// position exactly one of these cases applies, in this order:
///
/// 1. `'` followed by `s t m d` or `re ve ll` (lower case only): a 2- or 3-byte contraction.
/// 2. A space (U+0020 only) followed by a non-space scalar of class C: the space plus the
///    longest run of class C (`' ?\p{L}+'`, `' ?\p{N}+'`, `' ?[^\s\p{L}\p{N}]+'`).
/// 3. A letter, number or other scalar: the longest run of its class. A `'` that does not start
///    a contraction is "other", so `?'s` is `?'` then `s`.
/// 4. White space, in a run that ends at position j:
///    - if the run reaches the end of the text, the whole run (`\s+(?!\S)` succeeds at once);
///    - else if it has two or more scalars, all but the last (`\s+` backtracks one scalar so that
///      the look-ahead sees white space); the last one then starts the next piece, which is
///      case 2 if it is a space (" word") or a single white-space piece otherwise;
///    - else the single scalar (`\s+(?!\S)` cannot match, `\s+` takes it).
///
/// The match at a position depends only on the text from there on (there is no look-behind),
/// which is what makes splitting a text for parallel encoding possible (see `TextSplitter`).
/// llama.cpp's version of the pattern drops the final `\s+`; its case 4 then falls to the
/// same single scalar, so the pieces are the same.
struct GPT2PreTokenizer: PieceScanner {
    private let reader: ScalarClassReader
    private let text: UnsafePointer<UInt8>
    let end: Int
    /// Start of the next piece.
    private(set) var position: Int

    /// Scans `text[start..<end]`, which must be valid UTF-8.
    init(text: UnsafePointer<UInt8>, start: Int, end: Int) {
        self.reader = ScalarClassReader(text: text)
        self.text = text
        self.end = end
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

    @inline(__always)
    private func pieceEnd(from i: Int) -> Int {
        let b = text[i]
        // 1. Contractions.
        if b == UInt8(ascii: "'"), i + 1 < end {
            switch text[i + 1] {
            case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
                return i + 2
            case UInt8(ascii: "r"), UInt8(ascii: "v"):
                if i + 2 < end, text[i + 2] == UInt8(ascii: "e") { return i + 3 }
            case UInt8(ascii: "l"):
                if i + 2 < end, text[i + 2] == UInt8(ascii: "l") { return i + 3 }
            default:
                break
            }
        }
        // 2. A space that leads a run of letters, numbers or other scalars.
        if b == 0x20, i + 1 < end {
            let (c, length) = reader.classAt(i + 1)
            if c != ScalarClass.space { return reader.runEnd(c, from: i + 1 + length, end: end) }
        }
        // 3. A run of letters, numbers or other scalars.
        let (c, length) = reader.classAt(i)
        if c != ScalarClass.space { return reader.runEnd(c, from: i + length, end: end) }
        // 4. White space.
        var lastStart = i
        var j = i + length
        while j < end {
            let (c, length) = reader.classAt(j)
            if c != ScalarClass.space { break }
            lastStart = j
            j += length
        }
        if j == end { return end }
        return lastStart > i ? lastStart : j
    }
}

/// SmolLM's pre-tokenization (rule set `smollm`): every number scalar (`\p{N}`) is a piece of
/// its own, and the text between two of them is cut by GPT-2's rules as if it were a whole
/// text (llama.cpp applies `\p{N}` and then GPT-2's pattern to each remaining stretch; HF's
/// `Digits(individual_digits)` followed by `ByteLevel` does the same).
///
/// So a space before a digit stays alone (" 5" is " " and "5"), and white space that runs up
/// to a digit is one piece (GPT-2's `\s+(?!\S)` sees the end of its stretch there).
struct SmolLMPreTokenizer: PieceScanner {
    private let reader: ScalarClassReader
    private let end: Int
    /// The GPT-2 scanner over the current stretch without numbers.
    private var stretch: GPT2PreTokenizer

    init(text: UnsafePointer<UInt8>, start: Int, end: Int) {
        self.reader = ScalarClassReader(text: text)
        self.end = end
        self.stretch = GPT2PreTokenizer(text: text, start: start, end: start)
        self.stretch = GPT2PreTokenizer(text: text, start: start, end: nextNumber(from: start))
    }

    /// The offset of the first number scalar at or after `i`, or `end`.
    private func nextNumber(from start: Int) -> Int {
        var i = start
        while i < end {
            let (c, length) = reader.classAt(i)
            if c == ScalarClass.number { return i }
            i += length
        }
        return end
    }

    @inline(__always)
    mutating func next() -> Range<Int>? {
        if let piece = stretch.next() { return piece }
        let i = stretch.end
        guard i < end else { return nil }
        // The stretch ended at a number scalar: it is a piece alone.
        let j = i + reader.classAt(i).length
        stretch = GPT2PreTokenizer(text: reader.text, start: j, end: nextNumber(from: j))
        return i..<j
    }
}
