/// The pre-tokenization rules of a byte-level BPE model: how text is cut into the pieces that
/// BPE merges separately. Named as llama.cpp names them in GGUF files (`tokenizer.ggml.pre`).
///
/// * `gpt2`: GPT-2's pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
///   (`GPT2PreTokenizer`).
/// * `llama-bpe`: Llama 3's pattern, with case-insensitive contractions, one leading non-letter
///   before a word, numbers in groups of up to three and newlines kept with what precedes them
///   (`Llama3PreTokenizer`).
/// * `qwen2`: Llama 3's pattern with numbers one digit at a time.
/// * `smollm`: every number scalar alone, then GPT-2's pattern on the text between them
///   (`SmolLMPreTokenizer`).
public enum PreTokenizerRules: String, CaseIterable, Sendable {
    case gpt2 = "gpt2"
    case llamaBPE = "llama-bpe"
    case qwen2 = "qwen2"
    case smollm = "smollm"

    /// The rule set's name (as in `tokenizer.ggml.pre`).
    public var name: String { rawValue }

    /// Other names llama.cpp gives the same rules.
    var aliases: [String] {
        switch self {
        case .gpt2: return ["gpt-2"]
        case .llamaBPE: return ["llama3", "llama-v3"]
        case .qwen2, .smollm: return []
        }
    }

    /// The rule set called `name` (a name or one of llama.cpp's aliases, such as `gpt-2` or
    /// `llama3`).
    ///
    /// - Throws: `TokenizerError.unknownPreTokenizer` naming `source` and listing the known names.
    public init(name: String, source: String = "tokenizer") throws {
        guard let rules = PreTokenizerRules.allCases.first(where: { $0.rawValue == name || $0.aliases.contains(name) }) else {
            throw TokenizerError.unknownPreTokenizer(source: source, name: name)
        }
        self = rules
    }

    /// The known names with their aliases, for messages: "gpt2 (gpt-2), llama-bpe (llama3, …), …".
    static var knownNames: String {
        allCases.map { $0.aliases.isEmpty ? $0.name : "\($0.name) (\($0.aliases.joined(separator: ", ")))" }
            .joined(separator: ", ")
    }

    /// Whether llama.cpp adds BOS for this rule set when the file does not say
    /// (`tokenizer.ggml.add_bos_token` missing): only Llama 3 does.
    var addsBOSByDefault: Bool { self == .llamaBPE }

    /// Whether a piece that is a token becomes that token even if its merges would not lead to
    /// it (Hugging Face's `ignore_merges`), as llama.cpp sets for Llama 3.
    var ignoresMergesByDefault: Bool { self == .llamaBPE }

    /// The pieces the rules cut `text` into (without BPE), for tests and inspection.
    public func pieces(of text: String) -> [String] {
        var text = text
        return text.withUTF8 { utf8 -> [String] in
            guard let base = utf8.baseAddress, utf8.count > 0 else { return [] }
            var ranges: [Range<Int>] = []
            forEachPiece(base, 0..<utf8.count) { ranges.append($0) }
            return ranges.map { String(decoding: UnsafeBufferPointer(rebasing: utf8[$0]), as: UTF8.self) }
        }
    }

    private func forEachPiece(_ text: UnsafePointer<UInt8>, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        func run<S: PieceScanner>(_ scanner: S.Type) {
            var s = S(text: text, start: range.lowerBound, end: range.upperBound)
            while let piece = s.next() { body(piece) }
        }
        switch self {
        case .gpt2: run(GPT2PreTokenizer.self)
        case .llamaBPE: run(Llama3PreTokenizer.self)
        case .qwen2: run(Qwen2PreTokenizer.self)
        case .smollm: run(SmolLMPreTokenizer.self)
        }
    }

    // MARK: tokenizer.json

    /// Llama 3's pattern as its tokenizer.json writes it (a `Split` before a `ByteLevel` that
    /// does not split again).
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// Qwen2's pattern as its tokenizer.json writes it.
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The rule set a tokenizer.json `pre_tokenizer` section describes, or a reason why it is
    /// none of the known ones. Only settings that change the pieces are compared (not, e.g.,
    /// `trim_offsets`).
    static func recognize(_ pre: JSONValue) -> Result<PreTokenizerRules, PreTokenizerMismatch> {
        func byteLevel(_ v: JSONValue, splits: Bool) -> Bool {
            v["type"]?.stringValue == "ByteLevel"
                && (v["add_prefix_space"]?.boolValue ?? false) == false
                && (v["use_regex"]?.boolValue ?? true) == splits
        }
        if byteLevel(pre, splits: true) { return .success(.gpt2) }
        if pre["type"]?.stringValue == "Sequence", let steps = pre["pretokenizers"]?.arrayValue, steps.count == 2 {
            let first = steps[0]
            if first["type"]?.stringValue == "Digits", first["individual_digits"]?.boolValue == true,
               byteLevel(steps[1], splits: true) {
                return .success(.smollm)
            }
            if first["type"]?.stringValue == "Split", let pattern = first["pattern"]?["Regex"]?.stringValue,
               first["behavior"]?.stringValue == "Isolated", (first["invert"]?.boolValue ?? false) == false,
               byteLevel(steps[1], splits: false) {
                if pattern == llama3Pattern { return .success(.llamaBPE) }
                if pattern == qwen2Pattern { return .success(.qwen2) }
                return .failure(PreTokenizerMismatch(description: "its Split pattern \(JSONValue.string(pattern).serialized()) is not Llama 3's or Qwen2's"))
            }
        }
        let type = pre["type"]?.stringValue ?? "?"
        let steps = pre["pretokenizers"]?.arrayValue.map { " of " + $0.map { $0["type"]?.stringValue ?? "?" }.joined(separator: ", ") } ?? ""
        return .failure(PreTokenizerMismatch(description: "pre_tokenizer \(type)\(steps) is not one of the known rule sets (\(knownNames))"))
    }
}

/// Why a tokenizer.json pre-tokenizer was not recognized.
struct PreTokenizerMismatch: Error {
    let description: String
}
