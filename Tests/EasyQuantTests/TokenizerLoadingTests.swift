import EasyQuant
import Foundation
import XCTest

/// The three ways a tokenizer is stored, and the errors for files that are missing or wrong.
final class TokenizerLoadingTests: XCTestCase {
    let sample = "Hello world, it's 2026!\n\n  Café ☕ 日本 <|endoftext|> don't"

    func fixture(_ name: String) throws -> [UInt8] {
        try TokenizerFixtures.bytes(TokenizerFixtures.tokenizerDirectory + "/" + name)
    }

    func testInMemoryBytesEqualDirectoryLoad() throws {
        let t = try BPETokenizer(vocabJSON: fixture("vocab.json"), merges: fixture("merges.txt"))
        XCTAssertEqual(t.encode(sample), TokenizerFixtures.gpt2.encode(sample))
        XCTAssertEqual(t.vocabularySize, 50257)
        XCTAssertEqual(t.endOfTextID, 50256)
    }

    func testOpenAINamesEncoderJSONAndVocabBPE() throws {
        let dir = try TemporaryDirectory()
        try dir.write("encoder.json", fixture("vocab.json"))
        try dir.write("vocab.bpe", fixture("merges.txt"))
        let t = try BPETokenizer.load(directory: dir.path)
        XCTAssertEqual(t.encode(sample), TokenizerFixtures.gpt2.encode(sample))
    }

    /// A Hugging Face tokenizer.json built from the fixture files, with merges in both forms.
    func tokenizerJSON(mergesAsArrays: Bool) throws -> [UInt8] {
        let vocab = try fixture("vocab.json")
        let lines = String(decoding: try fixture("merges.txt"), as: UTF8.self)
            .split(separator: "\n").filter { !$0.hasPrefix("#version") }
        let merges: [JSONValue] = lines.map { line in
            if mergesAsArrays {
                let sides = line.split(separator: " ").map { JSONValue(String($0)) }
                return .array(sides)
            }
            return JSONValue(String(line))
        }
        let head = #"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[{"id":50256,"content":"<|endoftext|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":true}],"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},"post_processor":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":"","end_of_word_suffix":"","fuse_unk":false,"byte_fallback":false,"ignore_merges":false,"vocab":"#
        return Array(head.utf8) + vocab + Array(#","merges":"#.utf8) + Array(JSONValue.array(merges).serialized().utf8) + Array("}}".utf8)
    }

    func testTokenizerJSONWithStringAndArrayMerges() throws {
        let wiki = try TokenizerFixtures.bytes(TokenizerFixtures.wikitextDirectory + "/wiki.test.hfjoin.txt")
        let expected = try TokenizerFixtures.gpt2.encode(utf8: wiki)
        for arrays in [false, true] {
            let bytes = try tokenizerJSON(mergesAsArrays: arrays)
            let t = try BPETokenizer(tokenizerJSON: bytes)
            XCTAssertEqual(t.vocabularySize, 50257)
            XCTAssertEqual(t.endOfTextID, 50256)
            XCTAssertEqual(t.encode(sample), TokenizerFixtures.gpt2.encode(sample), "arrays: \(arrays)")
            XCTAssertEqual(try t.encode(utf8: wiki), expected, "arrays: \(arrays)")
        }
        let dir = try TemporaryDirectory()
        try dir.write("tokenizer.json", try tokenizerJSON(mergesAsArrays: true))
        XCTAssertEqual(try BPETokenizer.load(directory: dir.path).encode(sample), TokenizerFixtures.gpt2.encode(sample))
    }

    func testTokenizerJSONAddedSpecialTokenOutsideModelVocab() throws {
        let vocab = String(decoding: SyntheticTokenizer.vocabJSON(extra: ["ab"]), as: UTF8.self)
        let json = SyntheticTokenizer.gpt2PreTokenizer + #""added_tokens":[{"id":300,"content":"<|im_end|>","special":true}],"model":{"type":"BPE","vocab":"#
            + vocab + #","merges":[["a","b"]]}}"#
        let t = try BPETokenizer(tokenizerJSON: Array(json.utf8))
        XCTAssertEqual(t.vocabularySize, 301)
        XCTAssertEqual(t.specialTokenIDs, ["<|im_end|>": 300])
        XCTAssertNil(t.endOfTextID)
        XCTAssertEqual(t.encode("ab<|im_end|>", allowSpecialTokens: true), [256, 300])
        XCTAssertEqual(t.decode([256, 300]), Array("ab".utf8))  // control tokens decode to nothing by default
        XCTAssertEqual(t.decode([256, 300], includeSpecialTokens: true), Array("ab<|im_end|>".utf8))
        XCTAssertEqual(t.tokenType(300), .control)
        XCTAssertEqual(t.tokenType(256), .normal)
        XCTAssertEqual(t.decode([299]), [0xEF, 0xBF, 0xBD])  // an id nobody has
    }

    func testLongestSpecialTokenWinsAtOnePlace() throws {
        let vocab = String(decoding: SyntheticTokenizer.vocabJSON(extra: []), as: UTF8.self)
        let json = SyntheticTokenizer.gpt2PreTokenizer + #""added_tokens":[{"id":256,"content":"<a>","special":true},{"id":257,"content":"<a>>","special":true}],"#
            + #""model":{"type":"BPE","vocab":"# + vocab + #","merges":[]}}"#
        let t = try BPETokenizer(tokenizerJSON: Array(json.utf8))
        XCTAssertEqual(t.encode("z<a>><a>", allowSpecialTokens: true), [122, 257, 256])
        // Ids 0…255 are the bytes themselves here, and there are no merges.
        XCTAssertEqual(t.encode("<a", allowSpecialTokens: true), [60, 97])
        XCTAssertEqual(t.encode("z<a>>"), [122, 60, 97, 62, 62])
    }

    // MARK: Errors

    func testEmptyFolderNamesWhatItLookedFor() throws {
        let dir = try TemporaryDirectory()
        XCTAssertThrowsError(try BPETokenizer.load(directory: dir.path)) { error in
            XCTAssertEqual(error as? TokenizerError,
                           .filesNotFound(directory: dir.path, lookedFor: ["tokenizer.json", "vocab.json + merges.txt", "encoder.json + vocab.bpe"]))
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(dir.path + ": no tokenizer found"), text)
            XCTAssertTrue(text.contains("tokenizer.json, vocab.json + merges.txt, encoder.json + vocab.bpe"), text)
            XCTAssertTrue(text.contains("copy the model's tokenizer.json (or GPT-2's vocab.json and merges.txt)"), text)
            XCTAssertFalse(text.contains("\n"))
        }
    }

