import EasyQuant
import Foundation
import XCTest

/// Bounded work on any input: `maxTokens` returns exactly the prefix of the full result and
/// stops early; hostile texts (tens of megabytes in one piece, or of distinct junk words) are
/// encoded with a fixed amount of scratch memory and merge work linear in the text, both
/// counted by the tokenizer (`EncodingStatistics`), not timed.
final class TokenizerBoundsTests: XCTestCase {
    let gpt2 = TokenizerFixtures.gpt2

    func testMaxTokensGivesExactlyThePrefix() throws {
        var rng = SeededGenerator(seed: 5)
        for name in ["gpt-2", "llama-bpe"] {
            let tokenizer = try VocabFixtures.tokenizer(name)
            for _ in 0..<200 {
                let s = TokenizerRoundTripTests.randomString(&rng, maxScalars: 30) + "<|endoftext|>x"
                let full = tokenizer.encode(s, allowSpecialTokens: true)
                for k in Set([0, 1, 2, 3, full.count / 2, full.count - 1, full.count, full.count + 3]) where k >= 0 {
                    XCTAssertEqual(tokenizer.encode(s, allowSpecialTokens: true, maxTokens: k), Array(full.prefix(k)), "\(name) k=\(k)")
                }
            }
        }
    }

    /// On a large text, on one thread and in parallel waves, `maxTokens` stops the work after
    /// the part that reaches it.
    func testMaxTokensStopsEarlyOnLargeText() throws {
        let bytes = try TokenizerFixtures.bytes(TokenizerFixtures.wikitextDirectory + "/wiki.test.raw")
        let full = try gpt2.encode(utf8: bytes, threads: 1)
        for threads in [1, 2] {
            let (ids, statistics) = try bytes.withUnsafeBytes { try gpt2.encodeMeasured(utf8: $0, maxTokens: 1000, threads: threads) }
            XCTAssertEqual(ids, Array(full.prefix(1000)), "threads: \(threads)")
            // One thread stops at the piece that reaches 1000 ids; a wave encodes at most
            // 2 × threads parts of (here) a quarter of the file, each stopping at 1000 ids.
            XCTAssertLessThan(statistics.bytesEncoded, threads == 1 ? 10_000 : 30_000, "threads: \(threads)")
        }
    }

    /// A piece longer than `longestExactPiece` is merged in parts of that many bytes: 3 × L
    /// spaces at the end of a text are one GPT-2 piece, encoded as three runs of L spaces.
    func testLongPieceIsCutIntoParts() throws {
        let l = BPETokenizer.longestExactPiece
        XCTAssertEqual(l, 65536)
        let part = gpt2.encode(String(repeating: " ", count: l))
        let (ids, statistics) = try Array(repeating: UInt8(0x20), count: 3 * l).withUnsafeBytes { try gpt2.encodeMeasured(utf8: $0) }
        XCTAssertEqual(ids, part + part + part)
        XCTAssertEqual(statistics.piecesCut, 1)
        XCTAssertEqual(statistics.longestPiece, 3 * l)
        // A part never ends inside a character: 2-byte scalars, the cut backs off one byte.
        let e = String(repeating: "é", count: l)
        let cut = gpt2.encode(e)
        XCTAssertEqual(gpt2.decode(cut), Array(e.utf8))
        XCTAssertEqual(cut, gpt2.encode(String(repeating: "é", count: l / 2)) + gpt2.encode(String(repeating: "é", count: l / 2)))
    }

    /// Hostile texts of several megabytes: one huge piece of spaces, of one letter, of random
    /// letters, of digits; and millions of distinct junk words. Scratch memory stays under a
    /// fixed 12 MiB per thread (well under 8 bytes per input byte), merge work under 64 steps
    /// per byte.
    func testHostileTextsStayWithinCountedBounds() throws {
        var rng = SeededGenerator(seed: 11)
        let letters = Array("abcdefghijklmnopqrstuvwxyz".utf8)
        var randomLetters = [UInt8](repeating: 0, count: 4 << 20)
        for i in randomLetters.indices { randomLetters[i] = letters.randomElement(using: &rng)! }
        var junkWords: [UInt8] = []
        junkWords.reserveCapacity(8 << 20)
        while junkWords.count < 8 << 20 {
            junkWords.append(0x20)
            for _ in 0..<Int.random(in: 2...6, using: &rng) { junkWords.append(letters.randomElement(using: &rng)!) }
        }
        let texts: [(String, [UInt8])] = [
            ("spaces", [UInt8](repeating: 0x20, count: 24 << 20)),
            ("one letter", [UInt8](repeating: 0x61, count: 8 << 20)),
            ("random letters", randomLetters),
            ("digits", [UInt8](repeating: 0x37, count: 8 << 20)),
            ("junk words", junkWords),
        ]
        for name in ["gpt-2", "llama-bpe"] {
            let tokenizer = try VocabFixtures.tokenizer(name)
            for (what, text) in texts {
                for threads in [1, 2] {
                    let (ids, statistics) = try text.withUnsafeBytes { try tokenizer.encodeMeasured(utf8: $0, addBOS: false, threads: threads) }
                    let label = "\(name), \(what), \(threads) threads"
                    XCTAssertEqual(statistics.bytesEncoded, text.count, label)
                    XCTAssertLessThan(statistics.scratchBytes, threads * (12 << 20), label)
                    XCTAssertLessThan(statistics.scratchBytes, 8 * text.count, label)
                    XCTAssertLessThan(statistics.mergeSteps, 64 * text.count, label)
                    XCTAssertLessThanOrEqual(ids.count, text.count, label)
                    if threads == 1 { XCTAssertEqual(tokenizer.decode(ids), text, label) }
                    print("\(label): \(text.count) bytes, \(ids.count) ids, scratch \(statistics.scratchBytes) bytes, \(statistics.mergeSteps) merge steps, \(statistics.piecesCut) pieces cut")
                }
            }
        }
    }

    /// 64 MB of spaces with `maxTokens`: the work stops after the first part of the one piece.
    func testMaxTokensStopsInsideAHugePiece() throws {
        let text = [UInt8](repeating: 0x20, count: 64 << 20)
        let (ids, statistics) = try text.withUnsafeBytes { try gpt2.encodeMeasured(utf8: $0, maxTokens: 10) }
        XCTAssertEqual(ids.count, 10)
        XCTAssertEqual(statistics.bytesEncoded, BPETokenizer.longestExactPiece)
        XCTAssertLessThan(statistics.mergeSteps, 64 * BPETokenizer.longestExactPiece)
        XCTAssertEqual(ids, Array(gpt2.encode(String(repeating: " ", count: BPETokenizer.longestExactPiece)).prefix(10)))
    }
}
