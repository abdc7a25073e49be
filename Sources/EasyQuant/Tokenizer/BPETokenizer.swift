import Foundation

/// A byte-level BPE tokenizer (GPT-2, Llama 3, Qwen2, SmolLM2), exact to the ids of llama.cpp
/// and, for GPT-2, of OpenAI's `encoder.py`, tiktoken and Hugging Face tokenizers. Hugging Face
/// differs from llama.cpp, and so from this, only in corners: it folds `'ſ` into a contraction
/// (`Llama3PreTokenizer`), applies a tokenizer.json's NFC normalizer (accepted here, not
/// applied), may emit an unknown token for a byte the vocabulary lacks (left out here), and
/// orders overlapping added tokens differently (`SpecialTokenMatcher`).
///
/// Text is cut into pieces by the model's pre-tokenization rules (`PreTokenizerRules`, each a
/// hand-written scanner), each piece's UTF-8 bytes become byte tokens, and ranked merges join
/// them (`BPEMerger`). Decoding concatenates the tokens' bytes, so `decode(encode(s))` gives
/// back `s` byte for byte (BOS and EOS decode to nothing), unless the vocabulary lacks a byte
/// of `s` (`missingByteTokens`).
///
/// Added tokens (see `TokenType`): the text of a control token (`<|endoftext|>`,
/// `<|begin_of_text|>`) in the input is encoded as ordinary text unless `allowSpecialTokens` is
/// true, so a document that happens to contain it cannot inject a boundary; a user-defined
/// token's text always becomes that token, as in llama.cpp and HF tokenizers. BOS and EOS are
/// added when the model's files ask for it (`addsBOS`, `addsEOS`); `encode`'s `addBOS` and
/// `addEOS` can turn that off.
///
/// Work is bounded on any input: memory is a fixed few MiB per thread beyond the output (see
/// `TextEncoder` and `EncodingSession`), time is linear in the text (n log n inside a piece),
/// and `maxTokens` stops the work once enough ids exist. Only a piece longer than
/// `longestExactPiece` bytes, which no real text has, is merged in parts.
///
/// The tokenizer is immutable and can be used from several threads at once.
public final class BPETokenizer: Sendable {
    /// The tables every encoding thread reads.
    struct EncodingTables: Sendable {
        let rules: PreTokenizerRules
        let merges: MergeTable
        let byteTokens: [Int32]
        let wholeTokens: ByteStringTable
    }

    let vocabulary: Vocabulary
    private let tables: EncodingTables
    /// The merges in rank order as the files listed them, and which rank a repeated pair
    /// keeps: kept so the tokenizer can be described again (`portableDescription()`).
    let rankedMerges: [SIMD2<Int32>]
    let duplicateMergeRank: MergeTable.DuplicateRank
    /// User-defined tokens, matched always; and all added tokens, matched when allowed.
    private let alwaysMatched: SpecialTokenMatcher
    private let matchedWhenAllowed: SpecialTokenMatcher

    /// The pre-tokenization rule set.
    public var preTokenizer: PreTokenizerRules { tables.rules }
    /// Whether a piece that is a token becomes it without merging (Llama 3's `ignore_merges`).
    public let ignoresMerges: Bool
    /// Bytes that have no token of their own. `encode` leaves them out of the ids, as
    /// llama.cpp does (SmolLM2 lacks 21, among them the controls 0x04 and 0x06), so for a text
    /// that holds one, `decode(encode(s))` is `s` without it. Empty for GPT-2, Llama 3, Qwen2.
    public let missingByteTokens: [UInt8]
    /// The BOS and EOS ids, if the model has them.
    public let bosID: Int32?
    public let eosID: Int32?
    /// Whether `encode` adds BOS first / EOS last (unless told not to).
    public let addsBOS: Bool
    public let addsEOS: Bool

    /// One past the largest token id (50,257 for GPT-2).
    public var vocabularySize: Int { vocabulary.count }

    /// The id of `<|endoftext|>` (50256 for GPT-2) if the vocabulary has it, else the EOS id.
    public let endOfTextID: Int32?

    /// Added tokens (control, unknown and user-defined) as text → id; for GPT-2 only
    /// `<|endoftext|>`.
    public var specialTokenIDs: [String: Int32] {
        var out: [String: Int32] = [:]
        for id in 0..<vocabulary.count where vocabulary.present[id] && vocabulary.types[id].matchedWhenAllowed {
            out[String(decoding: tokenBytes(Int32(id))!, as: UTF8.self)] = Int32(id)
        }
        return out
    }

