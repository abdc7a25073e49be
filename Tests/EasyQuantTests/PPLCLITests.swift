import EasyQuant
import Foundation
import XCTest

/// eqppl and eqgen as a user runs them: fields, exit codes, one-line errors.
final class PPLCLITests: XCTestCase {
    static let fixture = TestFiles.fixture("tiny-gpt2")
    static let text = TestFiles.fixture("wikitext-2-raw/wiki.test.hfjoin.txt")
    var dir: String!
    override func setUpWithError() throws { dir = try TestFiles.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testEqpplReportsTheProtocolFieldsForEveryModelForm() throws {
        let eqm = dir + "/m.eqm"
        XCTAssertEqual(try CLIFixtures.run("eqconvert", [Self.fixture, eqm], in: dir).status, 0)
        var ppl: [Double] = []
        for model in [Self.fixture, Self.fixture + "/model.safetensors", eqm] {
            let r = try CLIFixtures.run("eqppl", [model, Self.text, "--max-tokens", "1000", "--stride", "128", "--json"], in: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            let j = try JSONValue.parse(r.stdout)
            // --max-tokens stops tokenizing early, so the text's length is not known.
            XCTAssertEqual(j["text_tokens"], .null)
            XCTAssertEqual(j["evaluated_tokens"]?.intValue, 1000)
            XCTAssertEqual(j["scored_tokens"]?.intValue, 999, "with overlap every token but the first is scored")
            XCTAssertEqual(j["ctx"]?.intValue, 256)
            XCTAssertEqual(j["stride"]?.intValue, 128)
            XCTAssertEqual(j["windows"]?.intValue, 7)
            XCTAssertEqual(j["ppl"]!.doubleValue!, exp(j["nll_mean"]!.doubleValue!), accuracy: 1e-9)
            ppl.append(j["ppl"]!.doubleValue!)
        }
        XCTAssertEqual(ppl[0], ppl[1], "the folder and its weights file are the same model")
        XCTAssertNotEqual(ppl[0], ppl[2])
        XCTAssertEqual(ppl[2] / ppl[0], 1, accuracy: 0.01)

        let text = try CLIFixtures.run("eqppl", [eqm, Self.text, "--max-tokens", "300"], in: dir)
        for field in ["model", "method", "compute", "ctx / stride", "text tokens", "scored tokens", "NLL", "perplexity", "elapsed"] {
            XCTAssertTrue(text.stdout.contains(field), "\(field) missing from:\n\(text.stdout)")
        }
    }

    func testEqpplErrorsAreOneLineAndSayWhatToDo() throws {
        let latin1 = dir + "/latin1.txt"
        try Data([0x63, 0x61, 0x66, 0xE9, 0x20, 0x6F, 0x6B]).write(to: URL(fileURLWithPath: latin1))
        var r = try CLIFixtures.run("eqppl", [Self.fixture, latin1], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("\(latin1): not UTF-8 text (invalid byte sequence at byte 3)"), r.stderr)

        // Weights without a tokenizer anywhere.
        let bare = dir + "/bare"
        try FileManager.default.createDirectory(atPath: bare, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.fixture + "/model.safetensors", toPath: bare + "/model.safetensors")
        try FileManager.default.copyItem(atPath: Self.fixture + "/config.json", toPath: bare + "/config.json")
        r = try CLIFixtures.run("eqppl", [bare, Self.text, "--max-tokens", "100"], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("no tokenizer") && r.stderr.contains("--tokenizer DIR"), r.stderr)
        r = try CLIFixtures.run("eqppl", [bare, Self.text, "--max-tokens", "100", "--tokenizer", Self.fixture], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)

        // The real GPT-2 tokenizer produces ids the fixture does not have.
        r = try CLIFixtures.run("eqppl", [bare, Self.text, "--tokenizer", TestFiles.fixture("gpt2-tokenizer")], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("use the tokenizer that belongs to this model"), r.stderr)

        r = try CLIFixtures.run("eqppl", [Self.fixture, Self.text, "--kv-bits", "4"], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("no calibrated key ranges for --kv-bits"), r.stderr)
        for e in [r.stderr] { XCTAssertEqual(e.trimmingCharacters(in: .newlines).split(separator: "\n").count, 1, e) }
    }

    func testEqgenStreamsAGreedyContinuation() throws {
        let r = try CLIFixtures.run("eqgen", [Self.fixture, "--prompt", "The history of the", "--generate", "12", "--json"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try JSONValue.parse(r.stdout)
        XCTAssertEqual(j["generated_ids"]?.arrayValue?.count, 12)
        let reference = try JSONValue.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: TestFiles.fixture("reference/tiny-gpt2-generation.json")))))
        let expected = reference["cases"]!.arrayValue![0]["generated_ids"]!.arrayValue!.prefix(12).map { $0.intValue! }
        XCTAssertEqual(j["generated_ids"]!.arrayValue!.map { $0.intValue! }, Array(expected))
        let streamed = try CLIFixtures.run("eqgen", [Self.fixture, "--prompt", "The history of the", "--generate", "12"], in: dir)
        XCTAssertTrue(streamed.stdout.hasPrefix("The history of the" + j["text"]!.stringValue!), streamed.stdout)
        XCTAssertTrue(streamed.stderr.contains("tokens/s"))
    }
}
