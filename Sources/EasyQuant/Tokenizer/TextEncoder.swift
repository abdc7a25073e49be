/// Encodes runs of text for one thread: pre-tokenizes, then turns each piece into ids by the
/// cheapest route that gives the exact BPE result.
///
/// 1. A one-byte piece is its byte token.
/// 2. A piece that is itself a token, and whose bytes BPE would merge back into that very token
///    (checked for every token when the tokenizer is built: `wholeTokens`), is that token. Most
///    words of running text end here after a single hash lookup.
/// 3. A piece seen before in this call is copied from the cache.
/// 4. Anything else goes through `BPEMerger` and into the cache.
final class TextEncoder {
    private let wholeTokens: ByteStringTable
    private let byteTokens: [Int32]
    private let merger: BPEMerger
    private let cache = ByteStringTable(expectedCount: 4096)
    private var scratch: [Int32] = []

    /// The cache is dropped when its keys pass this size, to bound memory on huge inputs.
    static let cacheLimitBytes = 64 << 20

    init(wholeTokens: ByteStringTable, byteTokens: [Int32], merges: MergeTable) {
        self.wholeTokens = wholeTokens
        self.byteTokens = byteTokens
        self.merger = BPEMerger(merges: merges, byteTokens: byteTokens)
    }

    /// Appends the ids of `text[start..<end]` (valid UTF-8) to `out`.
    func encode(_ text: UnsafePointer<UInt8>, from start: Int, to end: Int, into out: inout [Int32]) {
        var scanner = PreTokenizer(text: text, start: start, end: end)
        byteTokens.withUnsafeBufferPointer { byteTokens in
            while let piece = scanner.next() {
                let p = text + piece.lowerBound
                let n = piece.count
                if n == 1 {
                    out.append(byteTokens[Int(p[0])])
                    continue
                }
                let hash = ByteStringTable.hash(p, n)
                if let hit = wholeTokens.find(p, n, hash: hash) {
                    out.append(wholeTokens.values[hit.offset])
                    continue
                }
                if let hit = cache.find(p, n, hash: hash) {
                    let values = cache.values
                    for k in hit.offset..<(hit.offset + hit.count) { out.append(values[k]) }
                    continue
                }
                scratch.removeAll(keepingCapacity: true)
                merger.encode(p, n, into: &scratch)
                out.append(contentsOf: scratch)
                if cache.keyBytes > TextEncoder.cacheLimitBytes { cache.removeAll() }
                scratch.withUnsafeBufferPointer { cache.insert(p, n, hash: hash, values: $0.baseAddress!, count: $0.count) }
            }
        }
    }
}

/// Cuts a text into parts that encode independently to the same ids as the whole.
///
/// A cut is made just before a byte `\n` that is followed by a printable ASCII byte (`!`…`~`),
/// i.e. at position q with text[q] = "\n" and text[q+1] not white space. Why that is safe:
/// * In the whole text, q starts a piece. The white-space run containing text[q] ends at q+1,
///   where a non-space follows. If the run is longer, `\s+(?!\S)` stops one scalar short of its
///   end, exactly at q; if it is just text[q], the piece before it ended at q because letters,
///   numbers and symbols never absorb white space (only a leading U+0020, and "\n" is not that).
/// * The part before q ends with the same pieces: a white-space run that reaches the end of the
///   text is one piece, the same one `\s+(?!\S)` gave before the last scalar; runs of other
///   classes end at q either way.
/// * The part from q on is scanned as before, since a match depends only on the text after its
///   start.
/// BPE works on each piece alone, so equal pieces give equal ids.
enum TextSplitter {
    /// Up to `parts` ranges covering 0..<count, cut near equal sizes at safe positions.
    static func split(_ text: UnsafePointer<UInt8>, count: Int, parts: Int) -> [Range<Int>] {
        guard parts > 1 else { return [0..<count] }
        var ranges: [Range<Int>] = []
        var start = 0
        for k in 1..<parts {
            var q = max(start + 1, count * k / parts)
            while q + 1 < count, !(text[q] == 0x0A && text[q + 1] > 0x20 && text[q + 1] < 0x7F) { q += 1 }
            if q + 1 >= count { break }
            ranges.append(start..<q)
            start = q
        }
        ranges.append(start..<count)
        return ranges
    }
}
