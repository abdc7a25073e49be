/// Describing a loaded tokenizer again, format-independently, and as GGUF metadata: how an
/// exported GGUF file carries the model's tokenizer for llama.cpp.
extension BPETokenizer {
    /// The tokenizer as a `TokenizerDescription`: every token's text (byte-level alphabet for
    /// normal tokens, plain text for added ones) and kind by id, the merges in rank order,
    /// the rule set, BOS/EOS and the add flags. `BPETokenizer(description:)` of it encodes
    /// every text to the same ids as this tokenizer, except where the source files asked for
    /// merges to be ignored under rules that do not ignore them by default (llama.cpp decides
    /// that from the rule set alone).
    ///
    /// A merge pair listed twice is written once, at the rank this tokenizer gives it (GGUF
    /// readers keep the first). An id no token has (a gap) is written as an unused token
    /// `[UNUSED_<id>]`, since GGUF lists tokens densely.
    public func portableDescription(source: String = "tokenizer") -> TokenizerDescription {
        var tokens: [String] = []
        var types: [TokenType] = []
        tokens.reserveCapacity(vocabulary.count)
        types.reserveCapacity(vocabulary.count)
        for id in 0..<vocabulary.count {
            guard vocabulary.present[id] else {
                tokens.append("[UNUSED_\(id)]")
                types.append(.unused)
                continue
            }
            let type = vocabulary.types[id]
            let stored = Array(vocabulary.bytes[Int(vocabulary.offsets[id])..<Int(vocabulary.offsets[id + 1])])
            // Normal tokens whose text was byte-level store the decoded bytes; everything else
            // stores its text's UTF-8 (see `Vocabulary`).
            tokens.append(type.isByteLevel && vocabulary.textIsByteLevel[id]
                          ? ByteLevelAlphabet.tokenText(ofBytes: stored) : String(decoding: stored, as: UTF8.self))
            types.append(type)
        }
        // The rank that counts for each pair: its first listing, or its last.
        var counted: [SIMD2<Int32>: Int] = [:]
        for (rank, pair) in rankedMerges.enumerated() {
            if duplicateMergeRank == .last || counted[pair] == nil { counted[pair] = rank }
        }
        var merges: [String] = []
        merges.reserveCapacity(counted.count)
        for (rank, pair) in rankedMerges.enumerated() where counted[pair] == rank {
            merges.append(tokens[Int(pair.x)] + " " + tokens[Int(pair.y)])
        }
        return TokenizerDescription(model: "gpt2", tokens: tokens, merges: merges, tokenTypes: types,
                                    preTokenizer: preTokenizer.ggufName, bos: bosID.map(Int.init), eos: eosID.map(Int.init),
                                    addBOS: addsBOS, addEOS: addsEOS, source: source)
    }
}

extension PreTokenizerRules {
    /// The name llama.cpp recognises in `tokenizer.ggml.pre`: GPT-2's rules are "gpt-2"
    /// there ("gpt2" is not one of its names).
    public var ggufName: String { self == .gpt2 ? "gpt-2" : rawValue }
}

extension TokenizerDescription {
    /// The `tokenizer.ggml.*` metadata llama.cpp reads: model, pre, tokens, token_type (i32),
    /// merges, bos/eos ids (u32), add_bos_token and add_eos_token (always written, so that
    /// llama.cpp does not fall back to its own defaults).
    public func ggufMetadata() throws -> [(key: String, value: GGUFValue)] {
        var out: [(key: String, value: GGUFValue)] = [
            ("tokenizer.ggml.model", .string(model)),
            ("tokenizer.ggml.pre", .string(preTokenizer)),
            ("tokenizer.ggml.tokens", .array(.string, tokens.map(GGUFValue.string))),
            ("tokenizer.ggml.token_type", .array(.int32, (tokenTypes ?? Array(repeating: .normal, count: tokens.count)).map { .int32(Int32($0.rawValue)) })),
            ("tokenizer.ggml.merges", .array(.string, merges.map(GGUFValue.string))),
        ]
        if let bos { out.append(("tokenizer.ggml.bos_token_id", try GGUFValue.u32(bos, "tokenizer.ggml.bos_token_id"))) }
        if let eos { out.append(("tokenizer.ggml.eos_token_id", try GGUFValue.u32(eos, "tokenizer.ggml.eos_token_id"))) }
        let rules = try PreTokenizerRules(name: preTokenizer, source: source)
        out.append(("tokenizer.ggml.add_bos_token", .bool(addBOS ?? rules.addsBOSByDefault)))
        out.append(("tokenizer.ggml.add_eos_token", .bool(addEOS ?? false)))
        return out
    }
}
