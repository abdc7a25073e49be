import EasyQuant
import Foundation
import XCTest

/// The compute modes, the KV cache, generation and the reference comparison on the fixture.
final class ModelComputeTests: XCTestCase {
    static let fixture = TestFiles.fixture("tiny-gpt2")
    static let text = TestFiles.fixture("wikitext-2-raw/wiki.test.hfjoin.txt")

    static let fixtureTokens: [Int32] = {
        let source = try! openWeightSource(path: fixture)
        return try! EvaluationSetup.tokens(ofTextFile: text, tokenizer: EvaluationSetup.tokenizer(for: source, override: nil), threads: 2)
    }()

    func logits(_ model: DecoderModel, hidden: [Float], rows: Int, context: ComputeContext) -> [Float] {
        var out = [Float](repeating: 0, count: rows * model.config.vocabSize)
        hidden.withUnsafeBufferPointer { h in
            out.withUnsafeMutableBufferPointer { model.logits(h.baseAddress!, rows: rows, into: $0.baseAddress!, context: context) }
        }
        return out
    }

    func maxRelative(_ a: [Float], _ b: [Float]) -> Double {
        Double(zip(a, b).map { abs($0 - $1) }.max()!) / Double(b.map(abs).max()!)
    }

    /// int8 activations × int8 weights, rescaled, against the same weights dequantized in f32:
    /// the only difference is the per-token rounding of the activations.
    func testInt8ComputeStaysCloseToF32OnTheSameWeights() throws {
        let base = try openWeightSource(path: Self.fixture)
        for (method, granularity) in [("absmax", Granularity.channel), ("zeropoint", .channel), ("simquant", .group(32))] {
            let source = QuantizingWeightSource(base: base, method: try QuantizationMethods.make(method), granularity: granularity)
            let model = try source.makeModel()
            let ids = Array(Self.fixtureTokens.prefix(128))
            let f32 = ComputeContext(mode: .f32, threads: 2), int8 = ComputeContext(mode: .int8, threads: 2)
            let a = logits(model, hidden: model.hiddenStates(ids, context: f32), rows: ids.count, context: f32)
            let b = logits(model, hidden: model.hiddenStates(ids, context: int8), rows: ids.count, context: int8)
            let err = maxRelative(b, a)
            XCTAssertLessThan(err, 0.05, "\(method) \(granularity)")
            XCTAssertGreaterThan(err, 0, "int8 activations must change something (\(method))")
        }
    }

    /// Decoding with a cache (a prompt, a few tokens at once, then token by token) gives the
    /// logits of the whole-window pass.
    func testIncrementalDecodingMatchesTheWindowPass() throws {
        let model = try (openWeightSource(path: Self.fixture)).makeModel()
        let context = ComputeContext(threads: 2)
        let ids = Array(Self.fixtureTokens.prefix(40))
        let window = logits(model, hidden: model.hiddenStates(ids, context: context), rows: ids.count, context: context)
        let cache = KVCache(config: model.config)
        cache.reserve(tokens: ids.count)  // touched ahead (zeros) must not change what is read
        var stepped: [Float] = []
        let prefix = model.decode(Array(ids.prefix(24)), cache: cache, context: context)
        stepped += logits(model, hidden: prefix, rows: 24, context: context)
        // A few tokens at once against what the cache holds (its rows kept head by head).
        let chunk = model.decode(Array(ids[24..<29]), cache: cache, context: context)
        stepped += logits(model, hidden: chunk, rows: 5, context: context)
        for token in ids.dropFirst(29) {
            stepped += logits(model, hidden: model.decode([token], cache: cache, context: context), rows: 1, context: context)
        }
        XCTAssertEqual(cache.count, ids.count)
        XCTAssertLessThan(maxRelative(stepped, window), 1e-5)
    }

