import Foundation

/// One row of the comparison: how a model was quantized, and what it cost.
public struct ComparisonRow: Sendable {
    public var label: String
    public var method: String
    public var granularity: String
    public var bits: String
    public var compute: String
    public var fileBytes: Int
    /// Stored bits per quantized weight (codes, scales, zero points), or the source's bits.
    public var bitsPerWeight: Double
    public var perplexity: Double
    public var changePercent: Double
    public var meanKL: Double
    public var top1Agreement: Double
    public var conversionSeconds: Double
    public var tokensPerSecond: Double
    public var kvBytesPerToken: Double

    public var json: JSONValue {
        .makeObject([
            ("label", .string(label)), ("method", .string(method)), ("granularity", .string(granularity)),
            ("bits", .string(bits)), ("compute", .string(compute)), ("file_bytes", JSONValue(fileBytes)),
            ("bits_per_weight", .double(bitsPerWeight)), ("ppl", .double(perplexity)),
            ("ppl_change_percent", .double(changePercent)), ("kl_mean", .double(meanKL)),
            ("top1_agreement", .double(top1Agreement)), ("conversion_seconds", .double(conversionSeconds)),
            ("tokens_per_second", .double(tokensPerSecond)), ("kv_bytes_per_token", .double(kvBytesPerToken)),
        ])
    }
}

/// How one row's model is made.
public struct RowSpec: Sendable {
    public enum Recipe: Sendable {
        /// The f32 source itself.
        case baseline
        /// A weight-only method from `QuantizationMethods`.
        case weights(method: String, bits: Int, granularity: Granularity)
        /// SmoothQuant at `alpha`; `linearFed` also smooths the sites fed by a linear layer.
        case smoothQuant(alpha: Float, linearFed: Bool)
        case llmInt8(threshold: Float)
        case awq(bits: Int, granularity: Granularity)
        case zeroQuant(bits: Int, granularity: Granularity, lkdSteps: Int, weightOnly: Bool)
        /// The f32 weights with the KV cache quantized.
        case kvCache(bits: Int, outliers: Double)
    }
    public var label: String
    public var recipe: Recipe
    /// nil: what the file asks for.
    public var compute: ComputeMode?

    public init(_ label: String, _ recipe: Recipe, compute: ComputeMode? = nil) {
        self.label = label; self.recipe = recipe; self.compute = compute
    }

    public var needsCalibration: Bool {
        switch recipe {
        case .smoothQuant, .kvCache, .llmInt8, .awq: return true
        case .zeroQuant(_, _, let steps, _): return steps > 0
        default: return false
        }
    }
}

/// Named sets of rows.
public enum ComparisonStudy: String, CaseIterable, Sendable {
    /// Every method, as the seed's "Perplexity Analysis" table and beyond.
    case methods
    /// SmoothQuant: W8A8 without smoothing against alpha 0.3 ... 0.85.
    case smoothquant
    /// ZeroQuant with and without layer-by-layer distillation, at 8 and 4 bits.
    case lkd
    /// KV-cache quantization settings on the f32 weights.
    case kv