    /// The kind of a token, or nil if `id` is not in the vocabulary.
    public func tokenType(_ id: Int32) -> TokenType? {
        let i = Int(id)
        guard i >= 0, i < vocabulary.count, vocabulary.present[i] else { return nil }
        return vocabulary.types[i]
    }

    /// Texts of at least this many bytes are encoded on several threads by default.
    public static let parallelThreshold = 256 << 10
    /// Pieces longer than this many bytes are merged in parts (see `TextEncoder`).
    public static let longestExactPiece = TextEncoder.longestExactPiece

    // MARK: Loading

    /// A GPT-2 tokenizer from the bytes of `vocab.json` (token → id) and `merges.txt` (ranked
    /// merges), or of OpenAI's `encoder.json` and `vocab.bpe`, which have the same content.
    public convenience init(vocabJSON: [UInt8], merges: [UInt8]) throws {
        try self.init(TokenizerFiles.parsePair(vocabJSON: vocabJSON, merges: merges,
                                               vocabFile: "vocab.json", mergesFile: "merges.txt"))
    }

    /// A tokenizer from the bytes of a Hugging Face `tokenizer.json` describing a byte-level BPE
    /// (`model.vocab` and `model.merges`; merges as "a b" strings or ["a", "b"] arrays) whose
    /// `pre_tokenizer` is one of the known rule sets, and optionally of its
    /// `tokenizer_config.json` (`add_bos_token`, `bos_token`, …). Added tokens with `special`
    /// become control tokens, the others user-defined (`TokenType`). A normalizer must be absent
    /// or NFC (Qwen2's), which is not applied, as llama.cpp does not.
    public convenience init(tokenizerJSON: [UInt8], tokenizerConfigJSON: [UInt8]? = nil) throws {
        try self.init(TokenizerFiles.parseTokenizerJSON(tokenizerJSON, file: TokenizerFiles.tokenizerJSON, config: tokenizerConfigJSON))
    }

    /// A tokenizer from a format-independent description, such as GGUF metadata gives.
    public convenience init(description: TokenizerDescription) throws {
        try self.init(description.definition())
    }

    /// Loads the tokenizer kept in a folder, trying in order `tokenizer.json` (with
    /// `tokenizer_config.json` if present), `vocab.json` + `merges.txt`, then `encoder.json` +
    /// `vocab.bpe`. Errors name the folder and the files.
    public static func load(directory: String) throws -> BPETokenizer {
        switch try TokenizerFiles.locate(directory: directory) {
        case let .pair(vocab, merges):
            return try BPETokenizer(TokenizerFiles.parsePair(
                vocabJSON: TokenizerFiles.read(vocab), merges: TokenizerFiles.read(merges),
                vocabFile: vocab, mergesFile: merges))
        case let .tokenizerJSON(path, config):
            return try BPETokenizer(TokenizerFiles.parseTokenizerJSON(
                TokenizerFiles.read(path), file: path, config: config.map(TokenizerFiles.read), configFile: config ?? ""))
        }
    }

    private init(_ definition: TokenizerDefinition) throws {
        let vocabulary = definition.vocabulary
        self.vocabulary = vocabulary
        let merges = MergeTable(definition.merges, duplicates: definition.duplicateMergeRank)
        self.rankedMerges = definition.merges.map { SIMD2($0.left, $0.right) }
        self.duplicateMergeRank = definition.duplicateMergeRank
        let byteTokens = vocabulary.byteTokens()
        let wholeTokens = definition.ignoreMerges
            ? BPETokenizer.everyToken(vocabulary)
            : BPETokenizer.selfMergingTokens(vocabulary, merges: merges, byteTokens: byteTokens)
        self.tables = EncodingTables(rules: definition.rules, merges: merges, byteTokens: byteTokens, wholeTokens: wholeTokens)
        self.missingByteTokens = (0..<256).filter { byteTokens[$0] < 0 }.map(UInt8.init)
        self.ignoresMerges = definition.ignoreMerges
        var always: [(bytes: [UInt8], id: Int32)] = []
        var allowed: [(bytes: [UInt8], id: Int32)] = []
        for id in 0..<vocabulary.count where vocabulary.present[id] {
            let type = vocabulary.types[id]
            guard type.matchedWhenAllowed else { continue }
            let bytes = Array(vocabulary.bytes[Int(vocabulary.offsets[id])..<Int(vocabulary.offsets[id + 1])])
            allowed.append((bytes, Int32(id)))
            if type.alwaysMatched { always.append((bytes, Int32(id))) }
        }
        self.alwaysMatched = SpecialTokenMatcher(tokens: always)
        self.matchedWhenAllowed = SpecialTokenMatcher(tokens: allowed)
        self.bosID = definition.bos
        self.eosID = definition.eos
        self.addsBOS = definition.addBOS
        self.addsEOS = definition.addEOS
        self.endOfTextID = vocabulary.id(ofText: TokenizerFiles.endOfText) ?? definition.eos
    }

