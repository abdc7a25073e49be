import Foundation

/// GPT-2's byte-level BPE tokenizer, exact to the ids of OpenAI's `encoder.py`, tiktoken and
/// Hugging Face tokenizers.
///
/// Text is cut into pieces by GPT-2's pre-tokenization pattern (a scanner, see `PreTokenizer`),
/// each piece's UTF-8 bytes become byte tokens, and ranked merges join them (`BPEMerger`).
/// Decoding concatenates the tokens' bytes, so `decode(encode(s))` gives back `s` byte for byte.
///
/// Special tokens (GPT-2 has one, `<|endoftext|>` = 50256): `encode` treats their text as
/// ordinary text unless `allowSpecialTokens` is true, so a document that happens to contain
/// "<|endoftext|>" cannot inject a document boundary. To mark a boundary, append `endOfTextID`.
///
/// The tokenizer is immutable and can be used from several threads at once.
public final class GPT2Tokenizer: Sendable {
    private let vocabulary: Vocabulary
    private let merges: MergeTable
    private let byteTokens: [Int32]
    private let wholeTokens: ByteStringTable
    private let specialTokens: [SpecialToken]

    private struct SpecialToken: Sendable {
        let text: String
        let bytes: [UInt8]
        let id: Int32
    }

    /// One past the largest token id (50,257 for GPT-2).
    public var vocabularySize: Int { vocabulary.count }

    /// The id of `<|endoftext|>` (50256 for GPT-2), or nil if the vocabulary lacks it.
    public let endOfTextID: Int32?

    /// Special tokens as text → id (for GPT-2 only `<|endoftext|>`).
    public var specialTokenIDs: [String: Int32] {
        Dictionary(specialTokens.map { ($0.text, $0.id) }, uniquingKeysWith: { a, _ in a })
    }

    /// Texts of at least this many bytes are encoded on several threads by default.
    public static let parallelThreshold = 256 << 10

    // MARK: Loading

    /// A tokenizer from the bytes of `vocab.json` (token → id) and `merges.txt` (ranked merges),
    /// or of OpenAI's `encoder.json` and `vocab.bpe`, which have the same content.
    public convenience init(vocabJSON: [UInt8], merges: [UInt8]) throws {
        try self.init(TokenizerFiles.parsePair(vocabJSON: vocabJSON, merges: merges,
                                               vocabFile: "vocab.json", mergesFile: "merges.txt"))
    }

    /// A tokenizer from the bytes of a Hugging Face `tokenizer.json` describing a byte-level BPE
    /// (`model.vocab` and `model.merges`; merges as "a b" strings or ["a", "b"] arrays).
    public convenience init(tokenizerJSON: [UInt8]) throws {
        try self.init(TokenizerFiles.parseTokenizerJSON(tokenizerJSON, file: "tokenizer.json"))
    }

    /// Loads the tokenizer kept in a folder, trying in order `vocab.json` + `merges.txt`,
    /// `encoder.json` + `vocab.bpe`, then `tokenizer.json`. Errors name the folder and the files.
    public static func load(directory: String) throws -> GPT2Tokenizer {
        switch try TokenizerFiles.locate(directory: directory) {
        case let .pair(vocab, merges):
            return try GPT2Tokenizer(TokenizerFiles.parsePair(
                vocabJSON: TokenizerFiles.read(vocab), merges: TokenizerFiles.read(merges),
                vocabFile: vocab, mergesFile: merges))
        case let .tokenizerJSON(path):
            return try GPT2Tokenizer(TokenizerFiles.parseTokenizerJSON(TokenizerFiles.read(path), file: path))
        }
    }

    private init(_ definition: TokenizerDefinition) throws {
        let vocabulary = definition.vocabulary
        self.vocabulary = vocabulary
        self.merges = MergeTable(definition.merges)
        self.byteTokens = try vocabulary.byteTokens(file: definition.vocabularyFile)
        self.specialTokens = definition.specialTokens.map { SpecialToken(text: $0.text, bytes: Array($0.text.utf8), id: $0.id) }
        self.endOfTextID = definition.specialTokens.first(where: { $0.text == TokenizerFiles.endOfText })?.id
            ?? vocabulary.id(ofText: TokenizerFiles.endOfText)
        self.wholeTokens = GPT2Tokenizer.selfMergingTokens(vocabulary, merges: merges, byteTokens: byteTokens)
    }