    public func rows(lkdSteps: Int) -> [RowSpec] {
        switch self {
        case .methods:
            return [
                RowSpec("f32 baseline", .baseline),
                RowSpec("absmax", .weights(method: "absmax", bits: 8, granularity: .channel)),
                RowSpec("absmax per tensor", .weights(method: "absmax", bits: 8, granularity: .tensor)),
                RowSpec("zeropoint", .weights(method: "zeropoint", bits: 8, granularity: .channel)),
                RowSpec("symquant", .weights(method: "symquant", bits: 8, granularity: .channel)),
                RowSpec("simquant 8-bit", .weights(method: "simquant", bits: 8, granularity: .channel)),
                RowSpec("simquant 4-bit", .weights(method: "simquant", bits: 4, granularity: .group(128))),
                RowSpec("absmax W8A8 (int8 compute)", .weights(method: "absmax", bits: 8, granularity: .channel), compute: .int8),
                RowSpec("smoothquant W8A8", .smoothQuant(alpha: 0.5, linearFed: false)),
                RowSpec("llmint8 (threshold 6)", .llmInt8(threshold: 6)),
                RowSpec("llmint8 (threshold 4)", .llmInt8(threshold: 4)),
                RowSpec("awq 4-bit", .awq(bits: 4, granularity: .group(128))),
                RowSpec("zeroquant W8A8, no LKD", .zeroQuant(bits: 8, granularity: .group(128), lkdSteps: 0, weightOnly: false)),
                RowSpec("zeroquant W8A8 + LKD", .zeroQuant(bits: 8, granularity: .group(128), lkdSteps: lkdSteps, weightOnly: false)),
                RowSpec("zeroquant W4, no LKD", .zeroQuant(bits: 4, granularity: .group(128), lkdSteps: 0, weightOnly: true)),
                RowSpec("zeroquant W4 + LKD", .zeroQuant(bits: 4, granularity: .group(128), lkdSteps: lkdSteps, weightOnly: true)),
                RowSpec("KV cache 8-bit", .kvCache(bits: 8, outliers: 0)),
                RowSpec("KV cache 4-bit", .kvCache(bits: 4, outliers: 0)),
                RowSpec("KV cache 4-bit + 1% outliers", .kvCache(bits: 4, outliers: 1)),
                RowSpec("KV cache 2-bit + 1% outliers", .kvCache(bits: 2, outliers: 1)),
            ]
        case .smoothquant:
            return [RowSpec("f32 baseline", .baseline),
                    RowSpec("W8A8, no smoothing", .weights(method: "absmax", bits: 8, granularity: .channel), compute: .int8)]
                + [0.3, 0.5, 0.7, 0.85].map { RowSpec("smoothquant alpha \($0)", .smoothQuant(alpha: Float($0), linearFed: false)) }
                + [RowSpec("smoothquant alpha 0.5, linear-fed sites too", .smoothQuant(alpha: 0.5, linearFed: true))]
        case .lkd:
            return [RowSpec("f32 baseline", .baseline)] + [8, 4].flatMap { bits in
                [RowSpec("zeroquant W\(bits), no LKD", .zeroQuant(bits: bits, granularity: .group(128), lkdSteps: 0, weightOnly: true)),
                 RowSpec("zeroquant W\(bits) + LKD", .zeroQuant(bits: bits, granularity: .group(128), lkdSteps: lkdSteps, weightOnly: true))]
            }
        case .kv:
            return [RowSpec("f32 baseline", .baseline)] + [8, 4, 2].flatMap { bits in
                [0.0, 1.0].map { RowSpec("KV cache \(bits)-bit" + ($0 > 0 ? " + 1% outliers" : ""), .kvCache(bits: bits, outliers: $0)) }
            }
        }
    }
}

/// Builds each row's model in memory (the exact bytes `eqconvert` would write, never on
/// disk unless asked) and scores it against the f32 model on the same windows.
public struct MethodComparison {
    public var source: any ConversionSource
    public var tokens: [Int32]
    public var settings: PerplexityProtocol
    public var calibration: CalibrationOptions?
    public var threads: Int
    /// Write each row's .eqm here too.
    public var keepFilesIn: String?
    public var lkdSteps: Int

    public init(source: any ConversionSource, tokens: [Int32], settings: PerplexityProtocol, calibration: CalibrationOptions?,
                threads: Int = Parallel.defaultThreads, keepFilesIn: String? = nil, lkdSteps: Int = 100) {
        self.source = source; self.tokens = tokens; self.settings = settings; self.calibration = calibration
        self.threads = threads; self.keepFilesIn = keepFilesIn; self.lkdSteps = lkdSteps
    }

