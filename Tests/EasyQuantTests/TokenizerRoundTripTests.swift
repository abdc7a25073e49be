import EasyQuant
import Foundation
import XCTest

/// decode(encode(s)) == s for arbitrary text, byte input validation, special tokens, and
/// parallel encoding that never changes the ids.
final class TokenizerRoundTripTests: XCTestCase {
    let tokenizer = TokenizerFixtures.gpt2

    /// Scalar ranges to draw from: every kind of character the pre-tokenizer distinguishes, and
    /// the ones that stress UTF-8 (1 to 4 bytes, controls, combining marks, joiners).
    static let scalarRanges: [ClosedRange<UInt32>] = [
        0x00...0x1F, 0x20...0x7E, 0x7F...0xA0, 0xA1...0xFF,    // ASCII, controls, Latin-1
        0x0100...0x024F, 0x0370...0x03FF, 0x0400...0x04FF,     // Latin Extended, Greek, Cyrillic
        0x0300...0x036F, 0x1AB0...0x1AFF, 0x20D0...0x20FF,     // combining marks
        0x0590...0x06FF, 0x0900...0x097F, 0x0E00...0x0E7F,     // Hebrew, Arabic, Devanagari, Thai
        0x2000...0x206F, 0x3000...0x303F, 0x1680...0x1680,     // punctuation and spaces
        0x3040...0x30FF, 0x4E00...0x9FFF, 0xAC00...0xD7A3,     // kana, CJK, Hangul
        0xE000...0xF8FF, 0xFE00...0xFE0F, 0xFFF0...0xFFFF,     // private use, variation selectors, specials
        0x1F300...0x1FAFF, 0x1F1E6...0x1F1FF, 0x200D...0x200D, // emoji, flags, zero-width joiner
        0x1D400...0x1D7FF, 0x10000...0x10FFFF,                 // math letters, anything above the BMP
    ]

    static func randomString(_ rng: inout SeededGenerator, maxScalars: Int) -> String {
        var scalars = String.UnicodeScalarView()
        let n = Int.random(in: 0...maxScalars, using: &rng)
        while scalars.count < n {
            let range = scalarRanges.randomElement(using: &rng)!
            if let s = Unicode.Scalar(UInt32.random(in: range, using: &rng)) { scalars.append(s) }
            // Runs of spaces and repeats matter to the white-space rules: add some.
            if Int.random(in: 0..<8, using: &rng) == 0 { scalars.append(" ") }
        }
        return String(scalars)
    }

    func testRandomStringsRoundTrip() throws {
        var rng = SeededGenerator(seed: 20261129)
        var totalTokens = 0
        for i in 0..<4000 {
            let s = Self.randomString(&rng, maxScalars: 48)
            let ids = tokenizer.encode(s)
            totalTokens += ids.count
            XCTAssertEqual(tokenizer.decode(ids), Array(s.utf8), "string \(i): \(s.unicodeScalars.map { String($0.value, radix: 16) })")
            XCTAssertEqual(try tokenizer.encode(utf8: Array(s.utf8)), ids)
            XCTAssertTrue(ids.allSatisfy { $0 >= 0 && $0 < 50256 }, "string \(i)")
            if i % 500 == 0 { XCTAssertEqual(tokenizer.decodeText(ids), s) }
        }
        XCTAssertGreaterThan(totalTokens, 50_000)
    }

    func testEmptyAndSingleBytes() throws {
        XCTAssertEqual(tokenizer.encode(""), [])
        XCTAssertEqual(try tokenizer.encode(utf8: []), [])
        XCTAssertEqual(tokenizer.decode([]), [])
        for b in UInt8(0)...UInt8(0x7F) {
            let s = String(Unicode.Scalar(b))
            let ids = tokenizer.encode(s)
            XCTAssertEqual(ids.count, 1)
            XCTAssertEqual(tokenizer.decode(ids), [b])
        }
        XCTAssertEqual(tokenizer.encode("\u{0}"), [188])
        XCTAssertEqual(tokenizer.encode(" "), [220])
        XCTAssertEqual(tokenizer.encode("\n"), [198])
    }

    func testInvalidUTF8IsRejectedWithItsOffset() {
        func offset(_ bytes: [UInt8]) -> Int? {
            do { _ = try tokenizer.encode(utf8: bytes); return nil } catch let TokenizerError.invalidUTF8(offset) { return offset } catch { return -1 }
        }
        XCTAssertEqual(offset([0x61, 0x62, 0xC3]), 2)                   // truncated at the end
        XCTAssertEqual(offset([0x61, 0xC3, 0x28]), 1)                   // bad continuation
        XCTAssertEqual(offset([0x80]), 0)                               // lone continuation
        XCTAssertEqual(offset(Array("abcdefghij".utf8) + [0xFF]), 10)   // never valid, after the ASCII fast path
        XCTAssertEqual(offset([0xC0, 0xAF]), 0)                         // overlong "/"
        XCTAssertEqual(offset([0x20, 0xE0, 0x80, 0x80]), 1)             // overlong 3-byte
        XCTAssertEqual(offset([0x20, 0x20, 0xED, 0xA0, 0x80]), 2)       // surrogate U+D800
        XCTAssertEqual(offset([0xF4, 0x90, 0x80, 0x80]), 0)             // above U+10FFFF
        XCTAssertEqual(offset(Array("héllo wörld ".utf8) + [0xF0, 0x9F, 0x98]), 14)
        XCTAssertNil(offset(Array("héllo 😀 \u{10FFFF}".utf8)))
        XCTAssertEqual("\(TokenizerError.invalidUTF8(offset: 14))",
                       "input is not valid UTF-8 at byte 14; convert the text to UTF-8 before encoding it")
    }

