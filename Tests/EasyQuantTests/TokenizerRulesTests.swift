import EasyQuant
import XCTest

/// The pieces each rule set cuts text into, worked out by hand from the patterns (see the
/// scanners' documentation), and the names the rule sets go by.
final class TokenizerRulesTests: XCTestCase {
    func testSameTextUnderEachRuleSet() {
        let text = "Hello  world's 123\n\n x"
        XCTAssertEqual(PreTokenizerRules.gpt2.pieces(of: text), ["Hello", " ", " world", "'s", " 123", "\n\n", " x"])
        XCTAssertEqual(PreTokenizerRules.llamaBPE.pieces(of: text), ["Hello", " ", " world", "'s", " ", "123", "\n\n", " x"])
        XCTAssertEqual(PreTokenizerRules.qwen2.pieces(of: text), ["Hello", " ", " world", "'s", " ", "1", "2", "3", "\n\n", " x"])
        XCTAssertEqual(PreTokenizerRules.smollm.pieces(of: text), ["Hello", " ", " world", "'s", " ", "1", "2", "3", "\n\n", " x"])
    }

    func testLlama3Rules() {
        let rules = PreTokenizerRules.llamaBPE
        // Contractions in either case; symbols keep the newlines after them; digits in threes.
        XCTAssertEqual(rules.pieces(of: "IT'S ok!\n\nx 12345"), ["IT", "'S", " ok", "!\n\n", "x", " ", "123", "45"])
        XCTAssertEqual(rules.pieces(of: "we'LL 'Re 'x"), ["we", "'LL", " '", "Re", " '", "x"])
        // Any one non-letter, non-number scalar other than CR and LF can lead a word.
        XCTAssertEqual(rules.pieces(of: "\tword\u{A0}nbsp _x(y"), ["\tword", "\u{A0}nbsp", " _", "x", "(y"])
        XCTAssertEqual(rules.pieces(of: "\nword"), ["\n", "word"])
        // White space: up to the last CR/LF, then all but the last scalar before a word.
        XCTAssertEqual(rules.pieces(of: "a\r\n\r\n  b"), ["a", "\r\n\r\n", " ", " b"])
        XCTAssertEqual(rules.pieces(of: "a.\nb"), ["a", ".\n", "b"])
        XCTAssertEqual(rules.pieces(of: "x   "), ["x", "   "])
        XCTAssertEqual(rules.pieces(of: "½12345"), ["½12", "345"])
        XCTAssertEqual(PreTokenizerRules.qwen2.pieces(of: "½12"), ["½", "1", "2"])
    }

    func testGPT2AndSmolLMRules() {
        XCTAssertEqual(PreTokenizerRules.gpt2.pieces(of: "IT'S ok!\n\nx 12345"), ["IT", "'", "S", " ok", "!", "\n", "\n", "x", " 12345"])
        XCTAssertEqual(PreTokenizerRules.gpt2.pieces(of: "\tword"), ["\t", "word"])
        // SmolLM: a space or a white-space run before a number stays apart (its stretch ends there).
        XCTAssertEqual(PreTokenizerRules.smollm.pieces(of: "a  5b 12"), ["a", "  ", "5", "b", " ", "1", "2"])
        XCTAssertEqual(PreTokenizerRules.smollm.pieces(of: "x ½ y"), ["x", " ", "½", " y"])
        XCTAssertEqual(PreTokenizerRules.gpt2.pieces(of: "a  5b 12"), ["a", " ", " 5", "b", " 12"])
    }

    /// llama.cpp's tables are Unicode 15.1: a letter assigned in Unicode 16 (Sunuwar U+11BC0)
    /// counts as "other" there, so it does not join a word.
    func testScalarsAfterUnicode15AreOther() {
        XCTAssertEqual(PreTokenizerRules.llamaBPE.pieces(of: "a\u{11BC0}b"), ["a", "\u{11BC0}b"])
        XCTAssertEqual(PreTokenizerRules.llamaBPE.pieces(of: "a\u{1E4D0}b"), ["a\u{1E4D0}b"])  // Unicode 15.0 letter
    }

    func testNamesAndAliases() throws {
        XCTAssertEqual(try PreTokenizerRules(name: "gpt-2"), .gpt2)
        XCTAssertEqual(try PreTokenizerRules(name: "gpt2"), .gpt2)
        XCTAssertEqual(try PreTokenizerRules(name: "llama3"), .llamaBPE)
        XCTAssertEqual(try PreTokenizerRules(name: "llama-bpe"), .llamaBPE)
        XCTAssertEqual(try PreTokenizerRules(name: "qwen2"), .qwen2)
        XCTAssertEqual(try PreTokenizerRules(name: "smollm"), .smollm)
        XCTAssertEqual(PreTokenizerRules.allCases.map(\.name), ["gpt2", "llama-bpe", "qwen2", "smollm"])
        XCTAssertThrowsError(try PreTokenizerRules(name: "deepseek-llm", source: "model.gguf")) { error in
            XCTAssertEqual(error as? TokenizerError, .unknownPreTokenizer(source: "model.gguf", name: "deepseek-llm"))
            XCTAssertEqual("\(error)", #"model.gguf: unknown pre-tokenizer "deepseek-llm"; the known ones are gpt2 (gpt-2), llama-bpe (llama3, llama-v3), qwen2, smollm"#)
        }
    }
}