    public enum Failure: Error, CustomStringConvertible {
        case needsCalibration(row: String)
        public var description: String {
            switch self {
            case .needsCalibration(let r): return "row \"\(r)\" needs calibration text: give --calib FILE"
            }
        }
    }

    /// Runs every row in order; `progress(row label)` before each.
    public func run(_ rows: [RowSpec], progress: ((Int, String) -> Void)? = nil) throws -> [ComparisonRow] {
        let referenceSource = try source.weightSource()
        let reference = try referenceSource.makeModel()
        try reference.checkTokens(tokens, source: "the text")
        var run: CalibrationRun?
        var calibrationSeconds = 0.0
        if rows.contains(where: \.needsCalibration) {
            guard let calibration else { throw Failure.needsCalibration(row: rows.first(where: \.needsCalibration)!.label) }
            let start = Date()
            run = try CalibrationRun(referenceSource, options: calibration, threads: threads)
            calibrationSeconds = Date().timeIntervalSince(start)
        }
        var results: [ComparisonRow] = []
        var baselinePerplexity: Double?
        for (i, spec) in rows.enumerated() {
            progress?(i, spec.label)
            var row = try evaluate(spec, reference: reference, referenceSource: referenceSource, run: run, calibrationSeconds: calibrationSeconds)
            if case .baseline = spec.recipe { baselinePerplexity = row.perplexity }
            if let base = baselinePerplexity { row.changePercent = 100 * (row.perplexity / base - 1) }
            results.append(row)
        }
        return results
    }

    func evaluate(_ spec: RowSpec, reference: any CausalLanguageModel, referenceSource: any WeightSource, run: CalibrationRun?,
                  calibrationSeconds: Double) throws -> ComparisonRow {
        let width = reference.config.kvSize, layers = reference.config.layerCount
        var modelSource: any WeightSource
        var conversion = 0.0
        var fileBytes = source.fileBytes
        var bitsPerWeight = Double(8 * (source.entries.first?.dtype.byteSize ?? 4))
        var method = "f32", granularity = "-", bits = "\(Int(bitsPerWeight))"
        var kv: KVQuantization?

        switch spec.recipe {
        case .baseline:
            modelSource = referenceSource
        case .kvCache(let kvBits, let outliers):
            modelSource = referenceSource
            kv = try run!.keys.quantization(bits: kvBits, outlierPercent: outliers, heads: reference.config.kvHeadCount)
            method = "f32, KV simquant"
            bits = "32 (KV \(kvBits))"
        default:
            let start = Date()
            var options = ConversionOptions(threads: threads)
            switch spec.recipe {
            case let .weights(name, b, g):
                (options.method, options.bits, options.granularity) = (name, b, g)
            case let .smoothQuant(alpha, linearFed):
                options = try CalibratedMethods.smoothQuant(run!, alpha: alpha, linearFedSites: linearFed, base: options)
                conversion += calibrationSeconds
            case .llmInt8(let threshold):
                options = try CalibratedMethods.llmInt8(run!, threshold: threshold, base: options)
                conversion += calibrationSeconds
            case let .awq(b, g):
                options = try CalibratedMethods.awq(run!, bits: b, granularity: g, base: options)
                conversion += calibrationSeconds
            case let .zeroQuant(b, g, steps, weightOnly):
                options.bits = b
                options.granularity = g
                let lkd = LayerwiseDistillation.Options(bits: b, steps: steps, seed: calibration?.seed ?? 0, threads: threads)
                options = try CalibratedMethods.zeroQuant(steps > 0 ? run : nil, lkd: lkd, weightOnly: weightOnly, base: options).options
                if steps > 0 { conversion += calibrationSeconds }
            default:
                break
            }
            let sink = MemorySink()
            let report = try ModelConverter(options: options).convert(source, into: EQMWriter(sink: sink), named: spec.label)
            conversion += Date().timeIntervalSince(start)
            if let dir = keepFilesIn {
                try writeAtomically(sink.bytes, to: (dir as NSString).appendingPathComponent(Self.fileName(spec.label)))
            }
            let file = try EQMFile(file: MappedFile(bytes: sink.bytes, name: spec.label))
            modelSource = try EQMWeightSource(file: file)
            fileBytes = report.outputBytes
            bitsPerWeight = report.bitsPerWeight
            method = report.method
            granularity = options.granularity.description
            bits = "\(options.bits)"
        }

        let mode = spec.compute ?? (modelSource.prefersInt8Compute ? .int8 : .f32)
        let model = try modelSource.makeModel(quantizeDenseForInt8: mode == .int8)
        var context = ComputeContext(mode: mode, threads: threads)
        context.kvQuantization = kv
        let tally = kv.map { _ in KVQuantization.Tally() }
        context.kvTally = tally
        let comparison = ReferenceComparison(model: model, modelContext: context, reference: reference,
                                             referenceContext: ComputeContext(threads: threads), protocolSettings: settings)
        let r = try comparison.evaluate(tokens)
        let kvBytes = Double(layers) * (kv?.bytesPerTokenPerLayer(width: width, tally: tally) ?? Double(2 * width * 4))
        return ComparisonRow(label: spec.label, method: method, granularity: granularity, bits: bits, compute: mode.rawValue,
                             fileBytes: fileBytes, bitsPerWeight: bitsPerWeight, perplexity: r.model.perplexity, changePercent: 0,
                             meanKL: r.meanKL, top1Agreement: r.top1Agreement, conversionSeconds: conversion,
                             tokensPerSecond: r.model.tokensPerSecond, kvBytesPerToken: kvBytes)
    }

