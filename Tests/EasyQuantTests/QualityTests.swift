import EasyQuant
import Foundation
import XCTest

/// Perplexity of each weight-only method on the fixture, against its f32 baseline, on the
/// first 8,192 tokens of WikiText-2 test (docs/RESULTS.md has the whole file).
///
/// Bounds, and why:
/// - absmax per channel: within 1% (the bar). 8-bit per-channel codes add noise
///   about 40 dB below the weights; measured +0.1%.
/// - every 8-bit method, per channel or per tensor: within 1%. One scale per tensor is the
///   original LLMEasyQuant's choice and is worse on large models with outlier channels; this
///   small model has few, so it stays close (measured +0.3%).
/// - 4-bit (simquant, absmax) per channel or in groups of 32: within 5%. Sixteen levels
///   leave noise only ~20 dB below the weights; measured +0.7% to +2.2%.
/// Each bound is also required to be met by a margin below what a broken quantizer gives:
/// 2-bit per tensor must be far worse (> 20%), which shows the measurement can fail.
final class QualityTests: XCTestCase {
    func testWeightOnlyMethodsStayWithinTheirBounds() throws {
        let base = try openWeightSource(path: TestFiles.fixture("tiny-gpt2"))
        let tokenizer = try EvaluationSetup.tokenizer(for: base, override: nil)
        let tokens = Array(try EvaluationSetup.tokens(ofTextFile: TestFiles.fixture("wikitext-2-raw/wiki.test.hfjoin.txt"),
                                                      tokenizer: tokenizer, threads: 2).prefix(8192))
        func perplexity(_ source: any WeightSource) throws -> Double {
            let model = try source.makeModel()
            return try PerplexityEvaluator(model: model, context: ComputeContext(threads: 2),
                                       protocolSettings: PerplexityProtocol(contextLength: model.config.contextLength)).evaluate(tokens).perplexity
        }
        let baseline = try perplexity(base)
        XCTAssertEqual(baseline, 269.2368, accuracy: 0.01, "the f32 baseline of the first 8,192 tokens")

        let cases: [(String, Int, Granularity, Double)] = [
            ("absmax", 8, .channel, 0.01), ("absmax", 8, .tensor, 0.01),
            ("zeropoint", 8, .channel, 0.01), ("zeropoint", 8, .tensor, 0.01),
            ("symquant", 8, .channel, 0.01), ("symquant", 8, .tensor, 0.01),
            ("simquant", 8, .channel, 0.01), ("simquant", 8, .tensor, 0.01),
            ("simquant", 4, .channel, 0.05), ("simquant", 4, .group(32), 0.05), ("absmax", 4, .group(32), 0.05),
        ]
        for (name, bits, granularity, bound) in cases {
            let ppl = try perplexity(QuantizingWeightSource(base: base, method: QuantizationMethods.make(name, bits: bits), granularity: granularity))
            XCTAssertTrue(ppl.isFinite, "\(name) \(bits)-bit \(granularity)")
            XCTAssertLessThan(abs(ppl / baseline - 1), bound, "\(name) \(bits)-bit \(granularity): \(ppl) vs \(baseline)")
        }
        let broken = try perplexity(QuantizingWeightSource(base: base, method: SimQuant(bits: 2), granularity: .tensor))
        XCTAssertGreaterThan(broken / baseline - 1, 0.2, "2-bit per tensor is far off, so the bounds above can fail")
    }
}
