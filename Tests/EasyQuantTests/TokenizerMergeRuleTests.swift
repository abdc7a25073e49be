import EasyQuant
import XCTest

/// The BPE rule on tiny hand-written vocabularies: lowest rank first, leftmost on ties, and a
/// token in the vocabulary is produced only if the merges lead to it.
final class TokenizerMergeRuleTests: XCTestCase {
    // Ids: 0…255 are the bytes in byte order ("a" = 97), extra tokens from 256 on.
    let a: Int32 = 97, b: Int32 = 98, c: Int32 = 99

    func testLowestRankMergesFirst() throws {
        let bcFirst = try SyntheticTokenizer.make(extra: ["bc", "ab"], merges: ["b c", "a b"])
        XCTAssertEqual(bcFirst.encode("abc"), [a, 256])
        let abFirst = try SyntheticTokenizer.make(extra: ["ab", "bc"], merges: ["a b", "b c"])
        XCTAssertEqual(abFirst.encode("abc"), [256, c])
    }

    func testRepeatedPairMergesLeftmostFirst() throws {
        let t = try SyntheticTokenizer.make(extra: ["aa"], merges: ["a a"])
        XCTAssertEqual(t.encode("aaa"), [256, a])
        XCTAssertEqual(t.encode("aaaa"), [256, 256])
        XCTAssertEqual(t.encode("aaaaa"), [256, 256, a])
        // More than 64 bytes takes the heap-based path; the rule is the same.
        XCTAssertEqual(t.encode(String(repeating: "a", count: 101)), [Int32](repeating: 256, count: 50) + [a])
        let t2 = try SyntheticTokenizer.make(extra: ["aa", "aaaa"], merges: ["a a", "aa aa"])
        XCTAssertEqual(t2.encode(String(repeating: "a", count: 7)), [257, 256, a])
        XCTAssertEqual(t2.encode(String(repeating: "a", count: 103)), [Int32](repeating: 257, count: 25) + [256, a])
    }

    func testVocabularyTokenIsProducedOnlyThroughMerges() throws {
        // "abc" is a token (made by "a bc"), but "a b" ranks first, so "abc" becomes ab + c.
        let t = try SyntheticTokenizer.make(extra: ["ab", "bc", "abc"], merges: ["a b", "b c", "a bc"])
        XCTAssertEqual(t.encode("abc"), [256, c])
        XCTAssertEqual(t.encode("bc"), [257])
        XCTAssertEqual(t.encode("xbc"), [120, 257])
        XCTAssertEqual(t.decode([258]), Array("abc".utf8))
    }

    func testPiecesAreMergedSeparately() throws {
        // " a" and "b" are different pieces: no merge crosses the boundary between them.
        let t = try SyntheticTokenizer.make(extra: ["Ġa", "ab", "Ġab"], merges: ["Ġ a", "a b", "Ġa b"])
        XCTAssertEqual(t.encode(" ab"), [258])
        XCTAssertEqual(t.encode(" a b"), [256, 32, b])
        XCTAssertEqual(t.encode("ab"), [257])
    }

    func testLastDuplicateMergeRankWins() throws {
        // GPT-2's encoder.py builds its rank table with dict(zip(merges, range(...))): a pair
        // listed twice keeps its later rank, which here puts "a b" after "b c".
        let t = try SyntheticTokenizer.make(extra: ["ab", "bc"], merges: ["a b", "b c", "a b"])
        XCTAssertEqual(t.encode("abc"), [a, 257])
    }

    func testMergesWithWindowsLineEndingsAndNoVersionLine() throws {
        let merges = Array("a b\r\nb c\r\n".utf8)
        let t = try BPETokenizer(vocabJSON: SyntheticTokenizer.vocabJSON(extra: ["ab", "bc"]), merges: merges)
        XCTAssertEqual(t.encode("abc"), [256, c])
        XCTAssertEqual(t.vocabularySize, 258)
        XCTAssertNil(t.endOfTextID)
    }
}