    /// A cache of halves (eqgen's default) rounds each key and value to f16 once, as it is
    /// stored: token by token and a few tokens at once (halves widened for the window path),
    /// the logits stay within the rounding's reach of the window pass's, and it holds half
    /// the bytes of an f32 cache.
    func testHalfCacheStaysCloseToTheWindowPass() throws {
        let model = try (openWeightSource(path: Self.fixture)).makeModel()
        let context = ComputeContext(threads: 2)
        let ids = Array(Self.fixtureTokens.prefix(40))
        let window = logits(model, hidden: model.hiddenStates(ids, context: context), rows: ids.count, context: context)
        let cache = KVCache(config: model.config, storage: .f16)
        cache.reserve(tokens: ids.count)
        var stepped = logits(model, hidden: model.decode(Array(ids.prefix(24)), cache: cache, context: context), rows: 24, context: context)
        stepped += logits(model, hidden: model.decode(Array(ids[24..<29]), cache: cache, context: context), rows: 5, context: context)
        for token in ids.dropFirst(29) {
            stepped += logits(model, hidden: model.decode([token], cache: cache, context: context), rows: 1, context: context)
        }
        let held = 24 * model.config.vocabSize
        // The first 24 rows attend to their own float rows (nothing held yet): as the window.
        XCTAssertLessThan(maxRelative(Array(stepped.prefix(held)), Array(window.prefix(held))), 1e-5)
        // The rest read halves: measured 3.7e-5, within a half's relative step (2^−11), and
        // more than an f32 cache differs (last bits of the projections only).
        let err = maxRelative(Array(stepped[held...]), Array(window[held...]))
        XCTAssertLessThan(err, 0x1p-11)
        let exact = KVCache(config: model.config)
        var f32 = logits(model, hidden: model.decode(Array(ids.prefix(24)), cache: exact, context: context), rows: 24, context: context)
        for token in ids.dropFirst(24) {
            f32 += logits(model, hidden: model.decode([token], cache: exact, context: context), rows: 1, context: context)
        }
        XCTAssertGreaterThan(err, 10 * maxRelative(Array(f32[held...]), Array(window[held...])))
        XCTAssertEqual(cache.bytesPerToken * 2, KVCache(config: model.config).bytesPerToken)
    }

    /// A quantized cache holds codes; attention must see exactly what the window pass's
    /// in-place rounding gives.
    func testQuantizedCacheSeesWhatTheWindowPassRounds() throws {
        let source = try openWeightSource(path: Self.fixture)
        let model = try source.makeModel()
        let ids = Array(Self.fixtureTokens.prefix(48))
        // Key ranges from a short calibration over other text.
        let calibration = KVCalibration(layers: model.config.layerCount, width: model.config.kvSize, expectedTokens: 512)
        _ = model.hiddenStates(Array(Self.fixtureTokens[1000..<1256]), context: ComputeContext(threads: 2), observer: calibration)
        _ = model.hiddenStates(Array(Self.fixtureTokens[2000..<2256]), context: ComputeContext(threads: 2), observer: calibration)
        for (bits, outliers) in [(4, 0.0), (2, 1.0)] {
            let kv = try calibration.quantization(bits: bits, outlierPercent: outliers, heads: model.config.headCount)
            var windowContext = ComputeContext(threads: 2)
            windowContext.kvQuantization = kv
            let window = logits(model, hidden: model.hiddenStates(ids, context: windowContext), rows: ids.count, context: windowContext)
            let plain = ComputeContext(threads: 2)
            // All tokens in one call: the same projections as the window pass, so the same codes.
            let whole = KVCache(config: model.config, quantization: kv)
            let once = logits(model, hidden: model.decode(ids, cache: whole, context: plain), rows: ids.count, context: plain)
            XCTAssertLessThan(maxRelative(once, window), 1e-6, "\(bits)-bit, \(outliers)% outliers")
            // Token by token, a projection may differ in its last bit and flip a code now and
            // then: far less than what quantizing the cache changes at all.
            let cache = KVCache(config: model.config, quantization: kv)
            var stepped = logits(model, hidden: model.decode(Array(ids.prefix(8)), cache: cache, context: plain), rows: 8, context: plain)
            for token in ids.dropFirst(8) {
                stepped += logits(model, hidden: model.decode([token], cache: cache, context: plain), rows: 1, context: plain)
            }
            let f32 = logits(model, hidden: model.hiddenStates(ids, context: plain), rows: ids.count, context: plain)
            let effect = maxRelative(window, f32)
            XCTAssertGreaterThan(effect, 1e-4, "quantizing the cache changes the logits")
            XCTAssertLessThan(maxRelative(stepped, window), effect / 5)
            XCTAssertLessThan(cache.bytesPerToken, KVCache(config: model.config).bytesPerToken / 3)
        }
    }

