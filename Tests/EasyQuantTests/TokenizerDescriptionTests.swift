import EasyQuant
import Foundation
import XCTest

/// Loading from a `TokenizerDescription`, from GGUF metadata and from a Hugging Face
/// tokenizer.json of each rule set; every hostile input refused with a one-line error.
final class TokenizerDescriptionTests: XCTestCase {
    /// The 256 byte tokens in byte order (ids 0…255), then `extra`.
    func tokens(_ extra: [String]) -> [String] {
        SyntheticTokenizer.byteCharacters.map { String($0) } + extra
    }

    func description(_ extra: [String] = ["ab", "bc"], merges: [String] = ["a b", "b c"], types: [TokenType]? = nil,
                     pre: String = "llama-bpe", bos: Int? = nil, eos: Int? = nil, addBOS: Bool? = false) -> TokenizerDescription {
        TokenizerDescription(tokens: tokens(extra), merges: merges, tokenTypes: types, preTokenizer: pre,
                             bos: bos, eos: eos, addBOS: addBOS, source: "test.gguf")
    }

    func error(_ d: TokenizerDescription) -> TokenizerError? {
        do { _ = try BPETokenizer(description: d); return nil } catch { return error as? TokenizerError }
    }

    /// Llama 3 ignores merges for a piece that is a token: "abc" is one, though its merges
    /// ("a b" first) would give ab + c, as they do under GPT-2's rules.
    func testSmallDescriptionEncodes() throws {
        let t = try BPETokenizer(description: description(["ab", "bc", "abc"], merges: ["a b", "b c", "a bc"]))
        XCTAssertEqual(t.preTokenizer, .llamaBPE)
        XCTAssertTrue(t.ignoresMerges)
        XCTAssertEqual(t.encode("abc"), [258])
        XCTAssertEqual(t.encode("abcabc"), [256, 99, 256, 99])
        let g = try BPETokenizer(description: description(["ab", "bc", "abc"], merges: ["a b", "b c", "a bc"], pre: "gpt2"))
        XCTAssertFalse(g.ignoresMerges)
        XCTAssertEqual(g.encode("abc"), [256, 99])
    }

    /// GGUF lists a pair twice in some hostile file: the first rank counts, as in llama.cpp
    /// (vocab.json + merges.txt keep the last, as GPT-2 and Hugging Face do).
    func testDuplicateMergeKeepsFirstRank() throws {
        let t = try BPETokenizer(description: description(merges: ["a b", "b c", "a b"], pre: "gpt2"))
        XCTAssertEqual(t.encode("abc"), [256, 99])
        let pair = try BPETokenizer(vocabJSON: SyntheticTokenizer.vocabJSON(extra: ["ab", "bc"]), merges: SyntheticTokenizer.mergesText(["a b", "b c", "a b"]))
        XCTAssertEqual(pair.encode("abc"), [97, 257])
    }

    func testAddedTokensFromTypes() throws {
        let types = [TokenType](repeating: .normal, count: 256) + [.normal, .control, .userDefined]
        let t = try BPETokenizer(description: description(["ab", "<s>", "[P]"], merges: ["a b"], types: types, bos: 257, addBOS: true))
        XCTAssertEqual(t.encode("ab[P]<s>"), [257, 256, 258, 60, 115, 62])
        XCTAssertEqual(t.encode("ab[P]<s>", addBOS: false, allowSpecialTokens: true), [256, 258, 257])
        XCTAssertEqual(t.decode([257, 256, 258]), Array("ab[P]".utf8))
    }

