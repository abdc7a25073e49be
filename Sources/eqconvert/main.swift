import ArgumentParser
import EasyQuant
import EasyQuantCLI
import Foundation

/// eqconvert: safetensors → .eqm (quantize), .eqm → safetensors (dequantize), .eqm → GGUF
/// (export for llama.cpp), or straight to GGUF.
struct EQConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eqconvert",
        abstract: "Quantize a model into an .eqm file, turn an .eqm file back into safetensors, or write it as GGUF for llama.cpp.",
        discussion: """
        The output format is chosen by OUTPUT's extension. INPUT is a .safetensors file, a Hugging Face \
        model folder (model.safetensors or sharded, with config.json and tokenizer files beside it) or a \
        GGUF file; OUTPUT is the .eqm to write. Given an .eqm INPUT, OUTPUT is a .safetensors file, or a \
        new or empty folder (a path ending in "/"), which receives model.safetensors, config.json and the \
        tokenizer files, holding the dequantized weights.

        An OUTPUT ending in .gguf is a GGUF v3 file llama.cpp runs (GPT-2 and Llama families): from an \
        .eqm INPUT it is exported; from any other INPUT the model is quantized with --method first (in \
        memory) and then exported. Codes are carried exactly where a GGUF block type holds them \
        (8-bit symmetric per channel or per group of a multiple of 32 → Q8_0, 4-bit symmetric → Q4_0, \
        4-bit asymmetric → Q4_1, only the scales rounded to f16); other tensors follow --gguf-type. \
        eqconvert prints what changed and the error against the .eqm's own values.

        --method keep-codes with a GGUF INPUT and an .eqm OUTPUT stores the file's Q8_0, Q4_0 and Q4_1 \
        matrices as EasyQuant codes as they are, and every other tensor in float. OUTPUT is never one of \
        the input's files.
        """,
        version: EasyQuantVersion.string)

    @Argument(help: "Source model: .safetensors file, model folder, or .eqm file.")
    var input: String

    @Argument(help: "File to write: .eqm when quantizing, .safetensors (or a folder) when dequantizing, .gguf for llama.cpp.")
    var output: String

    @Option(help: "Quantization method: \(QuantizationRecipes.names.joined(separator: ", ")); or keep-codes (GGUF input, .eqm output).")
    var method = "absmax"

    @Option(help: "GGUF output: what to write tensors as whose codes no GGUF type holds exactly: auto (nearest block type of the same width), f16, f32, q8_0, q4_0 or q4_1.")
    var ggufType = "auto"

    @Option(help: "Scale granularity: channel (one per output channel), tensor, or group:N (default: the method's; group:128 for awq and zeroquant).")
    var granularity: String?

    @Option(parsing: .unconditional, help: "Code width in bits, 2 to 8 (default: the method's; 8, or 4 for awq).")
    var bits: Int?

    @Option(help: "Keep tensors matching PATTERN in float (glob, or substring without wildcards). Repeatable.")
    var keep: [String] = []

    @Option(parsing: .unconditional, help: "zstd compression level (1 fast ... 19 small).")
    var zstdLevel = 3

    @OptionGroup var threading: ThreadOptions

    @Option(help: "Element type of the safetensors written when dequantizing: f32, f16 or bf16.")
    var dtype = "f32"

    @OptionGroup var calibration: CalibrationArguments

    @Option(parsing: .unconditional, help: "SmoothQuant's migration strength alpha (0...1).")
    var alpha: Float = 0.5

    @Flag(help: "SmoothQuant: also smooth the inputs fed by a linear layer (Llama's down_proj, through up_proj), not only those fed by a norm.")
    var smoothLinearFed = false

    @Option(parsing: .unconditional, help: "ZeroQuant: Adam steps of layer-by-layer distillation per block (0: no distillation).")
    var lkdSteps = 100

    @Option(parsing: .unconditional, help: "ZeroQuant: distillation learning rate (default: 1e-4 at 4 bits, 2e-6 at 8 bits).")
    var lkdLr: Double?

    @Option(parsing: .unconditional, help: "ZeroQuant: calibration windows per distillation step.")
    var lkdBatch = 4

    @Flag(help: "ZeroQuant: keep activations in f32 at inference (weight-only) instead of W8A8.")
    var weightOnly = false

    @Option(parsing: .unconditional, help: "LLM.int8: input features whose calibrated max |x| exceeds this stay in f32.")
    var threshold: Float = 6

    @Option(parsing: .unconditional, help: "AWQ: calibration input rows per linear-layer input for the scale search.")
    var awqRows = 512

    @Flag(help: "Print the summary as JSON.")
    var json = false

    /// What the method reads of the options.
    var settings: MethodSettings {
        var s = MethodSettings()
        s.bits = bits
        s.granularity = granularity.flatMap(Granularity.init)
        s.alpha = alpha
        s.smoothLinearFed = smoothLinearFed
        s.threshold = threshold
        s.lkdSteps = lkdSteps
        s.lkdLearningRate = lkdLr
        s.lkdBatch = lkdBatch
        s.weightOnly = weightOnly
        s.awqRows = awqRows
        s.seed = calibration.seed
        s.threads = threading.threads
        return s
    }

    /// The method that stores a GGUF file's own codes.
    static let keepCodes = "keep-codes"

    /// Whether OUTPUT names a GGUF file (a trailing "/" still says GGUF, to refuse it as a folder).
    var writesGGUF: Bool {
        var name = output.lowercased()
        while name.hasSuffix("/") { name.removeLast() }
        return name.hasSuffix(".gguf")
    }

    func validate() throws {
        if let granularity { _ = try parseGranularity(granularity) }
        guard GGUFTypeRequest(rawValue: ggufType) != nil else {
            throw ValidationError("--gguf-type must be one of \(GGUFTypeRequest.allCases.map(\.rawValue).joined(separator: ", ")), not \(ggufType)")
        }
        if method == Self.keepCodes {
            guard !writesGGUF else { throw ValidationError("--method keep-codes writes an .eqm; give an .eqm OUTPUT (a GGUF file is already GGUF)") }
            guard bits == nil, granularity == nil else { throw ValidationError("--method keep-codes keeps the file's own codes; drop --bits and --granularity") }
            return
        }
        let recipe: QuantizationRecipe
        do {
            recipe = try QuantizationRecipes.named(method)
            try recipe.validate(settings)
        } catch let e as MethodSettingsError { throw ValidationError(e.description) }
        if recipe.needsCalibration(settings), calibration.calib == nil {
            throw ValidationError("--method \(method) needs calibration text: add --calib FILE (e.g. fixtures/calibration/corpus-calib.txt)")
        }
        guard Zstd.levelRange.contains(zstdLevel) else {
            throw ValidationError("--zstd-level must be in \(Zstd.levelRange.lowerBound)...\(Zstd.levelRange.upperBound), not \(zstdLevel)")
        }
        guard ["f32", "f16", "bf16"].contains(dtype) else { throw ValidationError("--dtype must be f32, f16 or bf16, not \(dtype)") }
        if keep.contains(where: \.isEmpty) { throw ValidationError("--keep needs a pattern; an empty one would keep every tensor") }
    }

    func run() throws {
        try ToolPaths.checkInput(input, role: "model (.safetensors, GGUF, .eqm or a model folder)", directoryAllowed: true)
        var inputs = ToolPaths.modelFiles(input)
        if let calib = calibration.calib {
            try ToolPaths.checkInput(calib, role: "calibration text")
            inputs.append(calib)
        }
        if writesGGUF, ToolPaths.isFolderOutput(output) {
            throw ValidationError("\(output) is a folder; a GGUF export is one file, so give a file name such as model.gguf")
        }
        if method == Self.keepCodes, !GGUFFile.isGGUF(path: input) {
            throw ValidationError("--method keep-codes keeps the codes of a GGUF file; \(input) is not one")
        }
        if ToolPaths.isFolderOutput(output) {
            // A folder output is written under a temporary name; it must not already hold anything.
            guard EQMSniffer.isEQM(path: input) else {
                throw ValidationError("\(output) is a folder; quantizing writes one .eqm file, so give a file name (e.g. \(output)/model.eqm)")
            }
        } else {
            try ToolPaths.refuseOverwriting(output, inputs: inputs)
        }
        if EQMSniffer.isEQM(path: input) {
            if writesGGUF {
                try exportGGUF(EQMFile(path: input))
            } else {
                try dequantize()
            }
        } else {
            try quantize()
        }
    }

    /// Writes `eqm` as GGUF and prints what changed.
    func exportGGUF(_ eqm: EQMFile) throws {
        let bar = ProgressBar(label: "writing GGUF", total: eqm.tensors.count, unit: "")
        let exporter = GGUFExporter(options: GGUFExportOptions(request: GGUFTypeRequest(rawValue: ggufType)!, threads: threading.threads))
        let report = try exporter.export(eqm, to: output) { done, _ in bar.update(done) }
        bar.finish()
        if json {
            print(report.json.prettyPrinted())
            return
        }
        print(GGUFExportSummary.text(report, source: input), terminator: "")
    }

    func quantize() throws {
        let start = Date()
        let source = try openConversionSource(path: input)
        if method == Self.keepCodes {
            var options = ConversionOptions(method: "absmax", bits: 8, granularity: .group(32), keep: keep, zstdLevel: zstdLevel, threads: threading.threads)
            options.keepSourceCodes = true
            options.recordedMethod = "gguf-codes"
            var report = try ModelConverter(options: options).convert(source, to: output)
            report.seconds = Date().timeIntervalSince(start)
            if json { print(report.json.prettyPrinted()); return }
            print(TextTable.keyValue([
                ("source", report.source), ("output", report.output),
                ("method", "gguf-codes: Q8_0/Q4_0/Q4_1 codes kept as they are (group:32)"),
                ("tensors", "\(report.quantized) with their codes, \(report.kept) in float"),
                ("output size", Format.bytes(report.outputBytes)),
                ("bits per weight", Format.fixed(report.bitsPerWeight, 3) + " (quantized tensors)"),
            ]), terminator: "")
            return
        }
        let recipe = try QuantizationRecipes.named(method)
        let base = ConversionOptions(method: method, keep: keep, zstdLevel: zstdLevel, threads: threading.threads)
        var run: CalibrationRun?
        if let options = calibration.options(defaultSamples: 128) {
            let weights = try source.weightSource()
            try calibration.check(against: try weights.modelConfig(), model: input)
            let calBar = ProgressBar(label: "calibrating", unit: "win")
            run = try CalibrationRun(weights, options: options, threads: threading.threads) { calBar.update($0, of: $1) }
            calBar.finish()
        }
        let lkdBar = ProgressBar(label: "distilling", unit: "step")
        let searchBar = ProgressBar(label: "searching", unit: "site")
        let layers = run?.config.layerCount ?? 0
        let prepared = try recipe.prepare(run, settings: settings, base: base, progress: MethodProgress(
            distillation: { lkdBar.update($0.layer * $0.steps + $0.step, of: layers * $0.steps) },
            search: { searchBar.update($0, of: $1) }))
        lkdBar.finish()
        searchBar.finish()
        let options = prepared.options
        let distillation = prepared.distillation, awqLayers = prepared.awqLayers
        let bar = ProgressBar(label: "quantizing", unit: "MB", scale: 1e6)
        // GGUF output: the .eqm is made in memory (compressed, one copy) and exported from there.
        let memory = writesGGUF ? MemorySink() : nil
        var report = try memory.map { try ModelConverter(options: options).convert(source, into: EQMWriter(sink: $0), named: output) { bar.update($0, of: $1) } }
            ?? ModelConverter(options: options).convert(source, to: output) { bar.update($0, of: $1) }
        report.seconds = Date().timeIntervalSince(start)  // calibration and distillation included
        bar.finish()
        if let memory {
            let name = ((output as NSString).deletingPathExtension as NSString).lastPathComponent + ".eqm (in memory)"
            if !json { print("quantized with \(report.method), \(report.bits)-bit, \(report.granularity): \(report.quantized) tensors, .eqm \(Format.bytes(report.outputBytes))") }
            try exportGGUF(EQMFile(file: MappedFile(bytes: memory.bytes, name: name)))
            return
        }
        var lkdTable = TextTable([.init("block"), .init("MSE before"), .init("MSE after"), .init("change"), .init("seconds")])
        for r in distillation {
            lkdTable.add(["\(r.layer)", Format.scientific(r.mseBefore), Format.scientific(r.mseAfter),
                          Format.fixed(100 * (r.mseAfter / r.mseBefore - 1), 1) + "%", Format.fixed(r.seconds, 1)])
        }
        if json {
            var out = report.json
            if case .object(var members) = out, !distillation.isEmpty {
                members.append((key: "distillation", value: .array(distillation.map {
                    .makeObject([("block", JSONValue($0.layer)), ("mse_before", .double($0.mseBefore)),
                                 ("mse_after", .double($0.mseAfter)), ("seconds", .double($0.seconds))])
                })))
                out = .object(members)
            }
            print(out.prettyPrinted())
            return
        }
        print(TextTable.keyValue([
            ("source", report.source),
            ("output", report.output),
            ("method", "\(report.method), \(report.bits)-bit, granularity \(report.granularity)"),
            ("tensors", "\(report.quantized) quantized, \(report.kept) kept in float, \(report.dropped.count) dropped"),
            ("input", Format.bytes(report.inputBytes)),
            ("output size", Format.bytes(report.outputBytes) + "  (\(Format.fixed(report.ratio, 2))x smaller)"),
            ("bits per weight", Format.fixed(report.bitsPerWeight, 3) + " (quantized tensors), " + Format.fixed(report.bitsPerParameter, 3) + " (all tensors)"),
            ("time", Format.duration(report.seconds) + "  (\(Format.fixed(report.megabytesPerSecond, report.megabytesPerSecond < 10 ? 2 : 0)) MB/s of input)"),
        ]), terminator: "")
        if !distillation.isEmpty { print("\nlayer-by-layer distillation:\n" + lkdTable.render(), terminator: "") }
        if method == "llmint8", let decomposition = options.preparation?.parameters.first(where: { $0.0 == "outlier_features" })?.1.arrayValue {
            let sites = options.preparation?.parameters.first(where: { $0.0 == "outlier_sites" })?.1.arrayValue?.compactMap(\.stringValue) ?? []
            let perLayer = decomposition.map { ($0.arrayValue ?? []).compactMap(\.intValue) }
            let total = perLayer.joined().reduce(0, +)
            print("\noutlier features above \(Format.fixed(Double(threshold), 2)) kept in f32: \(total)"
                  + (total == 0 ? " (none: every layer runs plain int8)" : ", per block [\(sites.joined(separator: ", "))]: \(perLayer)"))
        }
        if !awqLayers.isEmpty { print("\nAWQ scale search (output MSE on sampled inputs):\n" + Self.awqTable(awqLayers).render(), terminator: "") }
        if !report.dropped.isEmpty {
            FileHandle.standardError.write("note: dropped \(report.dropped.count) buffers that are not weights (\(report.dropped.first!), ...); the model rebuilds them\n".data(using: .utf8)!)
        }
    }

    /// One row per searched linear layer: the chosen α and the objective at α and at α = 0.
    static func awqTable(_ layers: [AWQScaling.Layer]) -> TextTable {
        var table = TextTable([.init("layer", .left), .init("alpha"), .init("MSE alpha=0"), .init("MSE at alpha"), .init("change")])
        for l in layers {
            let r = l.result
            table.add([l.name, Format.fixed(Double(r.alpha), 2),
                       Format.scientific(r.plainLoss), Format.scientific(r.loss),
                       Format.fixed(100 * (r.loss / max(r.plainLoss, 1e-300) - 1), 1) + "%"])
        }
        return table
    }

    func dequantize() throws {
        let eqm = try EQMFile(path: input)
        let dt = DType(rawValue: dtype.uppercased())!
        let bar = ProgressBar(label: "dequantizing", total: eqm.tensors.count, unit: "")
        let report = try SafetensorsExporter(dtype: dt, threads: threading.threads).export(eqm, to: output) { done, _ in bar.update(done) }
        bar.finish()
        if json {
            print(JSONValue.makeObject([
                ("source", .string(report.source)), ("output", .string(report.output)), ("dtype", .string(report.dtype.rawValue)),
                ("tensors", JSONValue(report.tensors)), ("input_bytes", JSONValue(report.inputBytes)),
                ("output_bytes", JSONValue(report.outputBytes)), ("seconds", .double(report.seconds)),
            ]).prettyPrinted())
            return
        }
        print(TextTable.keyValue([
            ("source", report.source),
            ("output", report.output + "  (\(report.dtype.rawValue), dequantized)"),
            ("tensors", "\(report.tensors)"),
            ("input", Format.bytes(report.inputBytes)),
            ("output size", Format.bytes(report.outputBytes)),
            ("time", Format.duration(report.seconds)),
        ]), terminator: "")
    }
}

EQConvert.main()