    /// The tokens whose bytes BPE merges back into the token itself: for a piece equal to one of
    /// these, one lookup replaces the merge loop. Every GPT-2 token qualifies, but in general a
    /// token can be reachable only through merges whose order a fresh start does not follow
    /// (tiktoken assumes it never is), so each token is checked once here.
    private static func selfMergingTokens(_ vocabulary: Vocabulary, merges: MergeTable, byteTokens: [Int32]) -> ByteStringTable {
        let table = ByteStringTable(expectedCount: vocabulary.count)
        let merger = BPEMerger(merges: merges, byteTokens: byteTokens)
        var ids: [Int32] = []
        for id in 0..<vocabulary.count {
            guard let bytes = vocabulary.byteLevelBytes(of: id), bytes.count >= 2 else { continue }
            bytes.withUnsafeBufferPointer { p in
                ids.removeAll(keepingCapacity: true)
                merger.encode(p.baseAddress!, p.count, into: &ids)
                guard ids.count == 1, ids[0] == Int32(id) else { return }
                let hash = ByteStringTable.hash(p.baseAddress!, p.count)
                if table.find(p.baseAddress!, p.count, hash: hash) == nil {
                    var value = Int32(id)
                    table.insert(p.baseAddress!, p.count, hash: hash, values: &value, count: 1)
                }
            }
        }
        return table
    }

    /// With `ignore_merges`, a piece whose byte-level text is any token's text is that token
    /// (llama.cpp looks the piece up among all tokens, whatever their kind).
    private static func everyToken(_ vocabulary: Vocabulary) -> ByteStringTable {
        let table = ByteStringTable(expectedCount: vocabulary.count)
        for id in 0..<vocabulary.count {
            guard let bytes = vocabulary.byteLevelBytes(of: id), bytes.count >= 2 else { continue }
            bytes.withUnsafeBufferPointer { p in
                let hash = ByteStringTable.hash(p.baseAddress!, p.count)
                if table.find(p.baseAddress!, p.count, hash: hash) == nil {
                    var value = Int32(id)
                    table.insert(p.baseAddress!, p.count, hash: hash, values: &value, count: 1)
                }
            }
        }
        return table
    }

    // MARK: Encoding

    /// The token ids of `text`.
    ///
    /// - Parameters:
    ///   - addBOS: add the BOS token first if the model asks for it (`addsBOS`); false never adds it.
    ///   - addEOS: add the EOS token last if the model asks for it (`addsEOS`).
    ///   - allowSpecialTokens: emit control tokens (`<|endoftext|>`) where their text appears;
    ///     by default that text is encoded like any other.
    ///   - maxTokens: return only the first `maxTokens` ids of the result (exactly that prefix)
    ///     and stop the work once they exist; nil for all.
    ///   - threads: threads to use; nil picks all cores for texts of `parallelThreshold` bytes
    ///     or more and one thread otherwise. The ids never depend on it.
    public func encode(_ text: String, addBOS: Bool = true, addEOS: Bool = true, allowSpecialTokens: Bool = false,
                       maxTokens: Int? = nil, threads: Int? = nil) -> [Int32] {
        var text = text
        return text.withUTF8 { utf8 in
            var session: EncodingSession?
            return encodeValid(UnsafeRawBufferPointer(utf8), addBOS: addBOS, addEOS: addEOS, allowSpecialTokens: allowSpecialTokens,
                               maxTokens: maxTokens, threads: threads, session: &session)
        }
    }

    /// The token ids of UTF-8 bytes (e.g. a memory-mapped file); see `encode(_:…)`.
    ///
    /// - Throws: `TokenizerError.invalidUTF8(offset:)` with the offset of the first ill-formed
    ///   sequence if the bytes are not valid UTF-8.
    public func encode(utf8 bytes: UnsafeRawBufferPointer, addBOS: Bool = true, addEOS: Bool = true, allowSpecialTokens: Bool = false,
                       maxTokens: Int? = nil, threads: Int? = nil) throws -> [Int32] {
        try encodeMeasured(utf8: bytes, addBOS: addBOS, addEOS: addEOS, allowSpecialTokens: allowSpecialTokens,
                           maxTokens: maxTokens, threads: threads).ids
    }

