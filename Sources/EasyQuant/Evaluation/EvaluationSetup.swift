import Foundation

/// A model opened for running: its weights, the compute mode, the network and its tokenizer.
public struct LoadedModel {
    public var source: any WeightSource
    public var mode: ComputeMode
    public var network: any CausalLanguageModel
    public var tokenizer: BPETokenizer

    /// Opens `path` (.eqm, GGUF, .safetensors or a folder). `compute` nil means what the file
    /// asks for (int8 for W8A8 files), else f32; `tokenizerDirectory` overrides the model's own.
    public init(path: String, compute: ComputeMode?, tokenizerDirectory: String?) throws {
        source = try openWeightSource(path: path)
        mode = compute ?? (source.prefersInt8Compute ? .int8 : .f32)
        network = try source.makeModel(quantizeDenseForInt8: mode == .int8)
        tokenizer = try EvaluationSetup.tokenizer(for: source, override: tokenizerDirectory)
    }

    /// The KV-cache quantization for `bits` (nil: none), from the key ranges the file carries.
    public func kvQuantization(bits: Int?, outlierPercent: Double) throws -> KVQuantization? {
        try bits.map {
            try KVQuantization.load(from: source, layers: network.config.layerCount, heads: network.config.kvHeadCount,
                                    width: network.config.kvSize, bits: $0, outlierPercent: outlierPercent)
        }
    }
}

/// Finding the pieces an evaluation needs: the model's tokenizer and the text's tokens.
public enum EvaluationSetup {
    /// Why the tokenizer or the text could not be had.
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case noTokenizer(model: String)
        case textNotUTF8(path: String, offset: Int)
        case textTooShort(path: String, tokens: Int)

        public var description: String {
            switch self {
            case .noTokenizer(let m):
                return "\(m): no tokenizer in the model (no vocab.json + merges.txt or tokenizer.json beside it, none embedded); pass --tokenizer DIR with GPT-2's vocab.json and merges.txt, or convert the model folder that has them"
            case let .textNotUTF8(p, o):
                return "\(p): not UTF-8 text (invalid byte sequence at byte \(o)); convert it with iconv -t UTF-8"
            case let .textTooShort(p, n):
                return "\(p): only \(n) tokens; perplexity needs at least 2"
            }
        }
    }

    /// The tokenizer from `directory` if given, else the one shipped with the model: the
    /// GGUF metadata of a GGUF file, or the files beside a safetensors model or embedded in
    /// an `.eqm` (`tokenizer.json` first, as it describes the pre-tokenizer; a vocabulary-only
    /// GGUF, `tokenizer.gguf`, for models converted from GGUF).
    public static func tokenizer(for source: any WeightSource, override directory: String?) throws -> BPETokenizer {
        if let directory { return try BPETokenizer.load(directory: directory) }
        if let gguf = source as? GGUFWeightSource { return try BPETokenizer(description: TokenizerDescription(gguf: gguf.file)) }
        let files = try source.tokenizerFiles()
        if let json = files["tokenizer.json"] {
            return try BPETokenizer(tokenizerJSON: json, tokenizerConfigJSON: files["tokenizer_config.json"])
        }
        if let vocab = files["vocab.json"], let merges = files["merges.txt"] {
            return try BPETokenizer(vocabJSON: vocab, merges: merges)
        }
        if let vocab = files["encoder.json"], let merges = files["vocab.bpe"] {
            return try BPETokenizer(vocabJSON: vocab, merges: merges)
        }
        if let vocabulary = files[GGUFVocabulary.fileName] {
            let file = try GGUFFile(file: MappedFile(bytes: vocabulary, name: source.origin + " (embedded " + GGUFVocabulary.fileName + ")"))
            return try BPETokenizer(description: TokenizerDescription(gguf: file))
        }
        throw Failure.noTokenizer(model: source.origin)
    }

    /// The text file as tokens: all of it, or only the first `maxTokens` (tokenizing stops
    /// early then, so a huge text costs only what the evaluation uses).
    public static func tokens(ofTextFile path: String, tokenizer: BPETokenizer, maxTokens: Int? = nil, threads: Int) throws -> [Int32] {
        let text = try MappedFile(path: path)
        do {
            return try tokenizer.encode(utf8: text.bytes, maxTokens: maxTokens, threads: threads)
        } catch TokenizerError.invalidUTF8(let offset) {
            throw Failure.textNotUTF8(path: path, offset: offset)
        }
    }
}

/// The embedded-tokenizer file of a model converted from GGUF: a GGUF file holding only the
/// `tokenizer.*` metadata of the original (no tensors).
public enum GGUFVocabulary {
    public static let fileName = "tokenizer.gguf"
}
