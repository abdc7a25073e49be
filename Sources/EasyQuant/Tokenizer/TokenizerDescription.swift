/// A byte-level BPE tokenizer as model files describe it, independent of the file format: what
/// GGUF metadata holds under `tokenizer.ggml.*` (see `init(gguf:)` where the GGUF reader is
/// available), or what a program assembles by hand. `BPETokenizer(description:)` checks it.
public struct TokenizerDescription: Sendable, Equatable {
    /// The tokenizer model (`tokenizer.ggml.model`); only `gpt2`, byte-level BPE, is supported.
    public var model: String
    /// Token texts by id, written with the byte-level alphabet (`Ġ` for a space) for normal
    /// tokens and as plain text for control and user-defined ones.
    public var tokens: [String]
    /// Merges in rank order, each "left right".
    public var merges: [String]
    /// The kind of each token, by id; nil means all normal.
    public var tokenTypes: [TokenType]?
    /// The pre-tokenizer rule set's name (`tokenizer.ggml.pre`), e.g. `llama-bpe`.
    public var preTokenizer: String
    /// BOS and EOS ids, if the model has them.
    public var bos: Int?
    public var eos: Int?
    /// Whether `encode` adds BOS / EOS; nil means the rule set's default as in llama.cpp (BOS
    /// for `llama-bpe`, nothing else).
    public var addBOS: Bool?
    public var addEOS: Bool?
    /// Names the source in error messages (a file path).
    public var source: String

    public init(model: String = "gpt2", tokens: [String], merges: [String], tokenTypes: [TokenType]? = nil,
                preTokenizer: String, bos: Int? = nil, eos: Int? = nil, addBOS: Bool? = nil, addEOS: Bool? = nil,
                source: String = "tokenizer description") {
        self.model = model
        self.tokens = tokens
        self.merges = merges
        self.tokenTypes = tokenTypes
        self.preTokenizer = preTokenizer
        self.bos = bos
        self.eos = eos
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.source = source
    }

    /// Refuses every tokenizer model but byte-level BPE (`gpt2`), SentencePiece (`llama`) by name.
    static func checkModel(_ model: String, source: String) throws {
        switch model {
        case "gpt2": return
        case "llama":
            throw TokenizerError.unsupportedTokenizer(
                file: source, reason: "tokenizer model \"llama\" is SentencePiece, which is not implemented (byte-level BPE, \"gpt2\", is)")
        default:
            throw TokenizerError.unsupportedTokenizer(
                file: source, reason: "tokenizer model \"\(model)\" is not byte-level BPE (\"gpt2\")")
        }
    }

    /// The checked definition: every token id in range and listed once, every merge made of
    /// known tokens and producing one, the rule set known.
    func definition() throws -> TokenizerDefinition {
        try TokenizerDescription.checkModel(model, source: source)
        let rules = try PreTokenizerRules(name: preTokenizer, source: source)
        guard tokens.count <= Vocabulary.idLimit else {
            throw TokenizerError.invalidVocabulary(file: source, reason: "it has \(tokens.count) tokens, more than \(Vocabulary.idLimit)")
        }
        if let types = tokenTypes, types.count != tokens.count {
            throw TokenizerError.invalidVocabulary(file: source, reason: "it has \(types.count) token types for \(tokens.count) tokens")
        }
        guard merges.count <= TokenizerDefinition.mergeLimit else {
            throw TokenizerError.invalidMerge(file: source, line: merges.count, reason: "more than \(TokenizerDefinition.mergeLimit) merges")
        }
        var entries: [(text: String, id: Int, type: TokenType)] = []
        entries.reserveCapacity(tokens.count)
        for (id, text) in tokens.enumerated() { entries.append((text, id, tokenTypes?[id] ?? .normal)) }
        let vocabulary = try Vocabulary(entries: entries, file: source)
        var resolved: [(left: Int32, right: Int32, merged: Int32)] = []
        resolved.reserveCapacity(merges.count)
        for (i, merge) in merges.enumerated() {
            var merge = merge
            resolved.append(try merge.withUTF8 { try TokenizerFiles.resolveMerge($0, vocabulary: vocabulary, file: source, line: i + 1) })
        }
        func id(_ value: Int?, _ name: String) throws -> Int32? {
            guard let value else { return nil }
            guard value >= 0, value < tokens.count else {
                throw TokenizerError.invalidVocabulary(file: source, reason: "the \(name) token id \(value) is not in the vocabulary (ids 0..<\(tokens.count))")
            }
            return Int32(value)
        }
        return try TokenizerDefinition(
            vocabulary: vocabulary, vocabularyFile: source, merges: resolved, duplicateMergeRank: .first, rules: rules,
            ignoreMerges: rules.ignoresMergesByDefault, bos: id(bos, "BOS"), eos: id(eos, "EOS"),
            addBOS: addBOS ?? rules.addsBOSByDefault, addEOS: addEOS ?? false
        ).validated()
    }
}
