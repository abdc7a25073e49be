import ArgumentParser
import EasyQuant
import Foundation

/// eqppl: the perplexity of a text under a GPT-2 model, run straight from its file.
struct EQPPL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eqppl",
        abstract: "Run GPT-2 from an .eqm, a .safetensors file or a model folder, and print the perplexity of a text.",
        discussion: """
        The text is tokenized whole; windows of --ctx tokens advance by --stride; in each window after the \
        first only the tokens not scored before are scored, each from its full left context in the window; \
        ppl = exp(total NLL / scored tokens).
        """,
        version: EasyQuantVersion.string)

    @Argument(help: "The model: .eqm, .safetensors, or a Hugging Face model folder.")
    var model: String

    @Argument(help: "A UTF-8 text file.")
    var text: String

    @Option(help: "Window length in tokens (default: the model's n_positions).")
    var ctx: Int?

    @Option(help: "Tokens the window advances by (default: --ctx, non-overlapping windows).")
    var stride: Int?

    @Option(help: "Evaluate only the first N tokens of the text.")
    var maxTokens: Int?

    @Option(help: "f32 (weights dequantized inside the products) or int8 (activations quantized per token). Default: what the file asks for, else f32.")
    var compute: String?

    @Option(help: "Matrix backend: \(MatrixBackends.names.joined(separator: ", ")).")
    var backend = MatrixBackends.names[0]

    @Option(help: "Threads to use (default: all cores).")
    var threads = Parallel.defaultThreads

    @Option(help: "Folder with vocab.json + merges.txt (or tokenizer.json) to use instead of the model's own tokenizer.")
    var tokenizer: String?

    @Option(help: "Quantize attention keys and values as a cache would hold them, to 8, 4 or 2 bits (needs key ranges recorded by eqconvert --calib).")
    var kvBits: Int?

    @Option(help: "With --kv-bits: keep this percentage of outlier values exactly (dense-and-sparse): 0, 0.1, 0.5, 1, 2 or 5.")
    var kvOutliers: Double = 0

    @Option(help: "A reference model (the f32 original, any format): score the same windows with both and report KL divergence, top-1 agreement and logit RMS against it.")
    var reference: String?

    @Option(help: "Write the first window's logits (float32, little-endian, row-major [positions, vocab]) to FILE, to compare with another implementation.")
    var dumpLogits: String?

    @Flag(help: "Measure where the time goes (matrix products, attention, output layer, the rest).")
    var profile = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if let ctx, ctx < 2 { throw ValidationError("--ctx must be at least 2") }
        if let stride, stride < 1 { throw ValidationError("--stride must be at least 1") }
        if let maxTokens, maxTokens < 2 { throw ValidationError("--max-tokens must be at least 2") }
        if let compute, ComputeMode(rawValue: compute) == nil { throw ValidationError("--compute must be f32 or int8") }
        guard MatrixBackends.named(backend) != nil else {
            throw ValidationError("--backend must be one of \(MatrixBackends.names.joined(separator: ", "))")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if let kvBits, ![2, 3, 4, 5, 6, 7, 8].contains(kvBits) { throw ValidationError("--kv-bits must be between 2 and 8") }
    }

    func run() throws {
        let loaded = try LoadedModel(path: model, compute: compute.flatMap(ComputeMode.init), tokenizerDirectory: tokenizer)
        let (source, mode, network, tok) = (loaded.source, loaded.mode, loaded.network, loaded.tokenizer)
        if let eqm = source as? EQMWeightSource, let calibrated = eqm.file.quantizationInfo?["calibration"]?["sha256"]?.stringValue,
           calibrated == (try? SHA256Hasher.hex(ofFile: text)) {
            FileHandle.standardError.write("warning: \(text) is the text this model was calibrated on (same sha256); its perplexity here flatters the quantized model. Evaluate on a different text.\n".data(using: .utf8)!)
        }
        var ids = try EvaluationSetup.tokens(ofTextFile: text, tokenizer: tok, threads: threads)
        let textTokens = ids.count
        if let maxTokens, ids.count > maxTokens { ids.removeSubrange(maxTokens...) }
        guard ids.count >= 2 else { throw EvaluationSetup.Failure.textTooShort(path: text, tokens: ids.count) }
        if let bad = ids.first(where: { Int($0) >= network.config.vocabSize }) {
            throw ModelError.unsupported(origin: model, reason: "the tokenizer produced id \(bad) but the model has only \(network.config.vocabSize) tokens; use the tokenizer that belongs to this model (--tokenizer DIR)")
        }

        let window = min(ctx ?? network.config.contextLength, network.config.contextLength)
        let settings = PerplexityProtocol(contextLength: window, stride: stride)
        var context = ComputeContext(mode: mode, backendName: backend, threads: threads)
        let timing = profile ? ForwardProfile() : nil
        context.profile = timing
        context.kvQuantization = try loaded.kvQuantization(bits: kvBits, outlierPercent: kvOutliers)
        context.kvTally = kvBits.map { _ in KVQuantization.Tally() }
        let e = network.config.kvSize, layers = network.config.layerCount
        let kvBytes: Double
        if let reference {
            try compare(network, context: context, source: source, against: reference, ids: ids, settings: settings, textTokens: textTokens)
            return
        }
        var evaluator = PerplexityEvaluator(model: network, context: context, protocolSettings: settings)
        let dump = try dumpLogits.map { try OutputFile(path: $0) }
        var dumpError: Error?
        if let dump {
            evaluator.firstWindowLogits = { _, rows in
                do { try dump.write(UnsafeRawBufferPointer(rows)) } catch { dumpError = error }
            }
        }
        let bar = ProgressBar(label: "scoring", unit: "tok")
        let result = try evaluator.evaluate(ids) { bar.update($0, of: $1) }
        bar.finish()
        if let dumpError { throw dumpError }
        kvBytes = Double(layers) * (context.kvQuantization?.bytesPerTokenPerLayer(width: e, tally: context.kvTally) ?? Double(2 * e * 4))
        try dump?.commit()

        let phases = timing?.seconds ?? []
        let phaseTotal = phases.reduce(0) { $0 + $1.seconds }
        var fields: [(String, JSONValue)] = [
            ("model", .string(model)), ("method", .string(source.methodDescription)),
            ("compute", .string(mode.rawValue)), ("backend", .string(context.backend.name)),
            ("ctx", JSONValue(settings.contextLength)), ("stride", JSONValue(settings.stride)),
            ("text_tokens", JSONValue(textTokens)), ("evaluated_tokens", JSONValue(ids.count)),
            ("scored_tokens", JSONValue(result.scoredTokens)), ("windows", JSONValue(result.windows)),
            ("kv_bits", kvBits.map { JSONValue($0) } ?? .int(32)), ("kv_outliers_percent", .double(kvBits == nil ? 0 : kvOutliers)),
            ("kv_bytes_per_token", .double(kvBytes)),
            ("nll_total", .double(result.totalNLL)), ("nll_mean", .double(result.meanNLL)),
            ("ppl", .double(result.perplexity)),
            ("seconds", .double(result.seconds)), ("tokens_per_second", .double(result.tokensPerSecond)),
        ]
        if !phases.isEmpty {
            fields.append(("profile_seconds", .makeObject(phases.map { ($0.phase.rawValue, .double($0.seconds)) })))
        }
        if json {
            print(JSONValue.makeObject(fields).prettyPrinted())
            return
        }
        print(TextTable.keyValue([
            ("model", model),
            ("method", source.methodDescription),
            ("compute", "\(mode.rawValue) (\(context.backend.name), \(threads) threads)"),
            ("ctx / stride", "\(settings.contextLength) / \(settings.stride)"),
            ("text tokens", "\(textTokens)" + (ids.count < textTokens ? " (first \(ids.count) evaluated)" : "")),
            ("scored tokens", "\(result.scoredTokens) in \(result.windows) windows"),
            ("KV cache", (kvBits.map { "\($0)-bit" + (kvOutliers > 0 ? " + \(Format.fixed(kvOutliers, 1))% outliers" : "") } ?? "f32")
                + ", " + Format.fixed(kvBytes / 1024, 1) + " KiB per token"),
            ("NLL", Format.fixed(result.meanNLL, 4) + " nats/token (total " + Format.fixed(result.totalNLL, 1) + ")"),
            ("perplexity", Format.fixed(result.perplexity, 4)),
            ("elapsed", Format.duration(result.seconds) + "  (" + Format.fixed(result.tokensPerSecond, 0) + " tokens/s)"),
        ]), terminator: "")
        if !phases.isEmpty {
            var table = TextTable([.init("phase", .left), .init("seconds"), .init("share")])
            for (phase, seconds) in phases {
                table.add([phase.rawValue, Format.fixed(seconds, 2), Format.fixed(100 * seconds / max(phaseTotal, 1e-9), 1) + "%"])
            }
            print("\n" + table.render(), terminator: "")
        }
    }
}

