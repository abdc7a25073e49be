/// Why a tokenizer could not be loaded, or why input could not be encoded.
///
/// Each description is one line that names the file (or the input) and says what to do.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No tokenizer files in a folder; `lookedFor` lists the names tried.
    case filesNotFound(directory: String, lookedFor: [String])
    /// One file of a pair is there but its partner is not.
    case partnerMissing(directory: String, found: String, missing: String)
    /// A file could not be read.
    case cannotRead(path: String, reason: String)
    /// A JSON file (vocab.json, encoder.json, tokenizer.json) is not valid JSON.
    case invalidJSON(file: String, offset: Int, reason: String)
    /// The vocabulary is readable but not a usable byte-level BPE vocabulary (ids out of range,
    /// a token listed twice, a missing byte token, a BOS id that is no token, …).
    case invalidVocabulary(file: String, reason: String)
    /// A merge rule is malformed or names a token the vocabulary lacks. `line` is 1-based (in
    /// tokenizer.json and GGUF files it is the 1-based position in the list of merges).
    case invalidMerge(file: String, line: Int, reason: String)
    /// A tokenizer of a kind this library does not implement (a SentencePiece model, a
    /// normalizer, an unknown pre-tokenizer section in tokenizer.json, …).
    case unsupportedTokenizer(file: String, reason: String)
    /// A pre-tokenizer name (`tokenizer.ggml.pre`) that is not one of `PreTokenizerRules`.
    case unknownPreTokenizer(source: String, name: String)
    /// Input bytes that are not valid UTF-8; `offset` is where the bad sequence starts.
    case invalidUTF8(offset: Int)

    /// One line whatever went into it: names and pre-tokenizer names come from the file.
    public var description: String { MessageText.oneLine(text) }

    private var text: String {
        switch self {
        case let .filesNotFound(directory, lookedFor):
            return "\(directory): no tokenizer found (looked for \(lookedFor.joined(separator: ", "))); "
                + "copy the model's tokenizer.json (or GPT-2's vocab.json and merges.txt) into that folder"
        case let .partnerMissing(directory, found, missing):
            return "\(directory): found \(found) but not \(missing); the two files go together, add \(missing) next to it"
        case let .cannotRead(path, reason):
            return "\(path): cannot read: \(reason); check that the file exists and is readable"
        case let .invalidJSON(file, offset, reason):
            return "\(file): invalid JSON at byte \(offset): \(reason); replace the file with an intact copy"
        case let .invalidVocabulary(file, reason):
            return "\(file): not a usable byte-level BPE vocabulary: \(reason); use the tokenizer files that belong to the model, unmodified"
        case let .invalidMerge(file, line, reason):
            return "\(file):\(line): invalid merge: \(reason); use the merges that belong to this vocabulary (same file or same model)"
        case let .unsupportedTokenizer(file, reason):
            return "\(file): unsupported tokenizer: \(reason); only byte-level BPE tokenizers with the rule sets \(PreTokenizerRules.knownNames) are supported"
        case let .unknownPreTokenizer(source, name):
            return "\(source): unknown pre-tokenizer \"\(name)\"; the known ones are \(PreTokenizerRules.knownNames)"
        case let .invalidUTF8(offset):
            return "input is not valid UTF-8 at byte \(offset); convert the text to UTF-8 before encoding it"
        }
    }
}
