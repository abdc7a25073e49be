import EasyQuant
import Foundation
import XCTest

/// The built tools given hostile files, as a user would run them: exit status 1, one line on
/// stderr naming the file, nothing on stdout, and nothing left behind (no temporary file).
final class HostileCLITests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws { dir = try TestFiles.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// An .eqm file whose embedded vocab.json declares 2^34 bytes (it used to abort all three
    /// tools in the allocator, and eqconvert left its temporary output behind).
    func tokenizerBomb() throws -> String {
        var b = EQMBuilder()
        let i = b.add(frame: lyingZstdFrame(contentSize: 1 << 34), size: 1 << 34)
        let config = try JSONValue.parse(InputFiles.read(TestFiles.fixture("golden/source/config.json"), what: "config"))
        let header = JSONValue.makeObject([
            ("alignment", 64),
            ("metadata", .makeObject([("model", .makeObject([("architecture", "gpt2"), ("config", config)])),
                                      ("tokenizer", .makeObject([("files", .makeObject([("vocab.json", b.blob(i))]))]))])),
            ("tensors", []),
        ])
        let path = dir + "/bomb.eqm"
        try Data(b.bytes(header: header)).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Runs `tool` and checks the failure contract; returns stderr's line.
    @discardableResult
    func refuses(_ tool: String, _ arguments: [String], naming name: String,
                 file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        let r = try CLIFixtures.run(tool, arguments, in: dir)
        XCTAssertEqual(r.status, 1, "\(tool) \(arguments): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", "\(tool) prints nothing on stdout when it fails", file: file, line: line)
        let text = r.stderr.hasSuffix("\n") ? String(r.stderr.dropLast()) : r.stderr
        XCTAssertFalse(text.isEmpty || text.contains("\n"), "\(tool): one line on stderr: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(text.contains(name), "\(tool): the message names \(name): \(text)", file: file, line: line)
        let after = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        XCTAssertEqual(after.subtracting(before), [], "\(tool) left files behind", file: file, line: line)
        return text
    }

    func testEveryToolRefusesTheTokenizerBomb() throws {
        let bomb = try tokenizerBomb()
        let text = dir + "/text.txt"
        try "Hello world, hello again.\n".write(toFile: text, atomically: true, encoding: .utf8)
        let message = try refuses("eqinspect", [bomb], naming: bomb)
        XCTAssertTrue(message.contains("tokenizer file vocab.json: declares 17179869184 bytes, more than the 64 MiB"), message)
        try refuses("eqppl", [bomb, text], naming: bomb)
        try refuses("eqconvert", [bomb, dir + "/out.safetensors"], naming: bomb)
    }

    func testEveryToolRefusesAFIFOWithoutBlocking() throws {
        let fifo = dir + "/pipe"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let text = dir + "/text.txt"
        try "Hello.\n".write(toFile: text, atomically: true, encoding: .utf8)
        try refuses("eqinspect", [fifo], naming: fifo)
        try refuses("eqppl", [fifo, text], naming: fifo)
        try refuses("eqppl", [TestFiles.fixture("tiny-gpt2"), fifo], naming: fifo)
        try refuses("eqconvert", [fifo, dir + "/out.eqm"], naming: fifo)
    }

    /// An .eqm file given where the original is wanted (eqinspect --compare) is named as such.
    func testToolsNameTheFormatTheyWereGiven() throws {
        let eqm = TestFiles.fixture("golden/golden-v1.0.eqm")
        let message = try refuses("eqinspect", [eqm, "--compare", eqm], naming: eqm)
        XCTAssertTrue(message.contains("this is an .eqm file, not safetensors"), message)
    }
}
