import Foundation

/// Encodes runs of text for one thread: pre-tokenizes, then turns each piece into ids by the
/// cheapest route that gives the exact BPE result.
///
/// 1. A one-byte piece is its byte token.
/// 2. A piece that is itself a token, and whose bytes BPE would merge back into that very token
///    (checked for every token when the tokenizer is built: `wholeTokens`; with `ignore_merges`
///    every token counts), is that token. Most words of running text end here after a single
///    hash lookup.
/// 3. A piece seen before by this encoder is copied from the cache.
/// 4. Anything else goes through `BPEMerger` and into the cache.
///
/// Memory stays bounded whatever the text: the cache is emptied when it reaches a fixed size,
/// and a piece longer than `longestExactPiece` bytes (possible only in hostile or degenerate
/// text: a megabyte of spaces, or of one letter, is a single GPT-2 piece) is cut into parts of
/// that many bytes, backed off to a scalar boundary, which are merged separately. That is the
/// one place where ids can differ from llama.cpp's or Hugging Face's, which merge the whole
/// piece at a cost of tens of bytes per byte; `EncodingStatistics.piecesCut` counts such cuts.
final class TextEncoder {
    private let wholeTokens: ByteStringTable
    private let byteTokens: [Int32]
    private let merger: BPEMerger
    private let cache: ByteStringTable
    private let sinkBuffer = UnsafeMutablePointer<Int32>.allocate(capacity: IDSink.capacity)
    /// The last cut part and its ids: the parts of a long run of one repeated scalar are equal.
    private var lastPart: (start: Int, count: Int, ids: [Int32]) = (0, 0, [])

    /// The cache is emptied when one of these would be passed; together about 4 MiB at most.
    static let cacheMaxEntries = 1 << 14
    static let cacheMaxKeyBytes = 1 << 20
    static let cacheMaxValues = 1 << 18
    /// Longer pieces are merged every time (a line of dashes rarely repeats).
    static let longestCachedPiece = 4096
    /// Longer pieces are cut into parts of at most this many bytes.
    static let longestExactPiece = 1 << 16

    // What this encoder did, for `EncodingStatistics`.
    private(set) var pieces = 0
    private(set) var longestPiece = 0
    private(set) var piecesCut = 0

    /// `textBytes` sizes the cache: a short text should not pay for clearing a large table.
    init(wholeTokens: ByteStringTable, byteTokens: [Int32], merges: MergeTable, textBytes: Int) {
        self.cache = ByteStringTable(expectedCount: min(4096, max(16, textBytes / 64)))
        self.wholeTokens = wholeTokens
        self.byteTokens = byteTokens
        self.merger = BPEMerger(merges: merges, byteTokens: byteTokens)
    }

    deinit { sinkBuffer.deallocate() }

    /// Scratch memory held now (cache, merger, output batch).
    var scratchBytes: Int {
        cache.allocatedBytes + merger.scratchBytes + IDSink.capacity * 4 + lastPart.ids.capacity * 4
    }

    var mergeSteps: Int { merger.steps }

    /// Appends the ids of `text[start..<end]` (valid UTF-8, cut into pieces by `Scanner`) to
    /// `out`, stopping after the first piece that brings `out` to `limit` ids or more. Returns
    /// the offset where it stopped (`end` if it did not).
    func encode<Scanner: PieceScanner>(_ scanner: Scanner.Type, _ text: UnsafePointer<UInt8>, from start: Int, to end: Int,
                                       limit: Int = .max, into out: inout [Int32]) -> Int {
        var scanner = Scanner(text: text, start: start, end: end)
        var sink = IDSink(buffer: sinkBuffer)
        var reached = end
        byteTokens.withUnsafeBufferPointer { byteTokens in
            while let piece = scanner.next() {
                let n = piece.count
                pieces += 1
                if n > longestPiece { longestPiece = n }
                if n == 1 {
                    let id = byteTokens[Int(text[piece.lowerBound])]
                    if id >= 0 { sink.push(id, &out) }
                } else if n <= TextEncoder.longestExactPiece {
                    encodePiece(text + piece.lowerBound, n, &sink, &out)
                } else {
                    piecesCut += 1
                    if let stop = encodeInParts(text, piece, limit: limit, &sink, &out) {
                        reached = stop
                        break
                    }
                }
                if out.count + sink.count >= limit {
                    reached = piece.upperBound
                    break
                }
            }
        }
        sink.flush(&out)
        return reached
    }

    /// The ids of a piece of 2…`longestExactPiece` bytes.
    @inline(__always)
    private func encodePiece(_ p: UnsafePointer<UInt8>, _ n: Int, _ sink: inout IDSink, _ out: inout [Int32]) {
        let hash = ByteStringTable.hash(p, n)
        if let hit = wholeTokens.find(p, n, hash: hash) {
            sink.push(wholeTokens.values[hit.offset], &out)
            return
        }
        let cacheable = n <= TextEncoder.longestCachedPiece
        if cacheable, let hit = cache.find(p, n, hash: hash) {
            sink.push(UnsafeBufferPointer(start: cache.values + hit.offset, count: hit.count), &out)
            return
        }
        let ids = merger.merge(p, n)
        sink.push(ids, &out)
        guard cacheable else { return }
        if cache.count >= TextEncoder.cacheMaxEntries || cache.keyBytes + n > TextEncoder.cacheMaxKeyBytes
            || cache.valueCount + ids.count > TextEncoder.cacheMaxValues {
            cache.removeAll()
        }
        cache.insert(p, n, hash: hash, values: ids.baseAddress!, count: ids.count)
    }

    /// A piece longer than `longestExactPiece`, in parts; returns where it stopped if `limit`
    /// was reached before its end.
    private func encodeInParts(_ text: UnsafePointer<UInt8>, _ piece: Range<Int>, limit: Int,
                               _ sink: inout IDSink, _ out: inout [Int32]) -> Int? {
        var s = piece.lowerBound
        while s < piece.upperBound {
            var e = min(piece.upperBound, s + TextEncoder.longestExactPiece)
            while e < piece.upperBound, text[e] & 0xC0 == 0x80 { e -= 1 }  // a scalar's first byte
            let n = e - s
            if n == lastPart.count, memcmp(text + s, text + lastPart.start, n) == 0 {
                if !lastPart.ids.isEmpty { lastPart.ids.withUnsafeBufferPointer { sink.push($0, &out) } }
            } else {
                let before = out.count + sink.count
                if n == 1 {
                    if byteTokens[Int(text[s])] >= 0 { sink.push(byteTokens[Int(text[s])], &out) }
                } else {
                    encodePiece(text + s, n, &sink, &out)
                }
                sink.flush(&out)
                // Copied into its own buffer: `Array(out[before...])` could share `out`'s.
                lastPart.start = s
                lastPart.count = n
                lastPart.ids.removeAll(keepingCapacity: true)
                lastPart.ids.append(contentsOf: out[before...])
            }
            s = e
            if out.count + sink.count >= limit, s < piece.upperBound { return s }
        }
        return nil
    }
}

/// Collects ids in a fixed buffer and appends them to the output array in batches: appending
/// one element at a time to a Swift array checks its uniqueness and capacity on every call.
struct IDSink {
    static let capacity = 1024
    let buffer: UnsafeMutablePointer<Int32>
    private(set) var count = 0

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