    /// The tokens whose bytes BPE merges back into the token itself: for a piece equal to one of
    /// these, one lookup replaces the merge loop. Every GPT-2 token qualifies, but in general a
    /// token can be reachable only through merges whose order a fresh start does not follow
    /// (tiktoken assumes it never is), so each token is checked once here.
    private static func selfMergingTokens(_ vocabulary: Vocabulary, merges: MergeTable, byteTokens: [Int32]) -> ByteStringTable {
        let table = ByteStringTable(expectedCount: vocabulary.count)
        let merger = BPEMerger(merges: merges, byteTokens: byteTokens)
        var ids: [Int32] = []
        vocabulary.bytes.withUnsafeBufferPointer { bytes in
            for id in 0..<vocabulary.count where vocabulary.present[id] && vocabulary.byteLevel[id] {
                let start = Int(vocabulary.offsets[id]), length = Int(vocabulary.offsets[id + 1]) - start
                guard length >= 2 else { continue }
                let p = bytes.baseAddress! + start
                ids.removeAll(keepingCapacity: true)
                merger.encode(p, length, into: &ids)
                guard ids.count == 1, ids[0] == Int32(id) else { continue }
                let hash = ByteStringTable.hash(p, length)
                if table.find(p, length, hash: hash) == nil {
                    var value = Int32(id)
                    table.insert(p, length, hash: hash, values: &value, count: 1)
                }
            }
        }
        return table
    }

    // MARK: Encoding

    /// The token ids of `text`.
    ///
    /// - Parameters:
    ///   - allowSpecialTokens: emit special tokens (`<|endoftext|>`) where their text appears;
    ///     by default that text is encoded like any other.
    ///   - threads: threads to use; nil picks all cores for texts of `parallelThreshold` bytes
    ///     or more and one thread otherwise. The ids never depend on it.
    public func encode(_ text: String, allowSpecialTokens: Bool = false, threads: Int? = nil) -> [Int32] {
        var text = text
        return text.withUTF8 { utf8 in
            encodeValid(UnsafeRawBufferPointer(utf8), allowSpecialTokens: allowSpecialTokens, threads: threads)
        }
    }

    /// The token ids of UTF-8 bytes (e.g. a memory-mapped file).
    ///
    /// - Throws: `TokenizerError.invalidUTF8(offset:)` with the offset of the first ill-formed
    ///   sequence if the bytes are not valid UTF-8.
    public func encode(utf8 bytes: UnsafeRawBufferPointer, allowSpecialTokens: Bool = false, threads: Int? = nil) throws -> [Int32] {
        if let offset = UTF8Validation.firstInvalidOffset(bytes) { throw TokenizerError.invalidUTF8(offset: offset) }
        return encodeValid(bytes, allowSpecialTokens: allowSpecialTokens, threads: threads)
    }

    /// The token ids of UTF-8 bytes; see `encode(utf8:allowSpecialTokens:threads:)`.
    public func encode(utf8 bytes: [UInt8], allowSpecialTokens: Bool = false, threads: Int? = nil) throws -> [Int32] {
        try bytes.withUnsafeBytes { try encode(utf8: $0, allowSpecialTokens: allowSpecialTokens, threads: threads) }
    }