    func testRandomBytesValidationAgreesWithSwift() {
        var rng = SeededGenerator(seed: 7)
        let pieces: [[UInt8]] = [[0x61], [0x20], [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80], [0x80], [0xC3],
                                 [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE0, 0x9F, 0xBF], [0xFF], [0x0A]]
        for _ in 0..<3000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...24, using: &rng) {
                bytes += Int.random(in: 0..<4, using: &rng) == 0 ? pieces.randomElement(using: &rng)! : [pieces[Int.random(in: 0..<5, using: &rng)][0]]
            }
            let valid = String(validating: bytes, as: UTF8.self) != nil
            do {
                let ids = try tokenizer.encode(utf8: bytes)
                XCTAssertTrue(valid, "\(bytes)")
                XCTAssertEqual(tokenizer.decode(ids), bytes)
            } catch let TokenizerError.invalidUTF8(offset) {
                XCTAssertFalse(valid, "\(bytes)")
                // Everything before the offset is valid; the sequence at the offset is not.
                XCTAssertNotNil(String(validating: bytes[..<offset], as: UTF8.self), "\(bytes) at \(offset)")
                let rest = Array(bytes[offset...])
                XCTAssertTrue((1...min(4, rest.count)).allSatisfy { String(validating: rest[..<$0], as: UTF8.self) == nil }, "\(bytes) at \(offset)")
            } catch {
                XCTFail("\(error)")
            }
        }
    }

    func testSpecialTokensOnlyWhenAllowed() throws {
        let text = "a<|endoftext|>b <|endoftext|><|endoftext|>"
        let plain = tokenizer.encode(text)
        XCTAssertFalse(plain.contains(50256))
        XCTAssertEqual(plain, [64, 27, 91, 437, 1659, 5239, 91, 29, 65, 1279, 91, 437, 1659, 5239, 91, 6927, 91, 437, 1659, 5239, 91, 29])
        let special = tokenizer.encode(text, allowSpecialTokens: true)
        XCTAssertEqual(special, [64, 50256, 65, 220, 50256, 50256])
        XCTAssertEqual(tokenizer.decode(special, includeSpecialTokens: true), Array(text.utf8))
        XCTAssertEqual(tokenizer.decode(special), Array("ab ".utf8))  // control tokens are left out by default
        XCTAssertEqual(try tokenizer.encode(utf8: Array(text.utf8), allowSpecialTokens: true), special)
        XCTAssertEqual(tokenizer.encode("<|endoftext|", allowSpecialTokens: true), tokenizer.encode("<|endoftext|"))
    }

    func testDecodeOutOfRangeIDsAsReplacementCharacter() {
        XCTAssertEqual(tokenizer.decode([64, -1, 50257, 65]), [0x61, 0xEF, 0xBF, 0xBD, 0xEF, 0xBF, 0xBD, 0x62])
        // A token can hold part of a character: the String form repairs a cut with U+FFFD.
        let ids = tokenizer.encode("😀")
        XCTAssertGreaterThan(ids.count, 1)
        XCTAssertEqual(tokenizer.decodeText(Array(ids.dropLast())), "\u{FFFD}")
        XCTAssertEqual(tokenizer.decodeText(ids), "😀")
    }

    /// Parallel encoding cuts the text at positions proven safe (see TextSplitter); random
    /// texts dense in the white-space and contraction cases must give the same ids on any
    /// number of threads.
    func testParallelEncodingNeverChangesIDs() throws {
        let atoms = [" ", "  ", "\n", "\n\n", " \n", "\t", "\u{A0}", "\u{3000}", "'s", "'", "''", "'re", "word", "Word", " x",
                     "12", "3.5", "!", "?!", "é", "日本", "😀", "-", "--", "\u{301}", "\r\n", "don't", "IT'S", ".", ","]
        var rng = SeededGenerator(seed: 99)
        for round in 0..<6 {
            var text = ""
            while text.utf8.count < 40_000 { text += atoms.randomElement(using: &rng)! }
            let one = tokenizer.encode(text, threads: 1)
            XCTAssertEqual(tokenizer.decode(one), Array(text.utf8))
            for threads in [2, 3, 4, 8, 16] {
                XCTAssertEqual(tokenizer.encode(text, threads: threads), one, "round \(round), threads \(threads)")
            }
        }
    }

    func testConcurrentUseOfOneTokenizer() {
        let texts = (0..<8).map { "Text number \($0): " + String(repeating: "the quick brown fox \($0) jumps ", count: 50 + $0) }
        let expected = texts.map { tokenizer.encode($0, threads: 1) }
        var results = [[Int32]](repeating: [], count: texts.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: texts.count) { i in
            let ids = tokenizer.encode(texts[i], threads: 1)
            lock.lock(); results[i] = ids; lock.unlock()
        }
        XCTAssertEqual(results, expected)
    }
}
