extension TokenizerDescription {
    /// The tokenizer a GGUF file describes in its metadata, as llama.cpp reads it:
    /// `tokenizer.ggml.model` (must be `gpt2`, byte-level BPE; `llama`, SentencePiece, is refused
    /// by name), `.tokens`, `.merges`, `.token_type`, `.pre`, `.bos_token_id`, `.eos_token_id`,
    /// `.add_bos_token`, `.add_eos_token`. Other keys (`.padding_token_id`, the chat template…)
    /// are ignored. Values are only collected here; `BPETokenizer(description:)` checks them.
    ///
    /// - Throws: `TokenizerError` naming the file and the key that is missing or of the wrong type.
    public init(gguf: GGUFFile) throws {
        let source = gguf.path
        func wrongType(_ key: String, _ value: GGUFValue, _ wanted: String) -> TokenizerError {
            .invalidVocabulary(file: source, reason: "\(key) is \(value.summary.prefix(60)), not \(wanted)")
        }
        func string(_ key: String) throws -> String? {
            guard let value = gguf.value(key) else { return nil }
            guard let s = value.stringValue else { throw wrongType(key, value, "a string") }
            return s
        }
        func id(_ key: String) throws -> Int? {
            guard let value = gguf.value(key) else { return nil }
            guard let i = value.intValue else { throw wrongType(key, value, "an integer") }
            return i
        }
        func flag(_ key: String) throws -> Bool? {
            guard let value = gguf.value(key) else { return nil }
            guard let b = value.boolValue else { throw wrongType(key, value, "a bool") }
            return b
        }
        func strings(_ key: String) throws -> [String] {
            guard let value = gguf.value(key) else {
                throw TokenizerError.invalidVocabulary(file: source, reason: "it has no \(key)")
            }
            guard let list = value.stringArray else { throw wrongType(key, value, "an array of strings") }
            return list
        }

        guard let model = try string("tokenizer.ggml.model") else {
            throw TokenizerError.unsupportedTokenizer(file: source, reason: "it has no tokenizer (no tokenizer.ggml.model)")
        }
        try TokenizerDescription.checkModel(model, source: source)
        guard let pre = try string("tokenizer.ggml.pre") else {
            throw TokenizerError.unsupportedTokenizer(
                file: source, reason: "it has no tokenizer.ggml.pre (llama.cpp would guess a \"default\" rule set)")
        }
        var types: [TokenType]?
        if let value = gguf.value("tokenizer.ggml.token_type") {
            guard let raw = value.intArray else { throw wrongType("tokenizer.ggml.token_type", value, "an array of integers") }
            types = try raw.enumerated().map { i, t in
                guard let type = TokenType(rawValue: t) else {
                    throw TokenizerError.invalidVocabulary(
                        file: source, reason: "tokenizer.ggml.token_type[\(i)] is \(t), not a token type (1 normal … 6 byte)")
                }
                return type
            }
        }
        self.init(model: model, tokens: try strings("tokenizer.ggml.tokens"), merges: try strings("tokenizer.ggml.merges"),
                  tokenTypes: types, preTokenizer: pre, bos: try id("tokenizer.ggml.bos_token_id"),
                  eos: try id("tokenizer.ggml.eos_token_id"), addBOS: try flag("tokenizer.ggml.add_bos_token"),
                  addEOS: try flag("tokenizer.ggml.add_eos_token"), source: source)
    }
}
