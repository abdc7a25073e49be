/// What a tokenizer's files say, checked, before any table for encoding is built. Every loader
/// (vocab.json + merges.txt, tokenizer.json, `TokenizerDescription`) ends here.
struct TokenizerDefinition {
    var vocabulary: Vocabulary
    /// The file the vocabulary came from, for errors found later.
    var vocabularyFile: String
    /// Merges in rank order, and which rank a pair listed twice keeps.
    var merges: [(left: Int32, right: Int32, merged: Int32)]
    var duplicateMergeRank: MergeTable.DuplicateRank
    var rules: PreTokenizerRules
    /// Whether a piece that is a token becomes it without merging (HF `ignore_merges`).
    var ignoreMerges: Bool
    var bos: Int32?
    var eos: Int32?
    var addBOS: Bool
    var addEOS: Bool

    /// Checks what the vocabulary alone cannot: that the ids given for BOS and EOS exist and
    /// that a token to add is known.
    func validated() throws -> TokenizerDefinition {
        for (name, id) in [("BOS", bos), ("EOS", eos)] {
            guard let id else { continue }
            guard id >= 0, Int(id) < vocabulary.count, vocabulary.present[Int(id)] else {
                throw TokenizerError.invalidVocabulary(
                    file: vocabularyFile, reason: "the \(name) token id \(id) is not in the vocabulary (ids 0..<\(vocabulary.count))")
            }
        }
        if addBOS, bos == nil {
            throw TokenizerError.invalidVocabulary(file: vocabularyFile, reason: "it asks to add a BOS token but names none")
        }
        if addEOS, eos == nil {
            throw TokenizerError.invalidVocabulary(file: vocabularyFile, reason: "it asks to add an EOS token but names none")
        }
        // A merge joins byte-level tokens into a byte-level token. One that makes an unused,
        // control or user-defined token would lose text (unused tokens decode to nothing) or
        // change it (those tokens decode to their raw text, not through the byte alphabet).
        for (rank, merge) in merges.enumerated() {
            for id in [merge.left, merge.right, merge.merged] where !vocabulary.types[Int(id)].isByteLevel {
                let text = String(decoding: vocabulary.bytes[Int(vocabulary.offsets[Int(id)])..<Int(vocabulary.offsets[Int(id) + 1])], as: UTF8.self)
                throw TokenizerError.invalidVocabulary(
                    file: vocabularyFile,
                    reason: "merge \(rank + 1) involves token \(id) \(Vocabulary.quoted(text)), which is of type \(vocabulary.types[Int(id)]); merges may only join normal tokens")
            }
        }
        return self
    }

    /// Merge ranks are 32-bit, and so are the merge table's sizes.
    static let mergeLimit = 1 << 26
}
