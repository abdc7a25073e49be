import Foundation

/// Where calibration windows come from.
public struct CalibrationOptions: Sendable {
    public var file: String
    public var samples: Int
    /// Tokens per window; nil means min(512, the model's context).
    public var length: Int?
    public var seed: UInt64

    public init(file: String, samples: Int = 128, length: Int? = nil, seed: UInt64 = 0) {
        self.file = file; self.samples = samples; self.length = length; self.seed = seed
    }
}

/// One pass of the f32 model over the calibration windows, and what it measured.
public struct CalibrationRun {
    public var model: DecoderModel
    public var weights: any WeightSource
    public var config: ModelConfig
    public var windows: CalibrationSet
    /// Per-input-channel activation statistics of every linear-layer input site.
    public var activations: ActivationStatistics
    /// Per-channel key ranges for KV-cache quantization.
    public var keys: KVCalibration

    /// Loads the f32 model of `weights` and its tokenizer, draws the windows, and runs the
    /// model over them once.
    public init(_ weights: any WeightSource, options: CalibrationOptions, threads: Int, progress: ((Int, Int) -> Void)? = nil) throws {
        self.weights = weights
        model = try weights.makeModel()
        config = model.config
        let tokenizer = try EvaluationSetup.tokenizer(for: weights, override: nil)
        let length = min(options.length ?? 512, config.contextLength)
        windows = try CalibrationSet(path: options.file, tokenizer: tokenizer, samples: options.samples,
                                     length: length, seed: options.seed, threads: threads)
        for w in windows.windows { try model.checkTokens(w, source: options.file) }
        activations = ActivationStatistics(layers: config.layerCount)
        keys = KVCalibration(layers: config.layerCount, width: config.kvSize, expectedTokens: options.samples * length)
        let observers = ObserverGroup([activations, keys])
        let context = ComputeContext(mode: .f32, threads: threads)
        for (i, w) in windows.windows.enumerated() {
            _ = model.hiddenStates(w, context: context, observer: observers)
            progress?(i + 1, windows.windows.count)
        }
    }

    /// The same run from a safetensors model.
    public init(_ source: SafetensorsModel, options: CalibrationOptions, threads: Int, progress: ((Int, Int) -> Void)? = nil) throws {
        try self.init(try SafetensorsWeightSource(model: source), options: options, threads: threads, progress: progress)
    }
}

/// The methods that run the model over calibration text before quantizing, and the
/// calibration any method records when given `--calib` (key ranges for KV-cache quantization).
public enum CalibratedMethods {
    public static let names = ["smoothquant", "zeroquant", "llmint8", "awq"]

    /// Adds the calibration's key ranges (and its description) to a conversion.
    public static func recordingCalibration(_ run: CalibrationRun, base: ConversionOptions) -> ConversionOptions {
        var options = base
        options.preparation = CombinedPreparation([base.preparation, run.keys].compactMap { $0 })
        options.calibration = run.windows.metadata
        return options
    }

    /// W8A8 as SmoothQuant and LLM.int8 store it: absmax int8 weights per output channel,
    /// and the file asks for int8 activations per token at inference.
    static func vectorWiseInt8(_ base: ConversionOptions, recordedAs method: String) -> ConversionOptions {
        var options = base
        options.method = AbsMax.name
        options.bits = 8
        options.granularity = .channel
        options.recordedMethod = method
        options.compute = .int8
        return options
    }

    /// SmoothQuant W8A8: smoothing from calibration statistics, then absmax int8 weights per
    /// output channel; the file asks for int8 activations at inference.
    public static func smoothQuant(_ run: CalibrationRun, alpha: Float, linearFedSites: Bool = false,
                                   base: ConversionOptions) throws -> ConversionOptions {
        var options = vectorWiseInt8(base, recordedAs: "smoothquant")
        options.preparation = try SmoothQuant(source: run.weights, statistics: run.activations, config: run.config, alpha: alpha,
                                              linearFedSites: linearFedSites)
        return recordingCalibration(run, base: options)
    }

