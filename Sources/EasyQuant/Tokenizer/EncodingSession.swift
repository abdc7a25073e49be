/// What one `encode` call did: how much it read and merged and how much scratch memory it held,
/// counted rather than timed, so that tests can bound the work on hostile text.
public struct EncodingStatistics: Sendable, Equatable {
    /// Bytes of text cut into pieces (special tokens' text excluded; less than the input when
    /// `maxTokens` stopped the work early).
    public var bytesEncoded = 0
    /// Pieces the pre-tokenizer produced, and the longest, in bytes.
    public var pieces = 0
    public var longestPiece = 0
    /// Pieces longer than `BPETokenizer.longestExactPiece`, cut into parts: the only case in
    /// which the ids may differ from llama.cpp's and Hugging Face's.
    public var piecesCut = 0
    /// Merge work: pair lookups, candidate-pair scans and heap operations.
    public var mergeSteps = 0
    /// An upper bound of the scratch memory held at once, in bytes: per-thread caches and
    /// merge buffers, and the ids of text parts encoded in parallel before they join the
    /// output. The output itself is not counted.
    public var scratchBytes = 0

    public init() {}
}

/// One `encode` call's ordinary text (no special tokens): runs the rule set's scanner over it
/// on one thread, or on several in waves of parts cut at safe places (`TextSplitter`), and
/// stops once `limit` ids exist.
///
/// Waves bound memory: each holds at most `2 × threads` parts of about `partBytes` bytes, whose
/// ids wait for the earlier parts before joining the output; and the per-thread encoders (with
/// their bounded caches, see `TextEncoder`) are reused from part to part.
final class EncodingSession {
    private let tables: BPETokenizer.EncodingTables
    private let threads: Int
    let limit: Int
    private var encoders: [TextEncoder] = []
    private let encodersLock = Lock()
    private var waveScratch = 0
    private var bytesEncoded = 0

    /// Parallel parts are about this long (shorter if that leaves a thread idle).
    static let partBytes = 1 << 19
    /// Texts shorter than this stay on one thread.
    static let parallelMinimum = 2 * 4096

    init(tables: BPETokenizer.EncodingTables, threads: Int, limit: Int) {
        self.tables = tables
        self.threads = max(1, threads)
        self.limit = limit
    }

    private func makeEncoder(_ textBytes: Int) -> TextEncoder {
        TextEncoder(wholeTokens: tables.wholeTokens, byteTokens: tables.byteTokens, merges: tables.merges, textBytes: textBytes)
    }

    private func takeEncoder(_ textBytes: Int) -> TextEncoder {
        encodersLock.withLock { encoders.popLast() } ?? makeEncoder(textBytes)
    }

    private func returnEncoder(_ encoder: TextEncoder) {
        encodersLock.withLock { encoders.append(encoder) }
    }

    /// All encoders made so far, once the parallel work is done.
    private var allEncoders: [TextEncoder] { encoders }

    /// Runs the rule set's scanner over `text[range]`; returns where it stopped.
    private func run(_ encoder: TextEncoder, _ text: UnsafePointer<UInt8>, _ range: Range<Int>, limit: Int, into out: inout [Int32]) -> Int {
        switch tables.rules {
        case .gpt2: return encoder.encode(GPT2PreTokenizer.self, text, from: range.lowerBound, to: range.upperBound, limit: limit, into: &out)
        case .llamaBPE: return encoder.encode(Llama3PreTokenizer.self, text, from: range.lowerBound, to: range.upperBound, limit: limit, into: &out)
        case .qwen2: return encoder.encode(Qwen2PreTokenizer.self, text, from: range.lowerBound, to: range.upperBound, limit: limit, into: &out)
        case .smollm: return encoder.encode(SmolLMPreTokenizer.self, text, from: range.lowerBound, to: range.upperBound, limit: limit, into: &out)
        }
    }

    /// Appends the ids of `text[range]` to `out` until `out` holds `limit` ids.
    func encodeOrdinary(_ text: UnsafePointer<UInt8>, _ range: Range<Int>, into out: inout [Int32]) {
        guard !range.isEmpty, out.count < limit else { return }
        if threads == 1 || range.count < EncodingSession.parallelMinimum {
            encodeSerially(text, range, into: &out)
            return
        }
        let partBytes = min(EncodingSession.partBytes, max(4096, range.count / threads))
        var start = range.lowerBound
        while start < range.upperBound, out.count < limit {
            var parts: [Range<Int>] = []
            while parts.count < 2 * threads, start < range.upperBound {
                var cut = range.upperBound
                if start + partBytes < range.upperBound - 1,
                   let q = TextSplitter.nextSafeCut(text, from: start + partBytes, end: range.upperBound, rules: tables.rules) {
                    cut = q
                }
                parts.append(start..<cut)
                start = cut
            }
            if parts.count == 1 {
                encodeSerially(text, parts[0], into: &out)
                continue
            }
            let remaining = limit - out.count
            var results = [[Int32]](repeating: [], count: parts.count)
            var reached = [Int](repeating: 0, count: parts.count)
            results.withUnsafeMutableBufferPointer { results in
                reached.withUnsafeMutableBufferPointer { reached in
                    Parallel.forEach(parts.count, threads: threads) { k in
                        let encoder = takeEncoder(parts[k].count)
                        var ids: [Int32] = []
                        ids.reserveCapacity(min(remaining, parts[k].count / 4 + 16))
                        reached[k] = run(encoder, text, parts[k], limit: remaining, into: &ids)
                        results[k] = ids
                        returnEncoder(encoder)
                    }
                }
            }
            waveScratch = max(waveScratch, results.reduce(0) { $0 + $1.capacity * 4 } + allEncoders.reduce(0) { $0 + $1.scratchBytes })
            for (k, ids) in results.enumerated() {
                out.append(contentsOf: ids)
                bytesEncoded += reached[k] - parts[k].lowerBound
                if out.count >= limit { break }
            }
        }
    }

    private func encodeSerially(_ text: UnsafePointer<UInt8>, _ range: Range<Int>, into out: inout [Int32]) {
        let encoder = takeEncoder(range.count)
        bytesEncoded += run(encoder, text, range, limit: limit, into: &out) - range.lowerBound
        returnEncoder(encoder)
    }

    /// What the session did.
    var statistics: EncodingStatistics {
        var s = EncodingStatistics()
        s.bytesEncoded = bytesEncoded
        for e in allEncoders {
            s.pieces += e.pieces
            s.longestPiece = max(s.longestPiece, e.longestPiece)
            s.piecesCut += e.piecesCut
            s.mergeSteps += e.mergeSteps
        }
        s.scratchBytes = max(waveScratch, allEncoders.reduce(0) { $0 + $1.scratchBytes })
        return s
    }
}
