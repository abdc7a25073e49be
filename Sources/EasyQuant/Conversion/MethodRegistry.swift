/// Every setting a method may read, as the tools collect them from their options.
/// A method reads the settings it needs and validates them (`QuantizationRecipe.validate`).
public struct MethodSettings: Sendable {
    /// Code width; nil means the method's default.
    public var bits: Int?
    /// Scale granularity; nil means the method's default.
    public var granularity: Granularity?
    /// SmoothQuant's migration strength.
    public var alpha: Float = 0.5
    /// SmoothQuant: also smooth the input sites fed by a linear layer (Llama's down_proj).
    public var smoothLinearFed = false
    /// LLM.int8's outlier threshold.
    public var threshold: Float = 6
    /// ZeroQuant's distillation: Adam steps per block (0: none), learning rate (nil: default), batch.
    public var lkdSteps = 100
    public var lkdLearningRate: Double?
    public var lkdBatch = 4
    /// ZeroQuant: f32 activations at inference instead of W8A8.
    public var weightOnly = false
    /// AWQ: calibration rows per input site for the scale search.
    public var awqRows = 512
    public var seed: UInt64 = 0
    public var threads = Parallel.defaultThreads

    public init() {}
}

/// Why a method's settings cannot be used; `description` is the message a tool prints.
public struct MethodSettingsError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Callbacks for the long phases of a method's preparation.
public struct MethodProgress {
    /// Distillation steps (ZeroQuant with LKD).
    public var distillation: ((LayerwiseDistillation.Progress) -> Void)?
    /// Sites searched, of all (AWQ).
    public var search: ((Int, Int) -> Void)?
    public init(distillation: ((LayerwiseDistillation.Progress) -> Void)? = nil, search: ((Int, Int) -> Void)? = nil) {
        self.distillation = distillation; self.search = search
    }
}

/// What a method's preparation produced: the conversion options, and what the tool reports
/// beside the conversion (LKD's per-block table, AWQ's search table).
public struct PreparedMethod {
    public var options: ConversionOptions
    public var distillation: [LayerwiseDistillation.BlockReport] = []
    public var awqLayers: [AWQScaling.Layer] = []
}

/// One method as the tools offer it: its name, defaults, whether it needs calibration, how
/// its settings are validated, and how it turns a calibration run into conversion options.
/// `eqconvert` and `eqtable` both enumerate `QuantizationRecipes.all`; adding a method is
/// one entry there.
public struct QuantizationRecipe: Sendable {
    public let name: String
    /// One line for help texts.
    public let summary: String
    public let defaultBits: Int
    public let defaultGranularity: Granularity
    let calibrationNeeded: @Sendable (MethodSettings) -> Bool
    let check: @Sendable (MethodSettings) throws -> Void
    let build: @Sendable (CalibrationRun?, MethodSettings, ConversionOptions, MethodProgress) throws -> PreparedMethod

    /// Whether this method, with these settings, runs the model over calibration text.
    public func needsCalibration(_ settings: MethodSettings) -> Bool { calibrationNeeded(settings) }

    /// The width the method uses with `settings`.
    public func bits(_ settings: MethodSettings) -> Int { settings.bits ?? defaultBits }
    /// The granularity the method uses with `settings`.
    public func granularity(_ settings: MethodSettings) -> Granularity { settings.granularity ?? defaultGranularity }

    /// Refuses settings the method cannot use, with a message that says what to change.
    public func validate(_ settings: MethodSettings) throws {
        guard (2...8).contains(bits(settings)) else { throw MethodSettingsError("--bits must be between 2 and 8, not \(bits(settings))") }
        try check(settings)
    }

    /// The conversion options (and reports) for `settings`, from `run` when the method needs one.
    public func prepare(_ run: CalibrationRun?, settings: MethodSettings, base: ConversionOptions,
                        progress: MethodProgress = MethodProgress()) throws -> PreparedMethod {
        try validate(settings)
        if needsCalibration(settings), run == nil {
            throw MethodSettingsError("--method \(name) needs calibration text: add --calib FILE (e.g. fixtures/calibration/corpus-calib.txt)")
        }
        var options = base
        options.method = name
        options.bits = bits(settings)
        options.granularity = granularity(settings)
        options.threads = settings.threads
        return try build(run, settings, options, progress)
    }
}

/// The registry of methods.
public enum QuantizationRecipes {
    /// Every method, in the order tools list them.
    public static let all: [QuantizationRecipe] = weightOnly + [smoothQuant, zeroQuant, llmInt8, awq]

    public static var names: [String] { all.map(\.name) }