    private func encodeValid(_ bytes: UnsafeRawBufferPointer, allowSpecialTokens: Bool, threads: Int?) -> [Int32] {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return [] }
        let text = base.assumingMemoryBound(to: UInt8.self)
        let threads = max(1, threads ?? (bytes.count >= GPT2Tokenizer.parallelThreshold ? Parallel.defaultThreads : 1))
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 4 + 16)
        guard allowSpecialTokens, !specialTokens.isEmpty else {
            encodeOrdinary(text, 0..<bytes.count, threads: threads, into: &out)
            return out
        }
        // Cut at special tokens (the earliest; at one place, the longest); pre-tokenization
        // restarts after each, as in tiktoken.
        var start = 0
        while start < bytes.count {
            var best: (at: Int, token: SpecialToken)?
            for token in specialTokens {
                // Only starts up to the best so far can win.
                let lastStart = min(best?.at ?? bytes.count, bytes.count - token.bytes.count)
                guard let at = firstOccurrence(of: token.bytes, in: text, from: start, through: lastStart) else { continue }
                if best == nil || at < best!.at || token.bytes.count > best!.token.bytes.count { best = (at, token) }
            }
            guard let found = best else { break }
            encodeOrdinary(text, start..<found.at, threads: threads, into: &out)
            out.append(found.token.id)
            start = found.at + found.token.bytes.count
        }
        encodeOrdinary(text, start..<bytes.count, threads: threads, into: &out)
        return out
    }

    /// The first i in from...lastStart where `needle` occurs at text[i...]; the caller makes sure
    /// that lastStart + needle.count does not pass the end of the text.
    private func firstOccurrence(of needle: [UInt8], in text: UnsafePointer<UInt8>, from: Int, through lastStart: Int) -> Int? {
        guard let first = needle.first, from <= lastStart else { return nil }
        return needle.withUnsafeBufferPointer { needle in
            for i in from...lastStart where text[i] == first && memcmp(text + i, needle.baseAddress!, needle.count) == 0 {
                return i
            }
            return nil
        }
    }

    private func encodeOrdinary(_ text: UnsafePointer<UInt8>, _ range: Range<Int>, threads: Int, into out: inout [Int32]) {
        guard !range.isEmpty else { return }
        if threads <= 1 || range.count < 2 * 4096 {
            makeEncoder(range.count).encode(text, from: range.lowerBound, to: range.upperBound, into: &out)
            return
        }
        let parts = TextSplitter.split(text + range.lowerBound, count: range.count, parts: threads)
            .map { ($0.lowerBound + range.lowerBound)..<($0.upperBound + range.lowerBound) }
        var results = [[Int32]](repeating: [], count: parts.count)
        results.withUnsafeMutableBufferPointer { results in
            Parallel.forEach(parts.count, threads: threads) { k in
                var ids: [Int32] = []
                ids.reserveCapacity(parts[k].count / 4 + 16)
                makeEncoder(parts[k].count).encode(text, from: parts[k].lowerBound, to: parts[k].upperBound, into: &ids)
                results[k] = ids
            }
        }
        for r in results { out.append(contentsOf: r) }
    }

    private func makeEncoder(_ textBytes: Int) -> TextEncoder {
        TextEncoder(wholeTokens: wholeTokens, byteTokens: byteTokens, merges: merges, textBytes: textBytes)
    }

    // MARK: Decoding

    /// The bytes the ids stand for. Ids outside the vocabulary decode to U+FFFD (EF BF BD).
    /// A single token may hold part of a UTF-8 sequence, so the bytes of a prefix of ids need
    /// not be valid UTF-8; those of a whole `encode` result always are.
    public func decode(_ ids: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        vocabulary.bytes.withUnsafeBufferPointer { bytes in
            vocabulary.offsets.withUnsafeBufferPointer { offsets in
                for id in ids {
                    let i = Int(id)
                    if i >= 0, i < vocabulary.count {
                        out.append(contentsOf: bytes[Int(offsets[i])..<Int(offsets[i + 1])])
                    } else {
                        out.append(contentsOf: [0xEF, 0xBF, 0xBD])
                    }
                }
            }
        }
        return out
    }

    /// The text the ids stand for; ill-formed UTF-8 (from a cut inside a character) becomes U+FFFD.
    public func decodeText(_ ids: [Int32]) -> String {
        String(decoding: decode(ids), as: UTF8.self)
    }

    /// The bytes of one token, or nil if `id` is not in the vocabulary.
    public func tokenBytes(_ id: Int32) -> [UInt8]? {
        let i = Int(id)
        guard i >= 0, i < vocabulary.count, vocabulary.present[i] else { return nil }
        return Array(vocabulary.bytes[Int(vocabulary.offsets[i])..<Int(vocabulary.offsets[i + 1])])
    }
}