    /// Greedy decoding matches transformers' `generate(do_sample=False)` token for token.
    func testGreedyGenerationMatchesTransformers() throws {
        let ref = try JSONValue.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: TestFiles.fixture("reference/tiny-gpt2-generation.json")))))
        let source = try openWeightSource(path: Self.fixture)
        let model = try source.makeModel()
        let tokenizer = try EvaluationSetup.tokenizer(for: source, override: nil)
        let generator = TextGenerator(model: model, context: ComputeContext(threads: 2), endOfText: tokenizer.endOfTextID)
        for c in ref["cases"]!.arrayValue! {
            let prompt = tokenizer.encode(c["prompt"]!.stringValue!)
            XCTAssertEqual(prompt.map(Int.init), c["prompt_ids"]!.arrayValue!.map { $0.intValue! })
            let result = try generator.generate(prompt: prompt, maxNewTokens: ref["new_tokens"]!.intValue!)
            XCTAssertEqual(result.generated.map(Int.init), c["generated_ids"]!.arrayValue!.map { $0.intValue! }, c["prompt"]!.stringValue!)
        }
    }

    func testSamplingIsSeededAndRespectsTopK() throws {
        let source = try openWeightSource(path: Self.fixture)
        let model = try source.makeModel()
        let generator = TextGenerator(model: model, context: ComputeContext(threads: 2))
        let prompt = Array(Self.fixtureTokens.prefix(5))
        let a = try generator.generate(prompt: prompt, maxNewTokens: 20, sampling: SamplingOptions(temperature: 1, topK: 40, seed: 7))
        let b = try generator.generate(prompt: prompt, maxNewTokens: 20, sampling: SamplingOptions(temperature: 1, topK: 40, seed: 7))
        let c = try generator.generate(prompt: prompt, maxNewTokens: 20, sampling: SamplingOptions(temperature: 1, topK: 40, seed: 8))
        XCTAssertEqual(a.generated, b.generated)
        XCTAssertNotEqual(a.generated, c.generated)
        // top-k 1 is greedy.
        let greedy = try generator.generate(prompt: prompt, maxNewTokens: 20)
        let top1 = try generator.generate(prompt: prompt, maxNewTokens: 20, sampling: SamplingOptions(temperature: 0.7, topK: 1, seed: 3))
        XCTAssertEqual(greedy.generated, top1.generated)
    }

    /// A model compared with itself: no divergence, full agreement; a quantized model: some.
    func testReferenceComparison() throws {
        let base = try openWeightSource(path: Self.fixture)
        let model = try base.makeModel()
        let tokens = Array(Self.fixtureTokens.prefix(600))
        let settings = PerplexityProtocol(contextLength: 256)
        let same = try ReferenceComparison(model: model, modelContext: ComputeContext(threads: 2), reference: model,
                                       referenceContext: ComputeContext(threads: 2), protocolSettings: settings).evaluate(tokens)
        XCTAssertEqual(same.meanKL, 0, accuracy: 1e-9)
        XCTAssertEqual(same.top1Agreement, 1)
        XCTAssertEqual(same.logitRMS, 0)
        XCTAssertEqual(same.model.perplexity, same.reference.perplexity)
        let plain = try PerplexityEvaluator(model: model, context: ComputeContext(threads: 2), protocolSettings: settings).evaluate(tokens)
        // Logits are computed in chunks of other sizes there, so the last bits may differ.
        XCTAssertEqual(same.reference.perplexity, plain.perplexity, accuracy: plain.perplexity * 1e-6)

        let q4 = try (QuantizingWeightSource(base: base, method: SimQuant(bits: 4), granularity: .group(32))).makeModel()
        let diff = try ReferenceComparison(model: q4, modelContext: ComputeContext(threads: 2), reference: model,
                                       referenceContext: ComputeContext(threads: 2), protocolSettings: settings).evaluate(tokens)
        XCTAssertGreaterThan(diff.meanKL, 1e-4)
        XCTAssertGreaterThanOrEqual(diff.p99KL, diff.meanKL)
        XCTAssertLessThan(diff.top1Agreement, 1)
        XCTAssertGreaterThan(diff.top1Agreement, 0.5)
    }

    func testPerplexityWindows() {
        // 10 tokens, windows of 4 every 2: [0,4) scores 3, [2,6) 2, [4,8) 2, [6,10) 2: 9 = all but the first.
        let w = PerplexityProtocol(contextLength: 4, stride: 2).windows(tokenCount: 10)
        XCTAssertEqual(w.map(\.range), [0..<4, 2..<6, 4..<8, 6..<10])
        XCTAssertEqual(w.map(\.scored), [3, 2, 2, 2])
        // Non-overlapping: a window's first token has no left context inside the window, so
        // each window scores all but its first token (as transformers' shifted labels do).
        let n = PerplexityProtocol(contextLength: 4).windows(tokenCount: 10)
        XCTAssertEqual(n.map(\.range), [0..<4, 4..<8, 8..<10])
        XCTAssertEqual(n.map(\.scored), [3, 3, 1])
    }
}