extension EQPPL {
    /// `--reference`: both models on the same windows, distributions compared position by position.
    func compare(_ network: any CausalLanguageModel, context: ComputeContext, source: any WeightSource, against referencePath: String,
                 ids: [Int32], settings: PerplexityProtocol, textTokens: Int) throws {
        let referenceSource = try openWeightSource(path: referencePath)
        let referenceModel = try referenceSource.makeModel()
        var referenceContext = context
        referenceContext.mode = .f32
        referenceContext.kvQuantization = nil
        let comparison = ReferenceComparison(model: network, modelContext: context, reference: referenceModel,
                                             referenceContext: referenceContext, protocolSettings: settings)
        let bar = ProgressBar(label: "comparing", unit: "tok")
        let r = try comparison.evaluate(ids) { bar.update($0, of: $1) }
        bar.finish()
        let change = 100 * (r.model.perplexity / r.reference.perplexity - 1)
        if json {
            print(JSONValue.makeObject([
                ("model", .string(model)), ("reference", .string(referencePath)), ("method", .string(source.methodDescription)),
                ("compute", .string(context.mode.rawValue)), ("ctx", JSONValue(settings.contextLength)), ("stride", JSONValue(settings.stride)),
                ("text_tokens", JSONValue(textTokens)), ("scored_tokens", JSONValue(r.model.scoredTokens)),
                ("ppl", .double(r.model.perplexity)), ("reference_ppl", .double(r.reference.perplexity)),
                ("ppl_change_percent", .double(change)),
                ("kl_mean", .double(r.meanKL)), ("kl_p99", .double(r.p99KL)), ("kl_max", .double(r.maxKL)),
                ("top1_agreement", .double(r.top1Agreement)), ("logit_rms", .double(r.logitRMS)),
                ("seconds", .double(r.model.seconds)), ("reference_seconds", .double(r.reference.seconds)),
                ("tokens_per_second", .double(r.model.tokensPerSecond)),
            ]).prettyPrinted())
            return
        }
        print(TextTable.keyValue([
            ("model", model + "  (" + source.methodDescription + ", " + context.mode.rawValue + ")"),
            ("reference", referencePath),
            ("ctx / stride", "\(settings.contextLength) / \(settings.stride)"),
            ("scored tokens", "\(r.model.scoredTokens)"),
            ("perplexity", Format.fixed(r.model.perplexity, 4) + " vs " + Format.fixed(r.reference.perplexity, 4)
                + " (" + (change >= 0 ? "+" : "") + Format.fixed(change, 3) + "%)"),
            ("KL divergence", "mean " + Format.scientific(r.meanKL) + ", 99th percentile " + Format.scientific(r.p99KL)
                + ", max " + Format.scientific(r.maxKL) + " nats"),
            ("top-1 agreement", Format.fixed(100 * r.top1Agreement, 2) + "%"),
            ("logit RMS", Format.scientific(r.logitRMS)),
            ("elapsed", Format.duration(r.model.seconds) + " model, " + Format.duration(r.reference.seconds) + " reference"),
        ]), terminator: "")
    }
}

EQPPL.main()