    /// The token ids of UTF-8 bytes; see `encode(_:…)`.
    public func encode(utf8 bytes: [UInt8], addBOS: Bool = true, addEOS: Bool = true, allowSpecialTokens: Bool = false,
                       maxTokens: Int? = nil, threads: Int? = nil) throws -> [Int32] {
        try bytes.withUnsafeBytes {
            try encode(utf8: $0, addBOS: addBOS, addEOS: addEOS, allowSpecialTokens: allowSpecialTokens, maxTokens: maxTokens, threads: threads)
        }
    }

    /// `encode(utf8:…)` that also reports the work it did (for tests and benchmarks).
    public func encodeMeasured(utf8 bytes: UnsafeRawBufferPointer, addBOS: Bool = true, addEOS: Bool = true,
                               allowSpecialTokens: Bool = false, maxTokens: Int? = nil,
                               threads: Int? = nil) throws -> (ids: [Int32], statistics: EncodingStatistics) {
        if let offset = UTF8Validation.firstInvalidOffset(bytes) { throw TokenizerError.invalidUTF8(offset: offset) }
        var session: EncodingSession?
        let ids = encodeValid(bytes, addBOS: addBOS, addEOS: addEOS, allowSpecialTokens: allowSpecialTokens,
                              maxTokens: maxTokens, threads: threads, session: &session)
        return (ids, session?.statistics ?? EncodingStatistics())
    }

    private func encodeValid(_ bytes: UnsafeRawBufferPointer, addBOS: Bool, addEOS: Bool, allowSpecialTokens: Bool,
                             maxTokens: Int?, threads: Int?, session: inout EncodingSession?) -> [Int32] {
        let limit = max(0, maxTokens ?? Int.max)
        var out: [Int32] = []
        guard limit > 0 else { return out }
        out.reserveCapacity(min(limit, bytes.count / 4 + 16))
        if addBOS, addsBOS, let bosID { out.append(bosID) }
        if let base = bytes.baseAddress, bytes.count > 0 {
            let text = base.assumingMemoryBound(to: UInt8.self)
            let threads = max(1, threads ?? (bytes.count >= BPETokenizer.parallelThreshold ? Parallel.defaultThreads : 1))
            let run = EncodingSession(tables: tables, threads: threads, limit: limit)
            session = run
            // Cut at added tokens; pre-tokenization restarts after each, as in tiktoken,
            // llama.cpp and HF tokenizers.
            let matcher = allowSpecialTokens ? matchedWhenAllowed : alwaysMatched
            var start = 0
            while start < bytes.count, out.count < limit {
                let found = matcher.firstMatch(in: text, from: start, end: bytes.count)
                run.encodeOrdinary(text, start..<(found?.at ?? bytes.count), into: &out)
                guard let found, out.count < limit else { break }
                out.append(found.id)
                start = found.at + found.length
            }
        }
        if out.count < limit, addEOS, addsEOS, let eosID { out.append(eosID) }
        if out.count > limit { out.removeLast(out.count - limit) }
        return out
    }

    // MARK: Decoding

    /// The bytes the ids stand for. Control tokens (BOS, EOS, `<|endoftext|>`…) give nothing
    /// unless `includeSpecialTokens`, unused tokens never; ids outside the vocabulary decode to
    /// U+FFFD (EF BF BD). A single token may hold part of a UTF-8 sequence, so the bytes of a
    /// prefix of ids need not be valid UTF-8; those of a whole `encode` result always are.
    public func decode(_ ids: [Int32], includeSpecialTokens: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        vocabulary.bytes.withUnsafeBufferPointer { bytes in
            vocabulary.offsets.withUnsafeBufferPointer { offsets in
                for id in ids {
                    let i = Int(id)
                    guard i >= 0, i < vocabulary.count else {
                        out.append(contentsOf: [0xEF, 0xBF, 0xBD])
                        continue
                    }
                    let type = vocabulary.types[i]
                    if vocabulary.present[i], type == .unused || (type.hiddenInDecode && !includeSpecialTokens) { continue }
                    out.append(contentsOf: bytes[Int(offsets[i])..<Int(offsets[i + 1])])
                }
            }
        }
        return out
    }

    /// The text the ids stand for; ill-formed UTF-8 (from a cut inside a character) becomes U+FFFD.
    public func decodeText(_ ids: [Int32], includeSpecialTokens: Bool = false) -> String {
        String(decoding: decode(ids, includeSpecialTokens: includeSpecialTokens), as: UTF8.self)
    }

    /// The bytes of one token, whatever its kind, or nil if `id` is not in the vocabulary.
    public func tokenBytes(_ id: Int32) -> [UInt8]? {
        let i = Int(id)
        guard i >= 0, i < vocabulary.count, vocabulary.present[i] else { return nil }
        return Array(vocabulary.bytes[Int(vocabulary.offsets[i])..<Int(vocabulary.offsets[i + 1])])
    }
}

