import ArgumentParser
import EasyQuant
import Foundation

/// eqconvert: safetensors → .eqm (quantize), or .eqm → safetensors (dequantize).
struct EQConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eqconvert",
        abstract: "Quantize a safetensors model into an .eqm file, or turn an .eqm file back into safetensors.",
        discussion: """
        INPUT is a .safetensors file or a Hugging Face model folder (model.safetensors or sharded, with \
        config.json and tokenizer files beside it); OUTPUT is the .eqm to write. Given an .eqm INPUT, \
        OUTPUT is a .safetensors file (or an existing folder, which receives model.safetensors, \
        config.json and the tokenizer files) holding the dequantized weights.
        """,
        version: EasyQuantVersion.string)

    @Argument(help: "Source model: .safetensors file, model folder, or .eqm file.")
    var input: String

    @Argument(help: "File to write: .eqm when quantizing, .safetensors (or a folder) when dequantizing.")
    var output: String

    @Option(help: "Quantization method: \((QuantizationMethods.names + CalibratedMethods.names).joined(separator: ", ")).")
    var method = "absmax"

    @Option(help: "Scale granularity: channel (one per output channel), tensor, or group:N (default: channel; group:128 for awq).")
    var granularity: String?

    @Option(help: "Code width in bits, 2 to 8 (8 and 4 are the common ones; default: 8, 4 for awq).")
    var bits: Int?

    @Option(help: "Keep tensors matching PATTERN in float (glob, or substring without wildcards). Repeatable.")
    var keep: [String] = []

    @Option(help: "zstd compression level (1 fast ... 19 small).")
    var zstdLevel = 3

    @Option(help: "Threads to use (default: all cores).")
    var threads = Parallel.defaultThreads

    @Option(help: "Element type of the safetensors written when dequantizing: f32, f16 or bf16.")
    var dtype = "f32"

    @Option(help: "Calibration text (UTF-8) for calibrated methods; use a different text from the one you evaluate on.")
    var calib: String?

    @Option(help: "Calibration windows to draw from --calib.")
    var calibSamples = 128

    @Option(help: "Tokens per calibration window (default: 512, or the model's context if shorter).")
    var calibLen: Int?

    @Option(help: "Seed for drawing calibration windows.")
    var seed: UInt64 = 0

    @Option(help: "SmoothQuant's migration strength alpha (0...1).")
    var alpha: Float = 0.5

    @Option(help: "ZeroQuant: Adam steps of layer-by-layer distillation per block (0: no distillation).")
    var lkdSteps = 100

    @Option(help: "ZeroQuant: distillation learning rate (default: 1e-4 at 4 bits, 2e-6 at 8 bits).")
    var lkdLr: Double?

    @Option(help: "ZeroQuant: calibration windows per distillation step.")
    var lkdBatch = 4

    @Flag(help: "ZeroQuant: keep activations in f32 at inference (weight-only) instead of W8A8.")
    var weightOnly = false

    @Option(help: "LLM.int8: input features whose calibrated max |x| exceeds this stay in f32.")
    var threshold: Float = 6

    @Option(help: "AWQ: calibration input rows per linear layer for the scale search.")
    var awqRows = 512

    @Flag(help: "Print the summary as JSON.")
    var json = false

    /// The code width: what was asked for, else the method's default (4 for AWQ, 8 otherwise).
    var effectiveBits: Int { bits ?? (method == "awq" ? 4 : 8) }
    /// The granularity: what was asked for, else the method's default (group:128 for AWQ, channel otherwise).
    var effectiveGranularity: Granularity { Granularity(granularity ?? (method == "awq" ? "group:128" : "channel"))! }

    func validate() throws {
        if let granularity, Granularity(granularity) == nil {
            throw ValidationError("--granularity must be channel, tensor or group:N (N > 0), not \(granularity)")
        }
        guard (2...8).contains(effectiveBits) else { throw ValidationError("--bits must be between 2 and 8, not \(effectiveBits)") }
        if method == "llmint8" {
            // Vector-wise int8 is the method: other widths or granularities would be something else.
            if let bits, bits != 8 { throw ValidationError("--method llmint8 is 8-bit; drop --bits \(bits)") }
            if let granularity, granularity != "channel" { throw ValidationError("--method llmint8 quantizes per channel; drop --granularity \(granularity)") }
            guard threshold.isFinite, threshold > 0 else { throw ValidationError("--threshold must be a positive number") }
        }
        guard awqRows >= 1 else { throw ValidationError("--awq-rows must be at least 1") }
        guard Zstd.levelRange.contains(zstdLevel) else {
            throw ValidationError("--zstd-level must be in \(Zstd.levelRange.lowerBound)...\(Zstd.levelRange.upperBound)")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard ["f32", "f16", "bf16"].contains(dtype) else { throw ValidationError("--dtype must be f32, f16 or bf16") }
        let all = QuantizationMethods.names + CalibratedMethods.names
        guard all.contains(method) else {
            throw ValidationError("unknown --method \(method); choose one of: \(all.joined(separator: ", "))")
        }
        if CalibratedMethods.names.contains(method), calib == nil, !(method == "zeroquant" && lkdSteps == 0) {
            throw ValidationError("--method \(method) needs calibration text: add --calib FILE (e.g. fixtures/calibration/corpus-calib.txt)")
        }
        guard calibSamples >= 1 else { throw ValidationError("--calib-samples must be at least 1") }
        if let calibLen, calibLen < 2 { throw ValidationError("--calib-len must be at least 2") }
        guard (0...1).contains(alpha) else { throw ValidationError("--alpha must be between 0 and 1") }
    }

    func run() throws {
        try ToolPaths.refuseSameFile(input: input, output: output)
        if EQMSniffer.isEQM(path: input) {
            try dequantize()
        } else {
            try quantize()
        }
    }

    func quantize() throws {
        let start = Date()
        let source = try openConversionSource(path: input)
        var distillation: [LayerwiseDistillation.BlockReport] = []
        let bits = effectiveBits
        var awqLayers: [AWQScaling.Layer] = []
        var options = ConversionOptions(method: method, bits: bits, granularity: effectiveGranularity,
                                        keep: keep, zstdLevel: zstdLevel, threads: threads)
        if let calib {
            let calibration = CalibrationOptions(file: calib, samples: calibSamples, length: calibLen, seed: seed)
            let calBar = ProgressBar(label: "calibrating", unit: "win")
            let run = try CalibrationRun(source.weightSource(), options: calibration, threads: threads) { calBar.update($0, of: $1) }
            calBar.finish()
            switch method {
            case "smoothquant":
                options = try CalibratedMethods.smoothQuant(run, alpha: alpha, base: options)
            case "zeroquant":
                let lkd = LayerwiseDistillation.Options(bits: bits, steps: lkdSteps, learningRate: lkdLr, batchSize: lkdBatch,
                                                        seed: seed, threads: threads)
                let lkdBar = ProgressBar(label: "distilling", unit: "step")
                (options, distillation) = try CalibratedMethods.zeroQuant(run, lkd: lkd, weightOnly: weightOnly, base: options) {
                    lkdBar.update($0.layer * $0.steps + $0.step, of: run.config.layerCount * $0.steps)
                }
                lkdBar.finish()
            case "llmint8":
                options = try CalibratedMethods.llmInt8(run, threshold: threshold, base: options)
            case "awq":
                let searchBar = ProgressBar(label: "searching", unit: "layer")
                let scaling = try CalibratedMethods.awqScaling(run, bits: bits, granularity: effectiveGranularity, sampleRows: awqRows,
                                                               threads: threads) { searchBar.update($0, of: $1) }
                searchBar.finish()
                options = CalibratedMethods.awq(run, scaling: scaling, base: options)
                awqLayers = scaling.layers
            default:
                options = CalibratedMethods.recordingCalibration(run, base: options)
            }
        } else if method == "zeroquant" {
            options = try CalibratedMethods.zeroQuant(nil, lkd: LayerwiseDistillation.Options(bits: bits, steps: 0), weightOnly: weightOnly, base: options).options
        }
        let bar = ProgressBar(label: "quantizing", unit: "MB", scale: 1e6)
        var report = try ModelConverter(options: options).convert(source, to: output) { bar.update($0, of: $1) }
        report.seconds = Date().timeIntervalSince(start)  // calibration and distillation included
        bar.finish()
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
        if method == "llmint8", let counts = options.preparation?.parameters.first(where: { $0.0 == "outlier_features" })?.1.arrayValue {
            let perLayer = counts.map { ($0.arrayValue ?? []).compactMap(\.intValue) }
            let total = perLayer.joined().reduce(0, +)
            print("\noutlier features above \(Format.fixed(Double(threshold), 2)) kept in f32: \(total)"
                  + (total == 0 ? " (none: every layer runs plain int8)" : ", per block [c_attn, attn.c_proj, c_fc, mlp.c_proj]: \(perLayer)"))
        }
        if !awqLayers.isEmpty { print("\nAWQ scale search (output MSE on sampled inputs):\n" + Self.awqTable(awqLayers).render(), terminator: "") }
        if !report.dropped.isEmpty {
            FileHandle.standardError.write("note: dropped \(report.dropped.count) attention mask buffers (\(report.dropped.first!), ...): they are not weights and GPT-2 rebuilds them\n".data(using: .utf8)!)
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
        let report = try SafetensorsExporter(dtype: dt, threads: threads).export(eqm, to: output) { done, _ in bar.update(done) }
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