    /// LLM.int8(): vector-wise int8 (absmax per output channel, activations per token at
    /// inference) with the input features whose calibrated max |x| exceeds `threshold`
    /// computed in f32 (`LLMInt8Decomposition`). The file asks for int8 compute.
    public static func llmInt8(_ run: CalibrationRun, threshold: Float = 6, base: ConversionOptions) throws -> ConversionOptions {
        var options = vectorWiseInt8(base, recordedAs: "llmint8")
        options.preparation = try LLMInt8Decomposition(source: run.weights, statistics: run.activations,
                                                       config: run.config, threshold: threshold)
        return recordingCalibration(run, base: options)
    }

    /// AWQ's scale search on `run`: a second f32 pass over the calibration windows samples
    /// at most `sampleRows` input rows per linear layer, then every layer's α is searched
    /// (`AWQScaleSearch`, simquant at `bits` with `granularity`) on `threads` threads.
    /// `progress(done, total)` counts searched layers.
    public static func awqScaling(_ run: CalibrationRun, bits: Int = 4, granularity: Granularity = .group(128), sampleRows: Int = 512,
                                  threads: Int = Parallel.defaultThreads, progress: ((Int, Int) -> Void)? = nil) throws -> AWQScaling {
        let sample = LinearInputSample.collect(model: run.model, windows: run.windows.windows, maximumRows: sampleRows, threads: threads)
        return try AWQScaling(source: run.weights, statistics: run.activations, sample: sample,
                              search: AWQScaleSearch(bits: bits, granularity: granularity), threads: threads, progress: progress)
    }

    /// AWQ with a finished search: the scaled model's weights as simquant codes at the
    /// search's width and granularity (asymmetric, zero points), f32 activations (weight-only).
    public static func awq(_ run: CalibrationRun, scaling: AWQScaling, base: ConversionOptions) -> ConversionOptions {
        var options = base
        options.method = SimQuant.name
        options.bits = scaling.search.method.bits
        options.granularity = scaling.search.granularity
        options.recordedMethod = "awq"
        options.compute = .f32
        options.preparation = scaling
        return recordingCalibration(run, base: options)
    }

    /// AWQ in one call: the search (`awqScaling`) and the options that store its result.
    public static func awq(_ run: CalibrationRun, bits: Int = 4, granularity: Granularity = .group(128), sampleRows: Int = 512,
                           base: ConversionOptions) throws -> ConversionOptions {
        let scaling = try awqScaling(run, bits: bits, granularity: granularity, sampleRows: sampleRows, threads: base.threads)
        return awq(run, scaling: scaling, base: base)
    }

    /// ZeroQuant: symmetric group-wise weights (the absmax formula per group of `granularity`,
    /// default 128 inputs) at `bits`, improved block by block by layer-wise knowledge
    /// distillation when `lkd.steps` > 0; int8 activations per token at inference unless
    /// `weightOnly`. Returns the options and the distillation's per-block report.
    public static func zeroQuant(_ run: CalibrationRun?, lkd: LayerwiseDistillation.Options, weightOnly: Bool, base: ConversionOptions,
                                 progress: ((LayerwiseDistillation.Progress) -> Void)? = nil)
        throws -> (options: ConversionOptions, reports: [LayerwiseDistillation.BlockReport]) {
        var options = base
        options.method = AbsMax.name
        options.recordedMethod = "zeroquant"
        options.compute = weightOnly ? .f32 : .int8
        if case .channel = base.granularity { options.granularity = .group(lkd.groupSize) }
        var reports: [LayerwiseDistillation.BlockReport] = []
        guard let run else { return (options, reports) }
        if lkd.steps > 0 {
            var lkdOptions = lkd
            lkdOptions.bits = base.bits
            if case .group(let g) = options.granularity { lkdOptions.groupSize = g }
            let result = try LayerwiseDistillation(source: run.weights, options: lkdOptions).run(windows: run.windows.windows, progress: progress)
            options.preparation = DistilledWeights(result: result, options: lkdOptions)
            reports = result.reports
        }
        return (recordingCalibration(run, base: options), reports)
    }
}
