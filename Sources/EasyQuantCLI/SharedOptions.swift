import ArgumentParser
import EasyQuant

// Option groups the tools share, each validating its own values: a range for every number
// (negative numbers are read as values, `--ctx -5`, so that the range check can say what is
// wrong instead of "missing value"), and a message that names the option and its limits.

/// `--threads`.
public struct ThreadOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Threads to use (default: all cores).")
    public var threads = Parallel.defaultThreads

    public init() {}

    public func validate() throws {
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be between 1 and 1024, not \(threads)") }
    }
}

/// `--compute` and `--backend`: how the matrix products of a forward pass run.
public struct ComputeOptions: ParsableArguments {
    @Option(help: "f32 (weights dequantized inside the products) or int8 (activations quantized per token). Default: what the file asks for, else f32.")
    public var compute: String?

    @Option(help: "Matrix backend: \(MatrixBackends.names.joined(separator: ", ")).")
    public var backend = MatrixBackends.names[0]

    public init() {}

    public var mode: ComputeMode? { compute.flatMap(ComputeMode.init) }

    public func validate() throws {
        if let compute, ComputeMode(rawValue: compute) == nil { throw ValidationError("--compute must be f32 or int8, not \(compute)") }
        guard MatrixBackends.named(backend) != nil else {
            throw ValidationError("--backend must be one of \(MatrixBackends.names.joined(separator: ", ")), not \(backend)")
        }
    }
}

/// `--ctx`, `--stride`, `--max-tokens`: the sliding windows of a perplexity run.
public struct WindowOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Window length in tokens (default: the model's context).")
    public var ctx: Int?

    @Option(parsing: .unconditional, help: "Tokens the window advances by (default: --ctx, non-overlapping windows).")
    public var stride: Int?

    @Option(parsing: .unconditional, help: "Evaluate only the first N tokens of the text (tokenizing stops there).")
    public var maxTokens: Int?

    public init() {}

    public func validate() throws {
        if let ctx, ctx < 2 { throw ValidationError("--ctx must be at least 2 (a window needs a token and one to predict), not \(ctx)") }
        if let stride, stride < 1 { throw ValidationError("--stride must be at least 1, not \(stride)") }
        if let ctx, let stride, stride > ctx { throw ValidationError("--stride \(stride) is longer than --ctx \(ctx); tokens between windows would never be scored") }
        if let maxTokens, maxTokens < 2 { throw ValidationError("--max-tokens must be at least 2, not \(maxTokens)") }
    }

    /// The windows for a model with `config`: --ctx (default the model's context), refused
    /// when longer than the model's context.
    public func protocolSettings(for config: ModelConfig, model: String) throws -> PerplexityProtocol {
        let window = ctx ?? config.contextLength
        guard window <= config.contextLength else {
            throw ValidationError("--ctx \(window) exceeds the \(config.contextLength) positions of \(model); use --ctx \(config.contextLength) or less")
        }
        return PerplexityProtocol(contextLength: window, stride: stride)
    }
}

/// `--kv-bits` and `--kv-outliers`: KV-cache quantization.
public struct KVOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Quantize attention keys and values as a cache holds them, to 2-8 bits (needs key ranges recorded by eqconvert --calib).")
    public var kvBits: Int?

    @Option(parsing: .unconditional, help: "With --kv-bits: keep this percentage of outlier values exactly (dense-and-sparse): \(KVQuantization.outlierLevels.map { Format.fixed($0, 1) }.joined(separator: ", ")).")
    public var kvOutliers: Double = 0

    public init() {}

    public func validate() throws {
        if let kvBits, !(2...8).contains(kvBits) { throw ValidationError("--kv-bits must be between 2 and 8, not \(kvBits)") }
        guard KVQuantization.outlierLevels.contains(where: { abs($0 - kvOutliers) < 1e-9 }) else {
            throw ValidationError("--kv-outliers must be one of \(KVQuantization.outlierLevels.map { Format.fixed($0, 1) }.joined(separator: ", ")), not \(kvOutliers)")
        }
        if kvBits == nil, kvOutliers != 0 { throw ValidationError("--kv-outliers needs --kv-bits") }
    }
}

/// `--calib`, `--calib-samples`, `--calib-len`, `--seed`: where calibration windows come from.
public struct CalibrationArguments: ParsableArguments {
    @Option(help: "Calibration text (UTF-8) for calibrated methods; use a different text from the one you evaluate on.")
    public var calib: String?

    @Option(parsing: .unconditional, help: "Calibration windows to draw from --calib (default: 128 for eqconvert, 32 for eqtable).")
    public var calibSamples: Int?

    @Option(parsing: .unconditional, help: "Tokens per calibration window (default: 512, or the model's context if shorter).")
    public var calibLen: Int?

    @Option(parsing: .unconditional, help: "Seed for drawing calibration windows (and distillation batches).")
    public var seed: UInt64 = 0

    public init() {}

    public func validate() throws {
        if let calibSamples, !(1...1_000_000).contains(calibSamples) { throw ValidationError("--calib-samples must be between 1 and 1000000, not \(calibSamples)") }
        if let calibLen, calibLen < 2 { throw ValidationError("--calib-len must be at least 2 (a window needs a token and one to predict), not \(calibLen)") }
    }

    /// The calibration options, `defaultSamples` windows unless --calib-samples; nil without --calib.
    public func options(defaultSamples: Int) -> CalibrationOptions? {
        calib.map { CalibrationOptions(file: $0, samples: calibSamples ?? defaultSamples, length: calibLen, seed: seed) }
    }

    /// Refuses a --calib-len longer than the model's context.
    public func check(against config: ModelConfig, model: String) throws {
        if let calibLen, calibLen > config.contextLength {
            throw ValidationError("--calib-len \(calibLen) exceeds the \(config.contextLength) positions of \(model); use \(config.contextLength) or less")
        }
    }
}

/// Parses `--granularity`, with the message the tools print.
public func parseGranularity(_ text: String) throws -> Granularity {
    guard let g = Granularity(text) else {
        throw ValidationError("--granularity must be channel, tensor or group:N (1 ≤ N ≤ \(Granularity.maximumGroupSize)), not \(text)")
    }
    return g
}
