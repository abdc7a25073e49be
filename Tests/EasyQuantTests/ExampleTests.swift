import EasyQuant
import Foundation
import XCTest

/// The README's "Use it from Swift" program is Examples/QuickStart/main.swift, verbatim, and it runs.
final class ExampleTests: XCTestCase {
    func testReadmeShowsTheExampleVerbatim() throws {
        let readme = try String(contentsOfFile: TestFiles.root + "/README.md", encoding: .utf8)
        let example = try String(contentsOfFile: TestFiles.root + "/Examples/QuickStart/main.swift", encoding: .utf8)
        XCTAssertTrue(readme.contains("```swift\n" + example + "```"), "README.md must show Examples/QuickStart/main.swift as it is")
        let lines = example.split(separator: "\n").count
        XCTAssertTrue((20...40).contains(lines), "the example stays short: \(lines) lines")
    }

    func testExampleRunsOnTheFixture() throws {
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try CLIFixtures.run("quickstart", [TestFiles.fixture("tiny-gpt2"), dir + "/q.eqm"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("same values from the file: true"), r.stdout)
        XCTAssertTrue(r.stdout.contains("perplexity of the sentence: "), r.stdout)
    }
}
