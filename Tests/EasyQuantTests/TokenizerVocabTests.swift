import EasyQuant
import Foundation
import XCTest

/// The real vocabularies of GPT-2, Llama 3, Qwen2 and SmolLM2, loaded from GGUF, must give
/// exactly llama.cpp's ids: on llama.cpp's own test strings, on all of WikiText-2 test, on
/// every Unicode scalar in context, and on tricky strings with special tokens and BOS
/// (fixtures/reference/tokenizer-llamacpp.json, made by scripts/tokenizer_llamacpp.py).
final class TokenizerVocabTests: XCTestCase {
    func testVocabularyFacts() throws {
        let gpt2 = try VocabFixtures.tokenizer("gpt-2")
        XCTAssertEqual(gpt2.vocabularySize, 50257)
        XCTAssertEqual(gpt2.preTokenizer, .gpt2)
        XCTAssertEqual(gpt2.bosID, 50256)
        XCTAssertEqual(gpt2.eosID, 50256)
        XCTAssertFalse(gpt2.addsBOS)
        XCTAssertFalse(gpt2.ignoresMerges)
        XCTAssertEqual(gpt2.specialTokenIDs, ["<|endoftext|>": 50256])

        let llama = try VocabFixtures.tokenizer("llama-bpe")
        XCTAssertEqual(llama.vocabularySize, 128256)
        XCTAssertEqual(llama.preTokenizer, .llamaBPE)
        XCTAssertEqual(llama.bosID, 128000)
        XCTAssertEqual(llama.eosID, 128001)
        XCTAssertTrue(llama.addsBOS)  // no add_bos_token key: llama.cpp's default for llama-bpe
        XCTAssertFalse(llama.addsEOS)
        XCTAssertTrue(llama.ignoresMerges)
        XCTAssertEqual(llama.tokenType(128009), .control)
        XCTAssertEqual(llama.specialTokenIDs.count, 256)
        XCTAssertEqual(llama.specialTokenIDs["<|eot_id|>"], 128009)

        let qwen = try VocabFixtures.tokenizer("qwen2")
        XCTAssertEqual(qwen.vocabularySize, 151936)
        XCTAssertEqual(qwen.preTokenizer, .qwen2)
        XCTAssertFalse(qwen.addsBOS)
        XCTAssertEqual(qwen.tokenType(151643), .control)
        XCTAssertEqual(qwen.tokenType(151646), .userDefined)
        XCTAssertEqual(qwen.tokenType(1000), .normal)
        XCTAssertNil(qwen.tokenType(151936))
        XCTAssertEqual(qwen.specialTokenIDs.count, 3 + 290)

        let smol = try VocabFixtures.tokenizer("smollm2")
        XCTAssertEqual(smol.vocabularySize, 49152)
        XCTAssertEqual(smol.preTokenizer, .smollm)
        XCTAssertEqual(smol.bosID, 1)
        XCTAssertEqual(smol.eosID, 2)
        XCTAssertFalse(smol.addsBOS)  // tokenizer.ggml.add_bos_token = false
        XCTAssertEqual(smol.endOfTextID, 0)
        XCTAssertEqual(smol.specialTokenIDs.count, 17)
    }

    /// llama.cpp's `.inp` / `.out` test cases (for SmolLM2, the same strings with llama.cpp's
    /// ids), exactly, and each decodes back to its text.
    func testLlamaCppTestCases() throws {
        for name in VocabFixtures.names {
            let tokenizer = try VocabFixtures.tokenizer(name)
            let cases = try VocabFixtures.cases(name)
            XCTAssertEqual(cases.count, 46, name)
            for (text, expected) in cases {
                let ids = try tokenizer.encode(utf8: text, addBOS: false)
                XCTAssertEqual(ids, expected, "\(name): \(String(decoding: text, as: UTF8.self).debugDescription)")
                XCTAssertEqual(tokenizer.decode(ids), text, name)
            }
        }
    }

    /// All of WikiText-2 test, on one thread and on several, equals llama.cpp's id sequence;
    /// no piece is long enough to be cut.
    func testWikiTextEqualsLlamaCpp() throws {
        let bytes = try TokenizerFixtures.bytes(TokenizerFixtures.wikitextDirectory + "/wiki.test.raw")
        let wikitext = try XCTUnwrap(VocabFixtures.reference["wikitext"])
        XCTAssertEqual(bytes.withUnsafeBytes { SHA256Hasher.hex(of: $0) }, wikitext["sha256"]?.stringValue, "wiki.test.raw changed")
        for name in VocabFixtures.names {
            let tokenizer = try VocabFixtures.tokenizer(name)
            let reference = try XCTUnwrap(wikitext["vocabs"]?[name]?["llama_cpp"], name)
            let (ids, statistics) = try bytes.withUnsafeBytes { try tokenizer.encodeMeasured(utf8: $0, addBOS: false, threads: 1) }
            XCTAssertEqual(ids.count, reference["tokens"]?.intValue, name)
            XCTAssertEqual(ids.prefix(16).map(Int.init), reference["first16"]?.arrayValue?.compactMap(\.intValue), name)
            XCTAssertEqual(TokenizerFixtures.digest(ids), reference["ids_uint32le_sha256"]?.stringValue, "\(name): id sequence differs")
            XCTAssertEqual(statistics.piecesCut, 0, name)
            XCTAssertEqual(statistics.bytesEncoded, bytes.count, name)
            XCTAssertLessThan(statistics.longestPiece, 1000, name)
            for threads in [2, 3] {
                XCTAssertEqual(try tokenizer.encode(utf8: bytes, addBOS: false, threads: threads), ids, "\(name), \(threads) threads")
            }
            XCTAssertEqual(tokenizer.decode(ids), bytes, name)
        }
    }