    static func fileName(_ label: String) -> String {
        String(label.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }) + ".eqm"
    }

    // MARK: Rendering

    static let headers = ["method", "granularity", "bits", "compute", "file size", "bits/weight", "ppl", "vs f32",
                          "mean KL", "top-1 agree", "convert", "tokens/s", "KV bytes/token"]

    static func cells(_ r: ComparisonRow) -> [String] {
        [r.label, r.granularity, r.bits, r.compute, Format.bytes(r.fileBytes), Format.fixed(r.bitsPerWeight, 2),
         Format.fixed(r.perplexity, 3), (r.changePercent >= 0 ? "+" : "") + Format.fixed(r.changePercent, 2) + "%",
         Format.scientific(r.meanKL, 2), Format.fixed(100 * r.top1Agreement, 2) + "%",
         Format.fixed(r.conversionSeconds, 2) + " s", Format.fixed(r.tokensPerSecond, 0), Format.fixed(r.kvBytesPerToken, 0)]
    }

    /// The aligned plain-text table.
    public static func text(_ rows: [ComparisonRow]) -> String {
        var t = TextTable(headers.enumerated().map { .init($1, $0 == 0 || $0 == 1 || $0 == 3 ? .left : .right) })
        for r in rows { t.add(cells(r)) }
        return t.render()
    }

    /// The same table in Markdown.
    public static func markdown(_ rows: [ComparisonRow]) -> String {
        var s = "| " + headers.joined(separator: " | ") + " |\n"
        s += "|" + headers.enumerated().map { $0.offset == 0 || $0.offset == 1 || $0.offset == 3 ? "---" : "---:" }.joined(separator: "|") + "|\n"
        for r in rows { s += "| " + cells(r).joined(separator: " | ") + " |\n" }
        return s
    }

    /// A bar chart of the perplexity change against f32.
    public static func chart(_ rows: [ComparisonRow], title: String) -> String {
        SVGBarChart(title: title, axisLabel: "perplexity change against f32 (%)", bars: rows.map {
            .init(label: $0.label, value: $0.changePercent,
                  annotation: Format.fixed($0.perplexity, 2) + " (" + ($0.changePercent >= 0 ? "+" : "") + Format.fixed($0.changePercent, 2) + "%)")
        }).render()
    }
}
