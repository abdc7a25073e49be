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
    private let cache: ByteStringTable
    private let sinkBuffer = UnsafeMutablePointer<Int32>.allocate(capacity: IDSink.capacity)

    /// The cache is dropped when its keys pass this size, to bound memory on huge inputs.
    static let cacheLimitBytes = 64 << 20
    static let longestCachedPiece = 4096

    /// `textBytes` sizes the cache: a short text should not pay for clearing a large table.
    init(wholeTokens: ByteStringTable, byteTokens: [Int32], merges: MergeTable, textBytes: Int) {
        self.cache = ByteStringTable(expectedCount: min(4096, max(16, textBytes / 64)))
        self.wholeTokens = wholeTokens
        self.byteTokens = byteTokens
        self.merger = BPEMerger(merges: merges, byteTokens: byteTokens)
    }

    /// Appends the ids of `text[start..<end]` (valid UTF-8) to `out`.
    func encode(_ text: UnsafePointer<UInt8>, from start: Int, to end: Int, into out: inout [Int32]) {
        var scanner = PreTokenizer(text: text, start: start, end: end)
        var sink = IDSink(buffer: sinkBuffer)
        byteTokens.withUnsafeBufferPointer { byteTokens in
            while let piece = scanner.next() {
                let p = text + piece.lowerBound
                let n = piece.count
                if n == 1 {
                    sink.push(byteTokens[Int(p[0])], &out)
                    continue
                }
                let hash = ByteStringTable.hash(p, n)
                if let hit = wholeTokens.find(p, n, hash: hash) {
                    sink.push(wholeTokens.values[hit.offset], &out)
                    continue
                }
                if let hit = cache.find(p, n, hash: hash) {
                    sink.push(UnsafeBufferPointer(start: cache.values + hit.offset, count: hit.count), &out)
                    continue
                }
                let ids = merger.merge(p, n)
                sink.push(ids, &out)
                // Long pieces (a line of dashes, a run of text without spaces) rarely repeat.
                guard n <= TextEncoder.longestCachedPiece else { continue }
                if cache.keyBytes > TextEncoder.cacheLimitBytes { cache.removeAll() }
                cache.insert(p, n, hash: hash, values: ids.baseAddress!, count: ids.count)
            }
        }
        sink.flush(&out)
    }

    deinit { sinkBuffer.deallocate() }
}

/// Collects ids in a fixed buffer and appends them to the output array in batches: appending
/// one element at a time to a Swift array checks its uniqueness and capacity on every call.
private struct IDSink {
    static let capacity = 1024
    let buffer: UnsafeMutablePointer<Int32>
    var count = 0

    init(buffer: UnsafeMutablePointer<Int32>) { self.buffer = buffer }

    @inline(__always)
    mutating func push(_ id: Int32, _ out: inout [Int32]) {
        if count == IDSink.capacity { flush(&out) }
        buffer[count] = id
        count += 1
    }

    @inline(__always)
    mutating func push(_ ids: UnsafeBufferPointer<Int32>, _ out: inout [Int32]) {
        if count + ids.count > IDSink.capacity {
            flush(&out)
            if ids.count > IDSink.capacity {
                out.append(contentsOf: ids)
                return
            }
        }
        (buffer + count).update(from: ids.baseAddress!, count: ids.count)
        count += ids.count
    }

    mutating func flush(_ out: inout [Int32]) {
        out.append(contentsOf: UnsafeBufferPointer(start: buffer, count: count))
        count = 0
    }
}

/// Cuts a text into parts that encode independently to the same ids as the whole.
///
/// A cut at byte q is safe when q starts a piece in the whole text, the part before q ends
/// with the same pieces as the whole text has there, and the part from q on is scanned as
/// before. The last holds for every q, since a match depends only on the text after its start.
/// Two kinds of cut satisfy the other two (ASCII "printable" below means `!`…`~`):
///
/// * q at a space with printable ASCII on both sides (`x y`, the common case). The piece
///   before ends at q in the whole text: a run of letters, numbers or symbols stops at white
///   space, and a contraction lies in non-space bytes. Cut there, it ends at the end of the part
///   instead, the same place; a contraction test at q-1 or q-2 fails in both (it would need
///   `s`, `e`, … where there is a space or the end). The part from q begins " y…", as before.
/// * q at a newline followed by printable ASCII (`\n` then `x`). In the whole text the white
///   space run holding text[q] ends at q+1; `\s+(?!\S)` stops one scalar short of that end, at q,
///   or, if the run is text[q] alone, the piece before stopped at q because only a leading
///   U+0020 joins white space to a following run. Cut there, the run before q reaches the end of
///   the part and is one piece, the same one `\s+(?!\S)` gave in the whole.
///
/// BPE works on each piece alone, so equal pieces give equal ids.
enum TextSplitter {
    @inline(__always)
    private static func isPrintableASCII(_ b: UInt8) -> Bool { b > 0x20 && b < 0x7F }

    /// Whether a cut before byte q (0 < q < count - 1) is safe by the rules above.
    @inline(__always)
    static func isSafeCut(_ text: UnsafePointer<UInt8>, _ q: Int) -> Bool {
        switch text[q] {
        case 0x20: return isPrintableASCII(text[q - 1]) && isPrintableASCII(text[q + 1])
        case 0x0A: return isPrintableASCII(text[q + 1])
        default: return false
        }
    }

    /// Up to `parts` ranges covering 0..<count, cut near equal sizes at safe positions.
    static func split(_ text: UnsafePointer<UInt8>, count: Int, parts: Int) -> [Range<Int>] {
        guard parts > 1 else { return [0..<count] }
        var ranges: [Range<Int>] = []
        var start = 0
        for k in 1..<parts {
            var q = max(start + 1, count * k / parts)
            while q + 1 < count, !isSafeCut(text, q) { q += 1 }
            if q + 1 >= count { break }
            ranges.append(start..<q)
            start = q
        }
        ranges.append(start..<count)
        return ranges
    }
}
