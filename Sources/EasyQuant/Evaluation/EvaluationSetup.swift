import Foundation

/// A model opened for running: its weights, the compute mode, the network and its tokenizer.
public struct LoadedModel {
    public var source: any WeightSource
    public var mode: ComputeMode
    public var network: any CausalLanguageModel
    public var tokenizer: GPT2Tokenizer

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

    /// The tokenizer from `directory` if given, else the one shipped with the model.
    public static func tokenizer(for source: any WeightSource, override directory: String?) throws -> GPT2Tokenizer {
        if let directory { return try GPT2Tokenizer.load(directory: directory) }
        let files = try source.tokenizerFiles()
        if let vocab = files["vocab.json"], let merges = files["merges.txt"] {
            return try GPT2Tokenizer(vocabJSON: vocab, merges: merges)
        }
        if let vocab = files["encoder.json"], let merges = files["vocab.bpe"] {
            return try GPT2Tokenizer(vocabJSON: vocab, merges: merges)
        }
        if let json = files["tokenizer.json"] { return try GPT2Tokenizer(tokenizerJSON: json) }
        throw Failure.noTokenizer(model: source.origin)
    }

    /// The whole text file as tokens.
    public static func tokens(ofTextFile path: String, tokenizer: GPT2Tokenizer, threads: Int) throws -> [Int32] {
        let text = try MappedFile(path: path)
        do {
            return try tokenizer.encode(utf8: text.bytes, threads: threads)
        } catch TokenizerError.invalidUTF8(let offset) {
            throw Failure.textNotUTF8(path: path, offset: offset)
        }
    }
}