    func testMissingFolderAndMissingPartner() throws {
        XCTAssertThrowsError(try BPETokenizer.load(directory: "/nonexistent/tokenizer")) { error in
            XCTAssertEqual(error as? TokenizerError, .cannotRead(path: "/nonexistent/tokenizer", reason: "no such folder"))
        }
        let dir = try TemporaryDirectory()
        try dir.write("vocab.json", fixture("vocab.json"))
        XCTAssertThrowsError(try BPETokenizer.load(directory: dir.path)) { error in
            XCTAssertEqual(error as? TokenizerError, .partnerMissing(directory: dir.path, found: "vocab.json", missing: "merges.txt"))
            XCTAssertEqual("\(error)", "\(dir.path): found vocab.json but not merges.txt; the two files go together, add merges.txt next to it")
        }
    }

    func testBadJSONNamesFileAndByteOffset() throws {
        let dir = try TemporaryDirectory()
        try dir.write("vocab.json", Array(#"{"a": 0, "b": 1,, }"#.utf8))
        try dir.write("merges.txt", [])
        XCTAssertThrowsError(try BPETokenizer.load(directory: dir.path)) { error in
            guard case let .invalidJSON(file, offset, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, dir.path + "/vocab.json")
            XCTAssertEqual(offset, 16)  // the second comma, where a key should be
            XCTAssertTrue("\(error)".hasPrefix(dir.path + "/vocab.json: invalid JSON at byte 16: expected a string key; "), "\(error)")
        }
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: Array("{\"model\": [}".utf8))) { error in
            guard case let .invalidJSON(file, offset, _)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "tokenizer.json")
            XCTAssertEqual(offset, 11)
        }
    }

    func testMergeWithUnknownTokenNamesLine() throws {
        let vocab = SyntheticTokenizer.vocabJSON(extra: ["ab", "bc"])
        XCTAssertThrowsError(try BPETokenizer(vocabJSON: vocab, merges: SyntheticTokenizer.mergesText(["a b", "b c", "ab q"]))) { error in
            // Line 1 is "#version: 0.2", so the third merge is on line 4.
            XCTAssertEqual(error as? TokenizerError, .invalidMerge(file: "merges.txt", line: 4, reason: "merged token \"abq\" is not in the vocabulary"))
            XCTAssertEqual("\(error)", "merges.txt:4: invalid merge: merged token \"abq\" is not in the vocabulary; use the merges that belong to this vocabulary (same file or same model)")
        }
        XCTAssertThrowsError(try BPETokenizer(vocabJSON: vocab, merges: SyntheticTokenizer.mergesText(["a b", "xyz c"]))) { error in
            XCTAssertEqual(error as? TokenizerError, .invalidMerge(file: "merges.txt", line: 3, reason: "token \"xyz\" is not in the vocabulary"))
        }
        XCTAssertThrowsError(try BPETokenizer(vocabJSON: vocab, merges: SyntheticTokenizer.mergesText(["a b c"]))) { error in
            guard case let .invalidMerge(_, line, reason)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(line, 2)
            XCTAssertTrue(reason.hasPrefix("expected two tokens separated by one space"), reason)
        }
        let json = SyntheticTokenizer.gpt2PreTokenizer + #""model":{"vocab":"# + String(decoding: vocab, as: UTF8.self) + #","merges":["a b",["b","z"]]}}"#
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: Array(json.utf8))) { error in
            XCTAssertEqual(error as? TokenizerError, .invalidMerge(file: "tokenizer.json", line: 2, reason: "merged token \"bz\" is not in the vocabulary"))
        }
    }

    func testVocabularyProblems() throws {
        let merges = SyntheticTokenizer.mergesText([])
        // A byte without a token is left out of the ids, as llama.cpp does (SmolLM2 lacks 21).
        let noNewline = try BPETokenizer(vocabJSON: SyntheticTokenizer.vocabJSON(extra: [], skippingByte: 0x0A), merges: merges)
        XCTAssertEqual(noNewline.missingByteTokens, [0x0A])
        XCTAssertEqual(noNewline.encode("a\nb\n\n"), [97, 98])
        XCTAssertEqual(TokenizerFixtures.gpt2.missingByteTokens, [])
        XCTAssertThrowsError(try BPETokenizer(vocabJSON: Array(#"{"a": 0, "b": 0}"#.utf8), merges: merges)) { error in
            XCTAssertEqual(error as? TokenizerError, .invalidVocabulary(file: "vocab.json", reason: "id 0 is given to both \"a\" and \"b\""))
        }
        XCTAssertThrowsError(try BPETokenizer(vocabJSON: Array(#"{"a": "zero"}"#.utf8), merges: merges)) { error in
            XCTAssertEqual(error as? TokenizerError, .invalidVocabulary(file: "vocab.json", reason: "the id of token \"a\" is not an integer"))
        }
        XCTAssertThrowsError(try BPETokenizer(vocabJSON: Array("[1, 2]".utf8), merges: merges)) { error in
            XCTAssertEqual(error as? TokenizerError, .invalidVocabulary(file: "vocab.json", reason: "the top-level value is not a JSON object of token → id"))
        }
    }

    func testUnsupportedTokenizerJSON() {
        func reason(_ json: String) -> String? {
            do { _ = try BPETokenizer(tokenizerJSON: Array(json.utf8)); return nil } catch let TokenizerError.unsupportedTokenizer(_, reason) {
                return reason
            } catch { return "\(error)" }
        }
        XCTAssertEqual(reason(#"{"model":{"type":"WordPiece","vocab":{}}}"#), #"model.type is "WordPiece", not "BPE""#)
        XCTAssertEqual(reason(#"{"pre_tokenizer":{"type":"Metaspace"},"model":{"type":"BPE","vocab":{},"merges":[]}}"#),
                       "pre_tokenizer Metaspace is not one of the known rule sets (gpt2 (gpt-2), llama-bpe (llama3, llama-v3), qwen2, smollm)")
        XCTAssertEqual(reason(#"{"normalizer":{"type":"Lowercase"},"model":{"type":"BPE","vocab":{},"merges":[]}}"#),
                       "it has a normalizer (Lowercase); only none or NFC is supported")
        XCTAssertEqual(reason(#"{"model":{"type":"BPE","vocab":{},"merges":[]}}"#),
                       "it has no pre_tokenizer; the known rule sets are gpt2 (gpt-2), llama-bpe (llama3, llama-v3), qwen2, smollm")
        XCTAssertEqual(reason(#"{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":true},"model":{"type":"BPE","vocab":{},"merges":[]}}"#),
                       "pre_tokenizer ByteLevel is not one of the known rule sets (gpt2 (gpt-2), llama-bpe (llama3, llama-v3), qwen2, smollm)")
        let split = #"{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\s+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]},"model":{"type":"BPE","vocab":{},"merges":[]}}"#
        XCTAssertEqual(reason(split), #"its Split pattern "\\s+" is not Llama 3's or Qwen2's"#)
        XCTAssertEqual(reason(#"{"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","byte_fallback":true,"vocab":{},"merges":[]}}"#),
                       "model.byte_fallback is true; that is a SentencePiece-style BPE, not byte-level")
        XCTAssertEqual(reason(#"{"vocab":{}}"#), #"it has no "model" object"#)
    }
}