    /// transformers' GGUF conversion of SmolLM2 keeps GPT-2's pattern but drops the digit
    /// split; the same vocabulary with this package's `gpt2` rules gives transformers' ids, and
    /// the one place where those differ from llama.cpp's is listed in the reference.
    func testSmolLM2WithoutDigitSplitEqualsTransformers() throws {
        let bytes = try TokenizerFixtures.bytes(TokenizerFixtures.wikitextDirectory + "/wiki.test.raw")
        let smol = try XCTUnwrap(VocabFixtures.reference["wikitext"]?["vocabs"]?["smollm2"])
        var description = try TokenizerDescription(gguf: VocabFixtures.gguf("smollm2"))
        description.preTokenizer = "gpt2"
        let withoutSplit = try BPETokenizer(description: description)
        let ids = try withoutSplit.encode(utf8: bytes)
        XCTAssertEqual(ids.count, smol["transformers"]?["tokens"]?.intValue)
        XCTAssertEqual(TokenizerFixtures.digest(ids), smol["transformers"]?["ids_uint32le_sha256"]?.stringValue)
        let differences = try XCTUnwrap(smol["differences"]?.arrayValue)
        XCTAssertEqual(differences.count, 1)
        let tokenizer = try VocabFixtures.tokenizer("smollm2")
        for d in differences {
            let text = try XCTUnwrap(d["text"]?.stringValue)
            XCTAssertEqual(tokenizer.encode(text).map(Int.init), d["llama_cpp"]?.arrayValue?.compactMap(\.intValue), text)
            XCTAssertEqual(withoutSplit.encode(text).map(Int.init), d["transformers"]?.arrayValue?.compactMap(\.intValue), text)
        }
    }

    /// Every scalar assigned in Unicode 15.1 (llama.cpp's tables) and some assigned in 16.0,
    /// between letters, doubled before a digit and after a space: the scanners' classes agree
    /// with llama.cpp's for every rule set.
    func testEveryScalarInContextEqualsLlamaCpp() throws {
        let reference = try XCTUnwrap(VocabFixtures.reference["all_scalars"])
        XCTAssertEqual(reference["line"]?.stringValue, "a{c}b {c}{c}1 {c}")
        var text: [UInt8] = []
        text.reserveCapacity(6_500_000)
        var count = 0
        for range in try XCTUnwrap(reference["ranges"]?.arrayValue) {
            let pair = try XCTUnwrap(range.arrayValue?.compactMap(\.intValue))
            for v in UInt32(pair[0])...UInt32(pair[1]) {
                let c = Array(String(Unicode.Scalar(v)!).utf8)
                if !text.isEmpty { text.append(0x0A) }
                text.append(0x61); text += c; text.append(0x62); text.append(0x20)
                text += c; text += c; text.append(0x31); text.append(0x20); text += c
                count += 1
            }
        }
        XCTAssertGreaterThan(count, reference["assigned_in_llama_cpp"]?.intValue ?? .max)
        XCTAssertEqual(text.withUnsafeBytes { SHA256Hasher.hex(of: $0) }, reference["sha256"]?.stringValue)
        for name in VocabFixtures.names {
            let tokenizer = try VocabFixtures.tokenizer(name)
            let ids = try tokenizer.encode(utf8: text, addBOS: false, threads: 2)
            XCTAssertEqual(ids.count, reference["vocabs"]?[name]?["tokens"]?.intValue, name)
            XCTAssertEqual(TokenizerFixtures.digest(ids), reference["vocabs"]?[name]?["ids_uint32le_sha256"]?.stringValue, name)
            let missing = Set(tokenizer.missingByteTokens)
            XCTAssertEqual(tokenizer.decode(ids), text.filter { !missing.contains($0) }, name)
        }
    }

