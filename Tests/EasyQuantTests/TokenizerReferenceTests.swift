import EasyQuant
import Foundation
import XCTest

/// The ids must equal, exactly, those of two independent implementations (tiktoken and Hugging
/// Face tokenizers, which agree): see scripts/tokenizer_reference.py.
final class TokenizerReferenceTests: XCTestCase {
    let tokenizer = TokenizerFixtures.gpt2

    func testVocabularyFacts() {
        XCTAssertEqual(tokenizer.vocabularySize, 50257)
        XCTAssertEqual(tokenizer.endOfTextID, 50256)
        XCTAssertEqual(tokenizer.specialTokenIDs, ["<|endoftext|>": 50256])
        XCTAssertEqual(tokenizer.tokenBytes(198), [0x0A])
        XCTAssertEqual(tokenizer.tokenBytes(220), [0x20])
        XCTAssertEqual(tokenizer.tokenBytes(628), [0x0A, 0x0A])
        XCTAssertEqual(tokenizer.tokenBytes(50256), Array("<|endoftext|>".utf8))
        XCTAssertNil(tokenizer.tokenBytes(50257))
        XCTAssertNil(tokenizer.tokenBytes(-1))
    }

    func testWikiTextHFJoinWholeSequence() throws {
        let ids = try encodeFile("wiki.test.hfjoin.txt", threads: 1)
        XCTAssertEqual(ids.count, 287_644)
        XCTAssertEqual(Array(ids.prefix(12)), [628, 796, 5199, 347, 2852, 353, 796, 220, 628, 628, 198, 5199])
    }

    func testWikiTextRawWholeSequence() throws {
        let ids = try encodeFile("wiki.test.raw", threads: 1)
        XCTAssertEqual(ids.count, 286_221)
    }

    func testWikiTextParallelEqualsSingleThread() throws {
        let bytes = try TokenizerFixtures.bytes(TokenizerFixtures.wikitextDirectory + "/wiki.test.raw")
        let one = try tokenizer.encode(utf8: bytes, threads: 1)
        for threads in [2, 3, 7] {
            XCTAssertEqual(try tokenizer.encode(utf8: bytes, threads: threads), one, "threads: \(threads)")
        }
        XCTAssertEqual(tokenizer.encode(String(decoding: bytes, as: UTF8.self)), one)
    }

    func testWikiTextDecodesBack() throws {
        for name in ["wiki.test.raw", "wiki.test.hfjoin.txt"] {
            let bytes = try TokenizerFixtures.bytes(TokenizerFixtures.wikitextDirectory + "/" + name)
            XCTAssertEqual(tokenizer.decode(try tokenizer.encode(utf8: bytes)), bytes, name)
        }
    }

    func testTrickyStrings() throws {
        let cases = try XCTUnwrap(TokenizerFixtures.reference["tricky"]?.arrayValue)
        XCTAssertGreaterThanOrEqual(cases.count, 25)
        for c in cases {
            let what = c["what"]?.stringValue ?? "?"
            let text = try XCTUnwrap(c["text"]?.stringValue)
            let expected = try XCTUnwrap(c["ids"]?.arrayValue).map { Int32($0.intValue!) }
            XCTAssertEqual(tokenizer.encode(text), expected, what)
            XCTAssertEqual(try tokenizer.encode(utf8: Array(text.utf8)), expected, what)
            XCTAssertEqual(tokenizer.decode(expected), Array(text.utf8), what)
        }
    }

    /// Every scalar assigned in Unicode 14 (the version of the reference's database), in a line
    /// that puts it between letters, doubled before a digit and after a space: the letter /
    /// number / white-space / other classes of the scanner must match the reference engines'
    /// for all of them. (Scalars assigned later are left out: older tables call them unassigned.)
    func testEveryAssignedScalarInContext() throws {
        let reference = try XCTUnwrap(TokenizerFixtures.reference["all_scalars"])
        XCTAssertEqual(reference["line"]?.stringValue, "a{c}b {c}{c}1 {c}")
        let ranges = try XCTUnwrap(reference["ranges"]?.arrayValue).map { r -> ClosedRange<UInt32> in
            let pair = r.arrayValue!.map { UInt32($0.intValue!) }
            return pair[0]...pair[1]
        }
        var text: [UInt8] = []
        text.reserveCapacity(6_000_000)
        var c: [UInt8] = []
        for range in ranges {
            for v in range {
                c.removeAll(keepingCapacity: true)
                UTF8.encode(Unicode.Scalar(v)!) { c.append($0) }
                if !text.isEmpty { text.append(0x0A) }
                text.append(0x61); text += c; text.append(0x62); text.append(0x20)
                text += c; text += c; text.append(0x31); text.append(0x20); text += c
            }
        }
        XCTAssertEqual(ranges.reduce(0) { $0 + $1.count }, 282_230)
        let ids = try tokenizer.encode(utf8: text)
        XCTAssertEqual(ids.count, reference["tokens"]?.intValue)
        XCTAssertEqual(TokenizerFixtures.digest(ids), reference["ids_uint32le_sha256"]?.stringValue)
        XCTAssertEqual(tokenizer.decode(ids), text)
    }

    /// Encodes a WikiText file and checks it against the reference digest.
    private func encodeFile(_ name: String, threads: Int) throws -> [Int32] {
        let bytes = try TokenizerFixtures.bytes(TokenizerFixtures.wikitextDirectory + "/" + name)
        let reference = try XCTUnwrap(TokenizerFixtures.reference["files"]?[name])
        XCTAssertEqual(bytes.withUnsafeBytes { SHA256Hasher.hex(of: $0) }, reference["sha256"]?.stringValue, "fixture \(name) changed")
        let ids = try tokenizer.encode(utf8: bytes, threads: threads)
        XCTAssertEqual(ids.count, reference["tokens"]?.intValue)
        XCTAssertEqual(ids.prefix(16).map(Int.init), reference["first16"]?.arrayValue?.compactMap(\.intValue))
        XCTAssertEqual(TokenizerFixtures.digest(ids), reference["ids_uint32le_sha256"]?.stringValue, "\(name): id sequence differs")
        return ids
    }
}