    /// The method named `name`, or an error listing the known ones.
    public static func named(_ name: String) throws -> QuantizationRecipe {
        guard let r = all.first(where: { $0.name == name }) else {
            throw MethodSettingsError("unknown --method \(name); choose one of: \(names.joined(separator: ", "))")
        }
        return r
    }

    /// The weight-only methods: one quantizer each, no calibration (a given `--calib` still
    /// records key ranges for KV-cache quantization).
    static let weightOnly: [QuantizationRecipe] = QuantizationMethods.names.map { name in
        QuantizationRecipe(
            name: name, summary: "weight-only \(name)", defaultBits: 8, defaultGranularity: .channel,
            calibrationNeeded: { _ in false }, check: { _ in },
            build: { run, _, options, _ in
                PreparedMethod(options: run.map { CalibratedMethods.recordingCalibration($0, base: options) } ?? options)
            })
    }

    static let smoothQuant = QuantizationRecipe(
        name: "smoothquant", summary: "SmoothQuant W8A8 (calibrated smoothing, int8 activations)", defaultBits: 8, defaultGranularity: .channel,
        calibrationNeeded: { _ in true },
        check: { s in
            try w8a8(s, "smoothquant")
            guard s.alpha.isFinite, (0...1).contains(s.alpha) else { throw MethodSettingsError("--alpha must be between 0 and 1") }
        },
        build: { run, s, options, _ in
            PreparedMethod(options: try CalibratedMethods.smoothQuant(run!, alpha: s.alpha, linearFedSites: s.smoothLinearFed, base: options))
        })

    static let llmInt8 = QuantizationRecipe(
        name: "llmint8", summary: "LLM.int8() (vector-wise int8 with f32 outlier features)", defaultBits: 8, defaultGranularity: .channel,
        calibrationNeeded: { _ in true },
        check: { s in
            try w8a8(s, "llmint8")
            guard s.threshold.isFinite, s.threshold > 0 else { throw MethodSettingsError("--threshold must be a positive number") }
        },
        build: { run, s, options, _ in
            PreparedMethod(options: try CalibratedMethods.llmInt8(run!, threshold: s.threshold, base: options))
        })

    static let awq = QuantizationRecipe(
        name: "awq", summary: "AWQ (activation-aware scales, weight-only)", defaultBits: 4, defaultGranularity: .group(128),
        calibrationNeeded: { _ in true },
        check: { s in
            guard s.awqRows >= 1 else { throw MethodSettingsError("--awq-rows must be at least 1") }
        },
        build: { run, s, options, progress in
            let scaling = try CalibratedMethods.awqScaling(run!, bits: options.bits, granularity: options.granularity, sampleRows: s.awqRows,
                                                           threads: s.threads, progress: progress.search)
            var prepared = PreparedMethod(options: CalibratedMethods.awq(run!, scaling: scaling, base: options))
            prepared.awqLayers = scaling.layers
            return prepared
        })

    static let zeroQuant = QuantizationRecipe(
        name: "zeroquant", summary: "ZeroQuant (group-wise, layer-by-layer distillation)", defaultBits: 8, defaultGranularity: .group(128),
        calibrationNeeded: { $0.lkdSteps > 0 },
        check: { s in
            guard s.lkdSteps >= 0 else { throw MethodSettingsError("--lkd-steps must be 0 or more") }
            guard s.lkdBatch >= 1 else { throw MethodSettingsError("--lkd-batch must be at least 1") }
            if let lr = s.lkdLearningRate, !(lr.isFinite && lr > 0) { throw MethodSettingsError("--lkd-lr must be a positive number") }
        },
        build: { run, s, options, progress in
            var lkd = LayerwiseDistillation.Options(bits: options.bits, steps: s.lkdSteps, learningRate: s.lkdLearningRate,
                                                    batchSize: s.lkdBatch, seed: s.seed, threads: s.threads)
            if case .group(let g) = options.granularity { lkd.groupSize = g }
            let result = try CalibratedMethods.zeroQuant(s.lkdSteps > 0 ? run : nil, lkd: lkd, weightOnly: s.weightOnly, base: options,
                                                         progress: progress.distillation)
            var prepared = PreparedMethod(options: result.options)
            prepared.distillation = result.reports
            if s.lkdSteps == 0, let run { prepared.options = CalibratedMethods.recordingCalibration(run, base: prepared.options) }
            return prepared
        })

    /// Vector-wise int8 is what SmoothQuant and LLM.int8 are: other widths or granularities
    /// would be another method.
    static func w8a8(_ s: MethodSettings, _ name: String) throws {
        if let bits = s.bits, bits != 8 { throw MethodSettingsError("--method \(name) is 8-bit; drop --bits \(bits)") }
        if let g = s.granularity, g != .channel { throw MethodSettingsError("--method \(name) quantizes per channel; drop --granularity \(g)") }
    }
}
