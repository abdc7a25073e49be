import EasyQuant

extension Fuzz {
    /// A fixed text with a special token, digits, accents and blank lines.
    static let fixedText = Array("Hello world! <|endoftext|> 123 ünïcödé 4567\n\n".utf8)

    /// Checks that `tokenizer` encodes `sample` (when it is valid UTF-8) and, if asked, a fixed
    /// text reversibly: `decode(encode(text), includeSpecialTokens: true) == text`, with special
    /// tokens allowed or not, BOS and EOS left out; ids inside the vocabulary; invalid UTF-8
    /// refused at an offset inside it.
    public static func checkRoundTrips(_ tokenizer: BPETokenizer, sample: [UInt8], alsoFixedText: Bool = true) {
        for text in alsoFixedText ? [sample, fixedText] : [sample] {
            for special in [false, true] {
                do {
                    let ids = try tokenizer.encode(utf8: text, addBOS: false, addEOS: false, allowSpecialTokens: special, threads: 1)
                    require(tokenizer.decode(ids, includeSpecialTokens: true) == text,
                            "decode(encode(text)) is not the text (special tokens \(special))")
                    require(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.vocabularySize }, "an id outside the vocabulary")
                } catch TokenizerError.invalidUTF8(let offset) {
                    require(offset >= 0 && offset < text.count && String(validating: text, as: UTF8.self) == nil,
                            "invalidUTF8 at \(offset) for \(text.count) bytes")
                    break
                } catch {
                    fatalError("encoding threw \(error)")
                }
            }
        }
    }
}
