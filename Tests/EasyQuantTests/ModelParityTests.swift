import EasyQuant
import Foundation
import XCTest

/// The f32 forward pass against Hugging Face transformers' GPT2LMHeadModel, on the trained
/// fixture and on every checkpoint layout; reference values in fixtures/ (made by
/// scripts/make_fixtures.py, scripts/make_gpt2_variants.py and scripts/reference_logits.py).
final class ModelParityTests: XCTestCase {
    static let fixture = TestFiles.fixture("tiny-gpt2")
    static let text = TestFiles.fixture("wikitext-2-raw/wiki.test.hfjoin.txt")

    func json(_ path: String) throws -> JSONValue {
        try JSONValue.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// max |a − b| / max |b|: the relative error of a logit row.
    func relativeError(_ a: some Collection<Float>, _ b: [Float]) -> Double {
        let diff = zip(a, b).map { Double(abs($0 - $1)) }.max() ?? 0
        return diff / Double(b.map { abs($0) }.max() ?? 1)
    }

    func logits(_ model: DecoderModel, _ ids: [Int32], context: ComputeContext) -> [Float] {
        let hidden = model.hiddenStates(ids, context: context)
        var out = [Float](repeating: 0, count: ids.count * model.config.vocabSize)
        hidden.withUnsafeBufferPointer { h in
            out.withUnsafeMutableBufferPointer { model.logits(h.baseAddress!, rows: ids.count, into: $0.baseAddress!, context: context) }
        }
        return out
    }

    func testFixtureLogitsMatchTransformersOnBothBackends() throws {
        let reference = try json(Self.fixture + "/reference.json")["logits_check"]!
        let ids = reference["input_ids"]!.arrayValue!.map { Int32($0.intValue!) }
        let first = reference["logits_position0"]!.arrayValue!.map { Float($0.doubleValue!) }
        let last = reference["logits_last"]!.arrayValue!.map { Float($0.doubleValue!) }
        let model = try (openWeightSource(path: Self.fixture)).makeModel()
        let v = model.config.vocabSize
        var perBackend: [[Float]] = []
        for backend in MatrixBackends.names {
            let l = logits(model, ids, context: ComputeContext(backendName: backend, threads: 2))
            XCTAssertLessThan(relativeError(l[0..<v], first), 1e-4, backend)
            XCTAssertLessThan(relativeError(l[((ids.count - 1) * v)...], last), 1e-4, backend)
            perBackend.append(l)
        }
        XCTAssertLessThan(relativeError(perBackend[0], perBackend[1]), 1e-5, "oneDNN and the SIMD backend agree")
    }

    /// 16 positions of a 256-token window, and the perplexity of 8192 tokens at stride 128.
    func testFixtureWindowAndPerplexityMatchTransformers() throws {
        let ref = try json(TestFiles.fixture("reference/tiny-gpt2-parity.json"))
        let vocab = ref["vocab_size"]!.intValue!
        let rows = try Data(contentsOf: URL(fileURLWithPath: TestFiles.fixture("reference/tiny-gpt2-parity.logits.f32")))
        let refRows = rows.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let source = try openWeightSource(path: Self.fixture)
        let model = try source.makeModel()
        let tokenizer = try EvaluationSetup.tokenizer(for: source, override: nil)
        let tokens = try EvaluationSetup.tokens(ofTextFile: Self.text, tokenizer: tokenizer, threads: 2)
        XCTAssertEqual(tokens.count, ref["text_tokens"]!.intValue!)
        let window = Array(tokens.prefix(ref["ctx"]!.intValue!))
        XCTAssertEqual(window.map(Int.init), ref["first_window_ids"]!.arrayValue!.map { $0.intValue! })

        let l = logits(model, window, context: ComputeContext(threads: 2))
        var worst = 0.0
        for (i, position) in ref["logit_positions"]!.arrayValue!.enumerated() {
            let p = position.intValue!
            worst = max(worst, relativeError(l[(p * vocab)..<((p + 1) * vocab)], Array(refRows[(i * vocab)..<((i + 1) * vocab)])))
        }
        XCTAssertLessThan(worst, 1e-4, "max relative error over the kept positions")

        let settings = PerplexityProtocol(contextLength: ref["ctx"]!.intValue!, stride: ref["stride"]!.intValue!)
        let result = try PerplexityEvaluator(model: model, context: ComputeContext(threads: 2), protocolSettings: settings)
            .evaluate(Array(tokens.prefix(ref["evaluated_tokens"]!.intValue!)))
        XCTAssertEqual(result.scoredTokens, ref["scored_tokens"]!.intValue!)
        XCTAssertEqual(result.perplexity, ref["ppl"]!.doubleValue!, accuracy: ref["ppl"]!.doubleValue! * 1e-4)
    }

    /// Perplexities that scripts/make_fixtures.py measured with transformers, to 0.01%.
    func testFixturePerplexitiesMatchTransformers() throws {
        let wiki = try json(Self.fixture + "/reference.json")["wikitext_test_hfjoin"]!
        let source = try openWeightSource(path: Self.fixture)
        let model = try source.makeModel()
        let tokens = try EvaluationSetup.tokens(ofTextFile: Self.text, tokenizer: EvaluationSetup.tokenizer(for: source, override: nil), threads: 2)
        XCTAssertEqual(tokens.count, wiki["tokens"]!.intValue!)
        XCTAssertEqual(tokens.prefix(64).map(Int.init), wiki["first_ids"]!.arrayValue!.map { $0.intValue! })
        for run in wiki["perplexity"]!.arrayValue! where run["first_tokens"]!.intValue! <= 4096 {
            let settings = PerplexityProtocol(contextLength: run["window"]!.intValue!, stride: run["stride"]!.intValue!)
            let r = try PerplexityEvaluator(model: model, context: ComputeContext(threads: 2), protocolSettings: settings)
                .evaluate(Array(tokens.prefix(run["first_tokens"]!.intValue!)))
            XCTAssertEqual(r.scoredTokens, run["scored_tokens"]!.intValue!)
            let want = run["ppl"]!.doubleValue!
            XCTAssertEqual(r.perplexity, want, accuracy: want * 1e-4, "stride \(settings.stride)")
        }
    }

    /// Every checkpoint layout: with and without `transformer.`, tied or separate lm_head,
    /// mask buffers, F16, BF16, sharded.
    func testEveryCheckpointLayoutLoadsAndMatchesTransformers() throws {
        let root = TestFiles.fixture("gpt2-variants")
        let variants = try FileManager.default.contentsOfDirectory(atPath: root).filter { !$0.contains(".") }.sorted()
        XCTAssertEqual(variants, ["bf16", "f16", "hf-save-pretrained", "hub-style", "lm-head-untied", "sharded"])
        for variant in variants {
            let folder = root + "/" + variant
            let reference = try json(folder + "/reference.json")
            let ids = reference["input_ids"]!.arrayValue!.map { Int32($0.intValue!) }
            let model = try (openWeightSource(path: folder)).makeModel()
            let v = model.config.vocabSize
            let l = logits(model, ids, context: ComputeContext(threads: 2))
            let first = reference["logits_position0"]!.arrayValue!.map { Float($0.doubleValue!) }
            let last = reference["logits_last"]!.arrayValue!.map { Float($0.doubleValue!) }
            // F16/BF16 checkpoints are widened exactly, so the same bound holds.
            XCTAssertLessThan(relativeError(l[0..<v], first), 1e-4, variant)
            XCTAssertLessThan(relativeError(l[((ids.count - 1) * v)...], last), 1e-4, variant)
        }
    }

    func testConfigMissingIsInferredFromShapes() throws {
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: TestFiles.fixture("gpt2-variants/hub-style/model.safetensors"), toPath: dir + "/model.safetensors")
        let model = try (openWeightSource(path: dir)).makeModel()
        // 32-wide embeddings are not a multiple of 64: one head is inferred, which is all
        // shapes can say; config.json is needed for the real head count.
        XCTAssertEqual(model.config.embeddingSize, 32)
        XCTAssertEqual(model.config.layerCount, 2)
        XCTAssertEqual(model.config.contextLength, 64)
        XCTAssertEqual(model.config.vocabSize, 300)
    }
}
