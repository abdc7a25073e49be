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

/// The methods that run the model over calibration text before quantizing.
public enum CalibratedMethods {
    public static let names = ["smoothquant", "zeroquant"]

    /// Loads the f32 model and its tokenizer from `source` and draws the calibration windows.
    public static func prepareCalibration(_ source: SafetensorsModel, options: CalibrationOptions, threads: Int)
        throws -> (model: GPT2Model, weights: SafetensorsWeightSource, calibration: CalibrationSet) {
        let weights = try SafetensorsWeightSource(model: source)
        let model = try GPT2Model(source: weights)
        let tokenizer = try EvaluationSetup.tokenizer(for: weights, override: nil)
        let length = min(options.length ?? 512, model.config.contextLength)
        let set = try CalibrationSet(path: options.file, tokenizer: tokenizer, samples: options.samples,
                                     length: length, seed: options.seed, threads: threads)
        return (model, weights, set)
    }

    /// SmoothQuant W8A8: smoothing from calibration statistics, then absmax int8 weights per
    /// output channel; the file asks for int8 activations at inference.
    public static func smoothQuant(_ source: SafetensorsModel, calibration options: CalibrationOptions, alpha: Float,
                                   base: ConversionOptions, progress: ((Int, Int) -> Void)? = nil) throws -> ConversionOptions {
        let (model, weights, set) = try prepareCalibration(source, options: options, threads: base.threads)
        let stats = ActivationStatistics.collect(model: model, windows: set.windows,
                                                 context: ComputeContext(mode: .f32, threads: base.threads), progress: progress)
        var options = base
        options.method = AbsMax.name
        options.bits = 8
        options.granularity = .channel
        options.recordedMethod = "smoothquant"
        options.compute = .int8
        options.preparation = try SmoothQuant(source: weights, statistics: stats, layers: model.config.layerCount, alpha: alpha)
        options.calibration = set.metadata
        return options
    }

    /// ZeroQuant: symmetric group-wise weights (the absmax formula per group of `granularity`,
    /// default 128 inputs) at `bits`, improved block by block by layer-wise knowledge
    /// distillation when `lkd.steps` > 0; int8 activations per token at inference unless
    /// `weightOnly`. Returns the options and the distillation's per-block report.
    public static func zeroQuant(_ source: SafetensorsModel, calibration: CalibrationOptions, lkd: LayerwiseDistillation.Options,
                                 weightOnly: Bool, base: ConversionOptions,
                                 progress: ((LayerwiseDistillation.Progress) -> Void)? = nil)
        throws -> (options: ConversionOptions, reports: [LayerwiseDistillation.BlockReport]) {
        var options = base
        options.method = AbsMax.name
        options.recordedMethod = "zeroquant"
        options.compute = weightOnly ? .f32 : .int8
        if case .channel = base.granularity { options.granularity = .group(lkd.groupSize) }
        guard lkd.steps > 0 else { return (options, []) }
        let (_, weights, set) = try prepareCalibration(source, options: calibration, threads: base.threads)
        var lkdOptions = lkd
        lkdOptions.bits = base.bits
        if case .group(let g) = options.granularity { lkdOptions.groupSize = g }
        let result = try LayerwiseDistillation(source: weights, options: lkdOptions).run(windows: set.windows, progress: progress)
        options.preparation = DistilledWeights(result: result, options: lkdOptions)
        options.calibration = set.metadata
        return (options, result.reports)
    }
}
