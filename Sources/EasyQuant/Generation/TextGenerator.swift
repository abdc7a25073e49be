import Foundation

/// How the next token is chosen.
public struct SamplingOptions: Sendable {
    /// 0 means greedy (the most likely token; the lowest id on ties, as `argmax` picks; a
    /// NaN logit is never chosen).
    public var temperature: Float
    /// Sample only among the `topK` most likely tokens (nil: all).
    public var topK: Int?
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int? = nil, seed: UInt64 = 0) {
        self.temperature = temperature; self.topK = topK; self.seed = seed
    }
}

/// What a generation produced.
public struct GenerationResult: Sendable {
    public var promptTokens: Int
    public var generated: [Int32]
    /// Time to process the prompt (prefill) and to produce the new tokens (decode).
    public var promptSeconds: Double
    public var decodeSeconds: Double
    /// Why it stopped: "length", "end of text" or "context full".
    public var stopReason: String
    public var kvBytesPerToken: Double

    /// New tokens per second of decoding (each: logits, choice, and the next step).
    public var tokensPerSecond: Double { decodeSeconds > 0 ? Double(generated.count) / decodeSeconds : 0 }
    /// Prompt tokens per second of the prefill.
    public var promptTokensPerSecond: Double { promptSeconds > 0 ? Double(promptTokens) / promptSeconds : 0 }
}

/// Incremental decoding with a KV cache: the prompt in one pass, then one token at a time.
///
/// A profile in the context (`ComputeContext.profile`) measures the decode steps only, not
/// the prompt, and counts their hand-offs to the worker threads (`ForwardProfile.handOffs`).
public struct TextGenerator {
    public var model: any CausalLanguageModel
    public var context: ComputeContext
    public var kvQuantization: KVQuantization?
    /// How the cache stores keys and values: f16 by default (as llama.cpp's cache), which
    /// halves what attention reads per decoded token; f32 keeps them as computed.
    public var kvStorage: KVStorage
    /// Stop when this token is produced (GPT-2's `<|endoftext|>`), if set.
    public var endOfText: Int32?

    public init(model: any CausalLanguageModel, context: ComputeContext, kvQuantization: KVQuantization? = nil,
                kvStorage: KVStorage = .f16, endOfText: Int32? = nil) {
        self.model = model; self.context = context; self.kvQuantization = kvQuantization; self.kvStorage = kvStorage
        self.endOfText = endOfText
    }

    /// Continues `prompt` by up to `maxNewTokens` tokens, calling `onToken` as each arrives.
    /// Throws, with the tokens so far already passed to `onToken`, when keys or values go
    /// beyond what an f16 cache holds (attention over infinities would choose nonsense).
    /// What decoding reads is prepared first (`prepareForDecoding`), outside the timings.
    public func generate(prompt: [Int32], maxNewTokens: Int, sampling: SamplingOptions = SamplingOptions(),
                         onToken: ((Int32) -> Void)? = nil) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw ModelError.unsupported(origin: model.origin, reason: "the prompt is empty after tokenization") }
        try model.checkTokens(prompt, source: "the prompt")
        model.prepareForDecoding(mode: context.mode, threads: context.threads)
        let cache = model.makeCache(quantization: kvQuantization, capacity: nil, storage: kvStorage)
        // The rows this generation can fill, touched now rather than one page at a time
        // between decode steps.
        cache.reserve(tokens: prompt.count + maxNewTokens)
        var rng = SeededGenerator(seed: sampling.seed)
        let v = model.config.vocabSize, e = model.config.embeddingSize
        var logits = [Float](repeating: 0, count: v)
        var generated: [Int32] = []
        var stop = "length"

        func nextToken(after hidden: [Float], rows: Int) -> Int32 {
            hidden.withUnsafeBufferPointer { h in
                logits.withUnsafeMutableBufferPointer { model.logits(h.baseAddress! + (rows - 1) * e, rows: 1, into: $0.baseAddress!, context: context) }
            }
            return Self.choose(logits, sampling, &rng)
        }

        let start = Date()
        var input = Array(prompt.suffix(cache.capacity - 1))
        var promptContext = context
        promptContext.profile = nil
        var hidden = model.decode(input, cache: cache, context: promptContext)
        let promptSeconds = Date().timeIntervalSince(start)
        let decodeStart = Date()
        context.profile?.startCountingHandOffs()
        defer { context.profile?.stopCountingHandOffs() }
        while generated.count < maxNewTokens {
            if cache.overflows > 0 {
                throw ModelError.unsupported(origin: model.origin, reason: "\(cache.overflows) keys or values reached ±65,520 or more, "
                    + "beyond the f16 KV cache's range, by position \(cache.count); use an f32 cache (eqgen --kv-storage f32)")
            }
            let token = nextToken(after: hidden, rows: input.count)
            generated.append(token)
            onToken?(token)
            if token == endOfText { stop = "end of text"; break }
            if generated.count == maxNewTokens { break }
            if cache.count >= cache.capacity { stop = "context full"; break }
            input = [token]
            hidden = model.decode(input, cache: cache, context: context)
        }
        return GenerationResult(promptTokens: prompt.count, generated: generated, promptSeconds: promptSeconds,
                                decodeSeconds: Date().timeIntervalSince(decodeStart), stopReason: stop,
                                kvBytesPerToken: cache.bytesPerToken)
    }

    /// Greedy argmax, or a sample from softmax(logits / temperature) over the top k.
    static func choose(_ logits: [Float], _ s: SamplingOptions, _ rng: inout SeededGenerator) -> Int32 {
        if s.temperature <= 0 { return Int32(logits.withUnsafeBufferPointer(VectorOps.argmax)) }
        var candidates = Array(logits.indices)
        if let k = s.topK, k < logits.count {
            candidates.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            candidates = Array(candidates.prefix(max(1, k)))
        }
        let top = candidates.map { logits[$0] }.max()!
        let weights = candidates.map { Double(exp((logits[$0] - top) / s.temperature)) }
        let total = weights.reduce(0, +)
        var u = Double(rng.next() >> 11) / Double(1 << 53) * total
        for (i, w) in zip(candidates, weights) {
            u -= w
            if u < 0 { return Int32(i) }
        }
        return Int32(candidates.last!)
    }
}