    /// Contractions in both cases, digit groups, CR/LF runs, Unicode spaces and numbers, long
    /// runs, and added tokens: as plain text, as special tokens, and after BOS.
    func testTrickyStringsEqualLlamaCpp() throws {
        for name in VocabFixtures.names {
            let tokenizer = try VocabFixtures.tokenizer(name)
            let cases = try XCTUnwrap(VocabFixtures.reference["tricky"]?[name]?.arrayValue)
            XCTAssertGreaterThanOrEqual(cases.count, 25)
            for c in cases {
                let text = try XCTUnwrap(c["text"]?.stringValue)
                let what = "\(name): \(text.debugDescription)"
                func ids(_ key: String) -> [Int32]? { c[key]?.arrayValue?.map { Int32($0.intValue!) } }
                XCTAssertEqual(tokenizer.encode(text, addBOS: false), ids("ids"), what)
                if let special = ids("ids_special") {
                    XCTAssertEqual(tokenizer.encode(text, addBOS: false, allowSpecialTokens: true), special, what)
                    XCTAssertEqual(tokenizer.decode(special, includeSpecialTokens: true), Array(text.utf8), what)
                }
                if let withBOS = ids("ids_bos") {
                    XCTAssertEqual(tokenizer.encode(text), withBOS, what)
                    XCTAssertEqual(tokenizer.decode(withBOS), Array(text.utf8), what)  // BOS decodes to nothing
                }
            }
        }
    }

    /// User-defined tokens (Qwen2's `[PAD…]`) are cut out of any text, special tokens only when
    /// allowed; control tokens decode to nothing by default.
    func testAddedTokenKinds() throws {
        let qwen = try VocabFixtures.tokenizer("qwen2")
        let text = "a[PAD151650]b<|im_end|>"
        let plain = qwen.encode(text)
        XCTAssertTrue(plain.contains(151650))
        XCTAssertFalse(plain.contains(151645))
        let special = qwen.encode(text, allowSpecialTokens: true)
        XCTAssertEqual(special.last, 151645)
        XCTAssertEqual(qwen.decode(special), Array("a[PAD151650]b".utf8))
        XCTAssertEqual(qwen.decode(special, includeSpecialTokens: true), Array(text.utf8))

        let llama = try VocabFixtures.tokenizer("llama-bpe")
        XCTAssertEqual(llama.encode("Hello").first, 128000)
        XCTAssertEqual(llama.encode("Hello", addBOS: false).first, 9906)
        XCTAssertEqual(llama.encode(""), [128000])
        XCTAssertEqual(llama.encode("", addBOS: false), [])
        XCTAssertEqual(llama.decodeText(llama.encode("Hello world")), "Hello world")
    }

    /// The parallel cut rules of every rule set (TextSplitter) on texts dense in the cases
    /// they reason about: the ids never depend on the number of threads.
    func testParallelEncodingNeverChangesIDs() throws {
        let atoms = [" ", "  ", "\n", "\n\n", " \n", "\t", "\r\n", "\u{A0}", "\u{3000}", "'s", "'S", "'", "''", "'re", "'LL",
                     "word", "Word", " x", "x", "1", "12", "1234", "3.5", "½", "!", "?!", ".", ",", ")", "é", "日本", "😀", "-", "--",
                     "\u{301}", "don't", "IT'S", "[PAD151650]", "<|endoftext|>"]
        var rng = SeededGenerator(seed: 4242)
        for name in VocabFixtures.names {
            let tokenizer = try VocabFixtures.tokenizer(name)
            for round in 0..<3 {
                var text = ""
                while text.utf8.count < 60_000 { text += atoms.randomElement(using: &rng)! }
                let one = tokenizer.encode(text, addBOS: false, threads: 1)
                XCTAssertEqual(tokenizer.decode(one), Array(text.utf8), name)
                for threads in [2, 3, 5, 8] {
                    XCTAssertEqual(tokenizer.encode(text, addBOS: false, threads: threads), one, "\(name) round \(round), \(threads) threads")
                }
            }
        }
    }

    /// decode(encode(s)) == s for random strings of every kind of scalar, for each vocabulary.
    func testRandomStringsRoundTrip() throws {
        var rng = SeededGenerator(seed: 77)
        for name in VocabFixtures.names {
            let tokenizer = try VocabFixtures.tokenizer(name)
            let missing = Set(tokenizer.missingByteTokens)
            XCTAssertEqual(missing.count, name == "smollm2" ? 21 : 0, name)
            for i in 0..<1500 {
                let s = TokenizerRoundTripTests.randomString(&rng, maxScalars: 40)
                // Bytes without a token (SmolLM2's 0x04, 0xF1…) are left out, as by llama.cpp.
                let kept = Array(s.utf8).filter { !missing.contains($0) }
                let ids = tokenizer.encode(s, addBOS: false)
                XCTAssertEqual(tokenizer.decode(ids), kept, "\(name) string \(i)")
                XCTAssertEqual(tokenizer.decode(tokenizer.encode(s)), kept, "\(name) string \(i) with BOS")
            }
        }
    }
}
