import ArgumentParser
import EasyQuant
import EasyQuantCLI
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

    @OptionGroup var calibration: CalibrationArguments

    @Option(help: "Rows to run: \(ComparisonStudy.allCases.map(\.rawValue).joined(separator: ", ")).")
    var study = "methods"

    @OptionGroup var windows: WindowOptions

    @Option(parsing: .unconditional, help: "Distillation steps per block for the zeroquant + LKD rows.")
    var lkdSteps = 100

    @OptionGroup var threading: ThreadOptions

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
            throw ValidationError("--study must be one of \(ComparisonStudy.allCases.map(\.rawValue).joined(separator: ", ")), not \(study)")
        }
        guard lkdSteps >= 0 else { throw ValidationError("--lkd-steps must be 0 or more, not \(lkdSteps)") }
    }

    func run() throws {
        try ToolPaths.checkInput(model, role: "f32 model (.safetensors, GGUF or a model folder)", directoryAllowed: true)
        try ToolPaths.checkInput(text, role: "UTF-8 text")
        var inputs = ToolPaths.modelFiles(model) + [text]
        if let calib = calibration.calib {
            try ToolPaths.checkInput(calib, role: "calibration text")
            inputs.append(calib)
        }
        if let svg { try ToolPaths.refuseOverwriting(svg, inputs: inputs) }
        if let keepFiles { try ToolPaths.checkInput(keepFiles, role: "folder for the rows' .eqm files", directoryAllowed: true) }
        let threads = threading.threads
        let source = try openConversionSource(path: model)
        let weights = try source.weightSource()
        let config = try weights.modelConfig()
        try calibration.check(against: config, model: model)
        let settings = try windows.protocolSettings(for: config, model: model)
        let tokenizer = try EvaluationSetup.tokenizer(for: weights, override: nil)
        let ids = try EvaluationSetup.tokens(ofTextFile: text, tokenizer: tokenizer, maxTokens: windows.maxTokens, threads: threads)
        guard ids.count >= 2 else { throw EvaluationSetup.Failure.textTooShort(path: text, tokens: ids.count) }
        let textTokens: Int? = windows.maxTokens.map { ids.count < $0 ? ids.count : nil } ?? ids.count
        let calibration = self.calibration.options(defaultSamples: 32)
        var comparison = MethodComparison(source: source, tokens: ids, settings: settings, calibration: calibration,
                                          threads: threads, keepFilesIn: keepFiles, lkdSteps: lkdSteps)
        comparison.protectedInputs = inputs
        let rows = ComparisonStudy(rawValue: study)!.rows(lkdSteps: lkdSteps)
        let interactive = isatty(STDERR_FILENO) != 0
        let results = try comparison.run(rows) { i, label in
            if interactive { FileHandle.standardError.write("[\(i + 1)/\(rows.count)] \(label)\n".data(using: .utf8)!) }
        }
        let counted = textTokens.map { "\(ids.count) of \($0) tokens" } ?? "the first \(ids.count) tokens"
        let title = "\((model as NSString).lastPathComponent) on \((text as NSString).lastPathComponent): \(counted), ctx \(settings.contextLength), stride \(settings.stride)"
        if let svg { try writeAtomically(Array(MethodComparison.chart(results, title: title).utf8), to: svg) }
        if json {
            print(JSONValue.makeObject([
                ("model", .string(model)), ("text", .string(text)), ("text_tokens", textTokens.map { JSONValue($0) } ?? .null),
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
