import Foundation

/// The sliding-window perplexity protocol (README, "How perplexity is measured").
///
/// The text is tokenized whole. Windows of `contextLength` tokens start every `stride`
/// tokens; in each window after the first only the tokens not scored before (the last
/// `end − previous end`) are scored, each predicted from its full left context inside the
/// window. ppl = exp(total NLL / scored tokens). This is the Hugging Face perplexity guide's
/// method, weighted per token rather than per window.
public struct PerplexityProtocol: Sendable, Equatable {
    public var contextLength: Int
    public var stride: Int

    public init(contextLength: Int, stride: Int? = nil) {
        precondition(contextLength >= 2)
        self.contextLength = contextLength
        self.stride = min(stride ?? contextLength, contextLength)
        precondition(self.stride >= 1)
    }

    /// Refuses windows longer than the model's context.
    public func check(against config: ModelConfig, origin: String) throws {
        guard contextLength <= config.contextLength else {
            throw ModelError.unsupported(origin: origin, reason: "windows of \(contextLength) tokens exceed the model's \(config.contextLength) positions; use --ctx \(config.contextLength) or less")
        }
    }

    /// One window: the tokens `range` of the text, of which the last `scored` are scored.
    public struct Window: Equatable, Sendable {
        public var range: Range<Int>
        public var scored: Int
    }

    /// The windows over a text of `tokenCount` tokens.
    public func windows(tokenCount n: Int) -> [Window] {
        var result: [Window] = []
        var previousEnd = 0
        var begin = 0
        while begin < n {
            let end = min(begin + contextLength, n)
            // The first token of the text has no left context, so it is never scored.
            let scored = min(end - previousEnd, end - begin - 1)
            if scored > 0 { result.append(Window(range: begin..<end, scored: scored)) }
            previousEnd = end
            if end == n { break }
            begin += stride
        }
        return result
    }
}

/// What a perplexity run measured.
public struct PerplexityResult: Sendable {
    public var textTokens: Int
    public var scoredTokens: Int
    /// Sum of −log p(token | context) over scored tokens, in nats.
    public var totalNLL: Double
    public var windows: Int
    public var seconds: Double

    public var meanNLL: Double { scoredTokens == 0 ? .nan : totalNLL / Double(scoredTokens) }
    public var perplexity: Double { exp(meanNLL) }
    public var tokensPerSecond: Double { seconds > 0 ? Double(scoredTokens) / seconds : 0 }
}

/// Scores token sequences with a model under a `PerplexityProtocol`.
public struct PerplexityEvaluator {
    public var model: any CausalLanguageModel
    public var context: ComputeContext
    public var protocolSettings: PerplexityProtocol
    /// Positions whose logits are computed at once (bounds the [rows, vocab] logits buffer).
    public var logitRows = 256
    /// Receives the first window's logits, chunk by chunk: (first position, [rows, vocab]).
    /// For comparing with other implementations; positions run from 0 to window length − 2.
    public var firstWindowLogits: ((Int, UnsafeBufferPointer<Float>) -> Void)?

    public init(model: any CausalLanguageModel, context: ComputeContext, protocolSettings: PerplexityProtocol) {
        self.model = model; self.context = context; self.protocolSettings = protocolSettings
    }

    /// Runs every window; `progress(tokensScored, totalToScore)` after each. Refuses token
    /// ids outside the model's vocabulary and windows longer than its context.
    public func evaluate(_ tokens: [Int32], progress: ((Int, Int) -> Void)? = nil) throws -> PerplexityResult {
        try model.checkTokens(tokens, source: "the text")
        try protocolSettings.check(against: model.config, origin: model.origin)
        let start = Date()
        let windows = protocolSettings.windows(tokenCount: tokens.count)
        let total = windows.reduce(0) { $0 + $1.scored }
        var nll = 0.0
        var scored = 0
        for (i, w) in windows.enumerated() {
            nll += windowNLL(Array(tokens[w.range]), scored: w.scored, logitSink: i == 0 ? firstWindowLogits : nil).reduce(0, +)
            scored += w.scored
            progress?(scored, total)
        }
        return PerplexityResult(textTokens: tokens.count, scoredTokens: scored, totalNLL: nll,
                                windows: windows.count, seconds: Date().timeIntervalSince(start))
    }

    /// −log p of the last `scored` tokens of `window`, each from the positions before it.
    public func windowNLL(_ window: [Int32], scored: Int, logitSink: ((Int, UnsafeBufferPointer<Float>) -> Void)? = nil) -> [Double] {
        let t = window.count, e = model.config.embeddingSize, v = model.config.vocabSize
        let hidden = model.hiddenStates(window, context: context)
        // Token i is predicted by position i − 1; scored tokens are t−scored ..< t.
        let firstPosition = t - scored - 1
        var result = [Double](repeating: 0, count: scored)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: logitRows * v)
        defer { logits.deallocate() }
        result.withUnsafeMutableBufferPointer { results in hidden.withUnsafeBufferPointer { h in
            var p = firstPosition
            while p < t - 1 {
                let rows = min(logitRows, t - 1 - p)
                model.logits(h.baseAddress! + p * e, rows: rows, into: logits, context: context)
                logitSink?(p, UnsafeBufferPointer(start: logits, count: rows * v))
                let p0 = p
                context.profile.measure(.logSoftmax) {
                    Parallel.forEach(rows, threads: context.threads) { r in
                        let row = logits + r * v
                        let target = Int(window[p0 + r + 1])
                        results[p0 + r - firstPosition] = Double(VectorOps.logSumExp(row, count: v) - row[target])
                    }
                }
                p += rows
            }
        } }
        return result
    }
}