    func testHostileDescriptionsAreRefused() {
        XCTAssertEqual(error(description(["ab", "ab"])),
                       .invalidVocabulary(file: "test.gguf", reason: "token \"ab\" is listed twice, as ids 256 and 257"))
        XCTAssertEqual(error(description(["ab", ""])), .invalidVocabulary(file: "test.gguf", reason: "id 257 has an empty token"))
        XCTAssertEqual(error(description(bos: 258)),
                       .invalidVocabulary(file: "test.gguf", reason: "the BOS token id 258 is not in the vocabulary (ids 0..<258)"))
        XCTAssertEqual(error(description(eos: -1)),
                       .invalidVocabulary(file: "test.gguf", reason: "the EOS token id -1 is not in the vocabulary (ids 0..<258)"))
        XCTAssertEqual(error(description(addBOS: true)),
                       .invalidVocabulary(file: "test.gguf", reason: "it asks to add a BOS token but names none"))
        XCTAssertEqual(error(description(merges: ["a b", "a zz"])),
                       .invalidMerge(file: "test.gguf", line: 2, reason: "token \"zz\" is not in the vocabulary"))
        XCTAssertEqual(error(description(merges: ["c a"])),
                       .invalidMerge(file: "test.gguf", line: 1, reason: "merged token \"ca\" is not in the vocabulary"))
        XCTAssertEqual(error(description(merges: ["ab"])),
                       .invalidMerge(file: "test.gguf", line: 1, reason: "expected two tokens separated by one space, found \"ab\""))
        XCTAssertEqual(error(description(types: [.normal])),
                       .invalidVocabulary(file: "test.gguf", reason: "it has 1 token types for 258 tokens"))
        XCTAssertEqual(error(description(pre: "falcon")), .unknownPreTokenizer(source: "test.gguf", name: "falcon"))
        var spm = description()
        spm.model = "llama"
        XCTAssertEqual(error(spm), .unsupportedTokenizer(
            file: "test.gguf", reason: "tokenizer model \"llama\" is SentencePiece, which is not implemented (byte-level BPE, \"gpt2\", is)"))
        XCTAssertEqual(error(description(["ab", String(repeating: "x", count: 70_000)])),
                       .invalidVocabulary(file: "test.gguf", reason: "token 257 is 70000 bytes long, more than 65535"))
        for e in [error(description(["ab", "ab"])), error(spm), error(description(pre: "falcon"))] {
            XCTAssertFalse("\(e!)".contains("\n"))
            XCTAssertTrue("\(e!)".hasPrefix("test.gguf: "), "\(e!)")
        }
    }

    // MARK: GGUF metadata

