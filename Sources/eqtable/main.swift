import ArgumentParser
import EasyQuant
import Foundation

/// eqtable: every method on one model and one text, in one table.
struct EQTable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eqtable",
        abstract: "Quantize a model with every method in memory and compare them on one text: size, perplexity, KL divergence and top-1 agreement against f32, speed.",
        discussion: "The seed's \"Perplexity Analysis\" table for any model and text. Nothing is written to disk unless --keep-files DIR.",
        version: EasyQuantVersion.string)

    @Argument(help: "The f32 source model: .safetensors file or Hugging Face model folder.")
    var model: String

    @Argument(help: "A UTF-8 text file to score.")
    var text: String

    @Option(help: "Calibration text (a different text from the one scored), for smoothquant, zeroquant + LKD and the KV cache rows.")
    var calib: String?

    @Option(help: "Rows to run: \(ComparisonStudy.allCases.map(\.rawValue).joined(separator: ", ")).")
    var study = "methods"

    @Option(help: "Score only the first N tokens of the text.")
    var maxTokens: Int?

    @Option(help: "Window length (default: the model's n_positions).")
    var ctx: Int?

    @Option(help: "Window stride (default: --ctx).")
    var stride: Int?

    @Option(help: "Calibration windows.")
    var calibSamples = 32

    @Option(help: "Tokens per calibration window (default: 512 or the model's context).")
    var calibLen: Int?

    @Option(help: "Distillation steps per block for the zeroquant + LKD rows.")
    var lkdSteps = 100

    @Option(help: "Seed for calibration windows and distillation batches.")
    var seed: UInt64 = 0

    @Option(help: "Threads to use (default: all cores).")
    var threads = Parallel.defaultThreads

    @Option(help: "Also write each row's .eqm into this folder.")
    var keepFiles: String?

    @Option(help: "Write a bar chart of the perplexity change against f32 (SVG).")
    var svg: String?

    @Flag(help: "Print the table as Markdown.")
    var markdown = false

    @Flag(help: "Print the rows as JSON.")
    var json = false

    func validate() throws {
        guard ComparisonStudy(rawValue: study) != nil else {
            throw ValidationError("--study must be one of \(ComparisonStudy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let maxTokens, maxTokens < 2 { throw ValidationError("--max-tokens must be at least 2") }
        guard threads >= 1, lkdSteps >= 0, calibSamples >= 1 else { throw ValidationError("--threads, --calib-samples must be positive, --lkd-steps not negative") }
    }

    func run() throws {
        let source = try openConversionSource(path: model)
        let weights = try source.weightSource()
        let config = try weights.modelConfig()
        let tokenizer = try EvaluationSetup.tokenizer(for: weights, override: nil)
        var ids = try EvaluationSetup.tokens(ofTextFile: text, tokenizer: tokenizer, threads: threads)
        let textTokens = ids.count
        if let maxTokens, ids.count > maxTokens { ids.removeSubrange(maxTokens...) }
        let window = min(ctx ?? config.contextLength, config.contextLength)
        let settings = PerplexityProtocol(contextLength: window, stride: stride)
        let calibration = calib.map { CalibrationOptions(file: $0, samples: calibSamples, length: calibLen, seed: seed) }
        let comparison = MethodComparison(source: source, tokens: ids, settings: settings, calibration: calibration,
                                          threads: threads, keepFilesIn: keepFiles, lkdSteps: lkdSteps)
        let rows = ComparisonStudy(rawValue: study)!.rows(lkdSteps: lkdSteps)
        let interactive = isatty(STDERR_FILENO) != 0
        let results = try comparison.run(rows) { i, label in
            if interactive { FileHandle.standardError.write("[\(i + 1)/\(rows.count)] \(label)\n".data(using: .utf8)!) }
        }
        let title = "\((model as NSString).lastPathComponent) on \((text as NSString).lastPathComponent): \(ids.count) of \(textTokens) tokens, ctx \(settings.contextLength), stride \(settings.stride)"
        if let svg { try writeAtomically(Array(MethodComparison.chart(results, title: title).utf8), to: svg) }
        if json {
            print(JSONValue.makeObject([
                ("model", .string(model)), ("text", .string(text)), ("text_tokens", JSONValue(textTokens)),
                ("evaluated_tokens", JSONValue(ids.count)), ("ctx", JSONValue(settings.contextLength)), ("stride", JSONValue(settings.stride)),
                ("study", .string(study)), ("calibration", calibration.map { .string($0.file) } ?? .null),
                ("rows", .array(results.map(\.json))),
            ]).prettyPrinted())
        } else if markdown {
            print(title + "\n")
            print(MethodComparison.markdown(results), terminator: "")
        } else {
            print(title + "\n")
            print(MethodComparison.text(results), terminator: "")
        }
    }
}

EQTable.main()
