/// GPT-2's pre-tokenization, as a hand-written scanner over valid UTF-8.
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
struct PreTokenizer {
    let text: UnsafePointer<UInt8>
    let end: Int
    private let bmp: UnsafePointer<UInt8>
    /// Start of the next piece.
    private(set) var position: Int

    /// Scans `text[start..<end]`, which must be valid UTF-8.
    init(text: UnsafePointer<UInt8>, start: Int, end: Int) {
        self.text = text
        self.end = end
        self.position = start
        self.bmp = PreTokenizer.bmpTable
    }

    /// `ScalarClass.bmp`, copied once to memory that lives as long as the process, so that the
    /// scanner can hold a plain pointer to it.
    private static let bmpTable: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 0x10000)
        ScalarClass.bmp.withUnsafeBufferPointer { table.initialize(from: $0.baseAddress!, count: 0x10000) }
        return UnsafePointer(table)
    }()

    /// The class of the scalar at byte `i` and its length in bytes.
    @inline(__always)
    private func classAt(_ i: Int) -> (cls: UInt8, length: Int) {
        let b0 = text[i]
        if b0 < 0x80 { return (bmp[Int(b0)], 1) }
        if b0 < 0xE0 {
            let v = Int(b0 & 0x1F) << 6 | Int(text[i + 1] & 0x3F)
            return (bmp[v], 2)
        }
        if b0 < 0xF0 {
            let v = Int(b0 & 0x0F) << 12 | Int(text[i + 1] & 0x3F) << 6 | Int(text[i + 2] & 0x3F)
            return (bmp[v], 3)
        }
        let v = UInt32(b0 & 0x07) << 18 | UInt32(text[i + 1] & 0x3F) << 12
            | UInt32(text[i + 2] & 0x3F) << 6 | UInt32(text[i + 3] & 0x3F)
        return (ScalarClass.compute(Unicode.Scalar(v)!), 4)
    }

    /// The end of the run of class `cls` that continues at byte `i`.
    @inline(__always)
    private func runEnd(_ cls: UInt8, from start: Int) -> Int {
        var i = start
        while i < end {
            let b = text[i]
            if b < 0x80 {
                if bmp[Int(b)] != cls { break }
                i += 1
            } else {
                let (c, length) = classAt(i)
                if c != cls { break }
                i += length
            }
        }
        return i
    }

    /// The next piece as a byte range, or nil at the end of the text.
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
            let (c, length) = classAt(i + 1)
            if c != ScalarClass.space { return runEnd(c, from: i + 1 + length) }
        }
        // 3. A run of letters, numbers or other scalars.
        let (c, length) = classAt(i)
        if c != ScalarClass.space { return runEnd(c, from: i + length) }
        // 4. White space.
        var lastStart = i
        var j = i + length
        while j < end {
            let (c, length) = classAt(j)
            if c != ScalarClass.space { break }
            lastStart = j
            j += length
        }
        if j == end { return end }
        return lastStart > i ? lastStart : j
    }
}