    func metadata(_ overrides: [(String, GGUFMetadataWriter.Value)] = [], dropping: Set<String> = []) -> [(String, GGUFMetadataWriter.Value)] {
        var pairs: [(String, GGUFMetadataWriter.Value)] = [
            ("general.architecture", .string("llama")),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string("qwen2")),
            ("tokenizer.ggml.tokens", .strings(tokens(["ab", "<|im_end|>"]))),
            ("tokenizer.ggml.token_type", .int32s([Int32](repeating: 1, count: 257) + [3])),
            ("tokenizer.ggml.merges", .strings(["a b"])),
            ("tokenizer.ggml.eos_token_id", .uint32(257)),
        ]
        pairs.removeAll { dropping.contains($0.0) }
        for (key, value) in overrides {
            if let i = pairs.firstIndex(where: { $0.0 == key }) { pairs[i].1 = value } else { pairs.append((key, value)) }
        }
        return pairs
    }

    func ggufError(_ pairs: [(String, GGUFMetadataWriter.Value)]) -> String? {
        do {
            _ = try BPETokenizer(description: TokenizerDescription(gguf: GGUFMetadataWriter.open(pairs)))
            return nil
        } catch { return "\(error)" }
    }

    func testGGUFMetadata() throws {
        let d = try TokenizerDescription(gguf: GGUFMetadataWriter.open(metadata()))
        XCTAssertEqual(d.preTokenizer, "qwen2")
        XCTAssertEqual(d.eos, 257)
        XCTAssertNil(d.bos)
        XCTAssertNil(d.addBOS)
        XCTAssertEqual(d.tokenTypes?.last, .control)
        let t = try BPETokenizer(description: d)
        XCTAssertEqual(t.encode("ab12<|im_end|>", allowSpecialTokens: true), [256, 49, 50, 257])
        let withBOS = try BPETokenizer(description: TokenizerDescription(gguf: GGUFMetadataWriter.open(
            metadata([("tokenizer.ggml.bos_token_id", .uint32(0)), ("tokenizer.ggml.add_bos_token", .bool(true)), ("tokenizer.ggml.add_eos_token", .bool(true))]))))
        XCTAssertEqual(withBOS.encode("ab"), [0, 256, 257])
        XCTAssertEqual(withBOS.encode("ab", addBOS: false, addEOS: false), [256])
    }

    func testHostileGGUFMetadataIsRefused() {
        XCTAssertEqual(ggufError(metadata(dropping: ["tokenizer.ggml.pre"])),
                       "test.gguf: unsupported tokenizer: it has no tokenizer.ggml.pre (llama.cpp would guess a \"default\" rule set); only byte-level BPE tokenizers with the rule sets gpt2 (gpt-2), llama-bpe (llama3, llama-v3), qwen2, smollm are supported")
        XCTAssertEqual(ggufError(metadata(dropping: ["tokenizer.ggml.model"])),
                       "test.gguf: unsupported tokenizer: it has no tokenizer (no tokenizer.ggml.model); only byte-level BPE tokenizers with the rule sets gpt2 (gpt-2), llama-bpe (llama3, llama-v3), qwen2, smollm are supported")
        XCTAssertEqual(ggufError(metadata([("tokenizer.ggml.model", .string("llama"))])),
                       "test.gguf: unsupported tokenizer: tokenizer model \"llama\" is SentencePiece, which is not implemented (byte-level BPE, \"gpt2\", is); only byte-level BPE tokenizers with the rule sets gpt2 (gpt-2), llama-bpe (llama3, llama-v3), qwen2, smollm are supported")
        XCTAssertEqual(ggufError(metadata([("tokenizer.ggml.pre", .string("deepseek-coder"))])),
                       "test.gguf: unknown pre-tokenizer \"deepseek-coder\"; the known ones are gpt2 (gpt-2), llama-bpe (llama3, llama-v3), qwen2, smollm")
        XCTAssertEqual(ggufError(metadata(dropping: ["tokenizer.ggml.merges"])),
                       "test.gguf: not a usable byte-level BPE vocabulary: it has no tokenizer.ggml.merges; use the tokenizer files that belong to the model, unmodified")
        XCTAssertEqual(ggufError(metadata([("tokenizer.ggml.tokens", .uint32(5))])),
                       "test.gguf: not a usable byte-level BPE vocabulary: tokenizer.ggml.tokens is u32 5, not an array of strings; use the tokenizer files that belong to the model, unmodified")
        XCTAssertEqual(ggufError(metadata([("tokenizer.ggml.token_type", .int32s([Int32](repeating: 1, count: 257) + [9]))])),
                       "test.gguf: not a usable byte-level BPE vocabulary: tokenizer.ggml.token_type[257] is 9, not a token type (1 normal … 6 byte); use the tokenizer files that belong to the model, unmodified")
        XCTAssertEqual(ggufError(metadata([("tokenizer.ggml.eos_token_id", .uint32(9999))])),
                       "test.gguf: not a usable byte-level BPE vocabulary: the EOS token id 9999 is not in the vocabulary (ids 0..<258); use the tokenizer files that belong to the model, unmodified")
        XCTAssertEqual(ggufError(metadata([("tokenizer.ggml.eos_token_id", .string("x"))])),
                       "test.gguf: not a usable byte-level BPE vocabulary: tokenizer.ggml.eos_token_id is string \"x\", not an integer; use the tokenizer files that belong to the model, unmodified")
        XCTAssertEqual(ggufError(metadata([("tokenizer.ggml.add_bos_token", .uint32(1))])),
                       "test.gguf: not a usable byte-level BPE vocabulary: tokenizer.ggml.add_bos_token is u32 1, not a bool; use the tokenizer files that belong to the model, unmodified")
        // Strings that are not UTF-8 are refused by the GGUF reader, with the place.
        let invalid = ggufError(metadata([("tokenizer.ggml.tokens", .rawStrings(tokens(["ab"]).map { Array($0.utf8) } + [[0x61, 0xC3, 0x28]]))]))
        XCTAssertTrue(invalid?.hasPrefix("test.gguf: ") == true && invalid?.contains("not valid UTF-8") == true, invalid ?? "nil")
        XCTAssertFalse(invalid?.contains("\n") ?? true)
        XCTAssertEqual(ggufError(metadata([("tokenizer.ggml.merges", .strings(["a b", "ab zz"]))])),
                       "test.gguf:2: invalid merge: token \"zz\" is not in the vocabulary; use the merges that belong to this vocabulary (same file or same model)")
    }

    func testInvalidUTF8InTokenizerJSONIsRefused() {
        let json = Array(SyntheticTokenizer.gpt2PreTokenizer.utf8) + Array(#""model":{"type":"BPE","vocab":{"a"#.utf8) + [0xC3, 0x28]
            + Array(#"":0},"merges":[]}}"#.utf8)
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: json)) { error in
            guard case let .invalidJSON(file, offset, reason)? = error as? TokenizerError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "tokenizer.json")
            XCTAssertEqual(offset, 131)  // the opening quote of the key
            XCTAssertEqual(reason, "string is not valid UTF-8")
        }
    }

    // MARK: tokenizer.json of each rule set

    /// A tokenizer.json for a GGUF vocabulary: normal tokens in model.vocab, the others as
    /// added tokens only (special for control tokens), and the given pre-tokenizer.
    func tokenizerJSON(_ d: TokenizerDescription, preTokenizer: String, ignoreMerges: Bool = false,
                       normalizer: String = "null", postProcessor: String = "null") -> [UInt8] {
        var vocab: [String] = []
        var added: [String] = []
        for (id, text) in d.tokens.enumerated() {
            let type = d.tokenTypes?[id] ?? .normal
            let key = JSONValue.string(text).serialized()
            if type == .normal {
                vocab.append("\(key):\(id)")
            } else {
                added.append(#"{"id":\#(id),"content":\#(key),"single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":\#(type == .control)}"#)
            }
        }
        let merges = d.merges.map { JSONValue.string($0).serialized() }
        let json = #"{"version":"1.0","added_tokens":[\#(added.joined(separator: ","))],"normalizer":\#(normalizer),"pre_tokenizer":\#(preTokenizer),"post_processor":\#(postProcessor),"decoder":{"type":"ByteLevel"},"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,"ignore_merges":\#(ignoreMerges),"vocab":{\#(vocab.joined(separator: ","))},"merges":[\#(merges.joined(separator: ","))]}}"#
        return Array(json.utf8)
    }

    static let byteLevelNoSplit = #"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}"#

    func split(_ pattern: String) -> String {
        #"{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":\#(JSONValue.string(pattern).serialized())},"behavior":"Isolated","invert":false},\#(Self.byteLevelNoSplit)]}"#
    }

    /// Llama 3, Qwen2 and SmolLM2 as Hugging Face writes them give llama.cpp's ids on all of
    /// WikiText-2; BOS comes from the post-processor's template or tokenizer_config.json.
    func testTokenizerJSONOfEachRuleSet() throws {
        let wiki = try TokenizerFixtures.bytes(TokenizerFixtures.wikitextDirectory + "/wiki.test.raw")
        let vocabs = try XCTUnwrap(VocabFixtures.reference["wikitext"]?["vocabs"])
        let llamaPattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let qwenPattern = llamaPattern.replacingOccurrences(of: #"\p{N}{1,3}"#, with: #"\p{N}"#)
        let template = #"{"type":"Sequence","processors":[{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"pair":[],"special_tokens":{"<|begin_of_text|>":{"id":"<|begin_of_text|>","ids":[128000],"tokens":["<|begin_of_text|>"]}}}]}"#
        let cases: [(vocab: String, pre: String, ignoreMerges: Bool, normalizer: String, post: String, rules: PreTokenizerRules)] = [
            ("llama-bpe", split(llamaPattern), true, "null", template, .llamaBPE),
            ("qwen2", split(qwenPattern), false, #"{"type":"NFC"}"#, "null", .qwen2),
            ("smollm2", #"{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]}"#, false, "null", "null", .smollm),
        ]
        for c in cases {
            let d = try TokenizerDescription(gguf: VocabFixtures.gguf(c.vocab))
            let json = tokenizerJSON(d, preTokenizer: c.pre, ignoreMerges: c.ignoreMerges, normalizer: c.normalizer, postProcessor: c.post)
            let t = try BPETokenizer(tokenizerJSON: json)
            XCTAssertEqual(t.preTokenizer, c.rules, c.vocab)
            XCTAssertEqual(t.ignoresMerges, c.ignoreMerges, c.vocab)
            XCTAssertEqual(t.vocabularySize, d.tokens.count, c.vocab)
            let ids = try t.encode(utf8: wiki, addBOS: false)
            XCTAssertEqual(TokenizerFixtures.digest(ids), vocabs[c.vocab]?["llama_cpp"]?["ids_uint32le_sha256"]?.stringValue, c.vocab)
            let reference = try VocabFixtures.tokenizer(c.vocab)
            for (text, _) in try VocabFixtures.cases(c.vocab) {
                XCTAssertEqual(try t.encode(utf8: text, allowSpecialTokens: true), try reference.encode(utf8: text, allowSpecialTokens: true), c.vocab)
            }
            if c.vocab == "llama-bpe" {
                XCTAssertTrue(t.addsBOS)
                XCTAssertEqual(t.encode("Hi").first, 128000)
                let config = Array(#"{"add_bos_token": false, "bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|eot_id|>"}}"#.utf8)
                let noBOS = try BPETokenizer(tokenizerJSON: json, tokenizerConfigJSON: config)
                XCTAssertFalse(noBOS.addsBOS)
                XCTAssertEqual(noBOS.bosID, 128000)
                XCTAssertEqual(noBOS.eosID, 128009)
                XCTAssertEqual(noBOS.encode("Hi"), t.encode("Hi", addBOS: false))
                XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: json, tokenizerConfigJSON: Array(#"{"bos_token": "<nope>"}"#.utf8))) { error in
                    XCTAssertEqual("\(error)", #"tokenizer_config.json: not a usable byte-level BPE vocabulary: bos_token "<nope>" is not a token of tokenizer.json; use the tokenizer files that belong to the model, unmodified"#)
                }
            } else {
                XCTAssertFalse(t.addsBOS, c.vocab)
            }
        }
    }

    /// A folder with tokenizer.json and vocab.json + merges.txt loads tokenizer.json (which
    /// alone can say that SmolLM2 splits digits), with tokenizer_config.json beside it.
    func testDirectoryPrefersTokenizerJSON() throws {
        let d = try TokenizerDescription(gguf: VocabFixtures.gguf("smollm2"))
        let dir = try TemporaryDirectory()
        try dir.write("tokenizer.json", tokenizerJSON(d, preTokenizer: #"{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}]}"#))
        try dir.write("tokenizer_config.json", Array(#"{"add_bos_token": true, "bos_token": "<|im_start|>"}"#.utf8))
        try dir.write("vocab.json", SyntheticTokenizer.vocabJSON(extra: []))
        try dir.write("merges.txt", SyntheticTokenizer.mergesText([]))
        let t = try BPETokenizer.load(directory: dir.path)
        XCTAssertEqual(t.preTokenizer, .smollm)
        XCTAssertTrue(t.addsBOS)
        XCTAssertEqual(t.encode("a 12"), [1] + (try VocabFixtures.tokenizer("smollm2").encode("a 12")))
    }
}
