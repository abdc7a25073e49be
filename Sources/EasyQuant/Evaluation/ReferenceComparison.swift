import Foundation

/// How far a model's next-token distributions are from a reference model's, on the same
/// windows: perplexity barely moves at 8 bits on small models, these numbers still do.
public struct ComparisonResult: Sendable {
    public var model: PerplexityResult
    public var reference: PerplexityResult
    /// KL(P_reference ‖ P_model) per scored position, in nats: mean and 99th percentile.
    public var meanKL: Double
    public var p99KL: Double
    public var maxKL: Double
    /// Share of scored positions where both models' most likely next token is the same.
    public var top1Agreement: Double
    /// Root mean square of (logit_model − logit_reference) over positions and vocabulary.
    public var logitRMS: Double
}

/// Scores the same windows with a model and its reference in one process, position by
/// position, without storing logits (llama.cpp's KL-divergence mode needs a logits file).
public struct ReferenceComparison {
    public var model: any CausalLanguageModel
    public var modelContext: ComputeContext
    public var reference: any CausalLanguageModel
    public var referenceContext: ComputeContext
    public var protocolSettings: PerplexityProtocol
    public var logitRows = 64

    public init(model: any CausalLanguageModel, modelContext: ComputeContext, reference: any CausalLanguageModel, referenceContext: ComputeContext,
                protocolSettings: PerplexityProtocol) {
        self.model = model; self.modelContext = modelContext; self.reference = reference
        self.referenceContext = referenceContext; self.protocolSettings = protocolSettings
    }

    /// Per-position figures of one row pair.
    struct Position {
        var nllModel = 0.0, nllReference = 0.0, kl = 0.0, sumSquares = 0.0
        var agree = false
    }

    public func evaluate(_ tokens: [Int32], progress: ((Int, Int) -> Void)? = nil) throws -> ComparisonResult {
        guard model.config.vocabSize == reference.config.vocabSize else {
            throw ModelError.unsupported(origin: reference.origin, reason: "its vocabulary (\(reference.config.vocabSize)) differs from the model's (\(model.config.vocabSize)); compare a model with its own original")
        }
        try model.checkTokens(tokens, source: "the text")
        try protocolSettings.check(against: model.config, origin: model.origin)
        try protocolSettings.check(against: reference.config, origin: reference.origin)
        var modelSeconds = 0.0, referenceSeconds = 0.0
        let windows = protocolSettings.windows(tokenCount: tokens.count)
        let total = windows.reduce(0) { $0 + $1.scored }
        let v = model.config.vocabSize
        var positions: [Position] = []
        positions.reserveCapacity(total)
        let a = UnsafeMutablePointer<Float>.allocate(capacity: logitRows * v)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: logitRows * v)
        defer { a.deallocate(); b.deallocate() }

        for w in windows {
            let window = Array(tokens[w.range])
            let t = window.count
            var clock = Date()
            let hm = model.hiddenStates(window, context: modelContext)
            modelSeconds += Date().timeIntervalSince(clock)
            clock = Date()
            let hr = reference.hiddenStates(window, context: referenceContext)
            referenceSeconds += Date().timeIntervalSince(clock)
            var p = t - w.scored - 1
            while p < t - 1 {
                let rows = min(logitRows, t - 1 - p)
                clock = Date()
                hm.withUnsafeBufferPointer { model.logits($0.baseAddress! + p * model.config.embeddingSize, rows: rows, into: a, context: modelContext) }
                modelSeconds += Date().timeIntervalSince(clock)
                clock = Date()
                hr.withUnsafeBufferPointer { reference.logits($0.baseAddress! + p * reference.config.embeddingSize, rows: rows, into: b, context: referenceContext) }
                referenceSeconds += Date().timeIntervalSince(clock)
                var chunk = [Position](repeating: Position(), count: rows)
                let p0 = p
                chunk.withUnsafeMutableBufferPointer { out in
                    Parallel.forEach(rows, threads: modelContext.threads) { r in
                        out[r] = Self.compare(a + r * v, b + r * v, count: v, target: Int(window[p0 + r + 1]))
                    }
                }
                positions += chunk
                p += rows
            }
            progress?(positions.count, total)
        }

        let n = Double(positions.count)
        let kls = positions.map(\.kl).sorted()
        let p99 = kls.isEmpty ? .nan : kls[min(kls.count - 1, Int((0.99 * Double(kls.count - 1)).rounded(.up)))]
        func result(_ nll: Double, _ seconds: Double) -> PerplexityResult {
            PerplexityResult(textTokens: tokens.count, scoredTokens: positions.count, totalNLL: nll, windows: windows.count, seconds: seconds)
        }
        return ComparisonResult(
            model: result(positions.reduce(0) { $0 + $1.nllModel }, modelSeconds),
            reference: result(positions.reduce(0) { $0 + $1.nllReference }, referenceSeconds),
            meanKL: kls.reduce(0, +) / n, p99KL: p99, maxKL: kls.last ?? .nan,
            top1Agreement: Double(positions.filter(\.agree).count) / n,
            logitRMS: (positions.reduce(0) { $0 + $1.sumSquares } / (n * Double(v))).squareRoot())
    }

    /// NLLs, KL(P_ref ‖ P_model) = Σ p_ref · (log p_ref − log p_model), top-1 agreement and
    /// the squared logit difference for one position.
    static func compare(_ model: UnsafePointer<Float>, _ reference: UnsafePointer<Float>, count v: Int, target: Int) -> Position {
        let lseModel = Double(VectorOps.logSumExp(model, count: v))
        let lseReference = Double(VectorOps.logSumExp(reference, count: v))
        var kl = 0.0, squares = 0.0
        var bestModel = 0, bestReference = 0
        for i in 0..<v {
            let lr = Double(reference[i]) - lseReference
            let lm = Double(model[i]) - lseModel
            kl += exp(lr) * (lr - lm)
            let d = Double(model[i] - reference[i])
            squares += d * d
            if model[i] > model[bestModel] { bestModel = i }
            if reference[i] > reference[bestReference] { bestReference = i }
        }
        return Position(nllModel: lseModel - Double(model[target]), nllReference: lseReference - Double(reference[target]),
                        kl: max(0, kl), sumSquares: squares, agree: bestModel == bestReference)
    }
}
