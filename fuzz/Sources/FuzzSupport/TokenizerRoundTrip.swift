import EasyQuant

extension Fuzz {
    /// A fixed text with a special token, digits, accents and blank lines.
    static let fixedText = Array("Hello world! <|endoftext|> 123 ünïcödé 4567\n\n".utf8)

    /// Checks that `tokenizer` encodes `sample` (when it is valid UTF-8) and, if asked, a fixed
    /// text reversibly: `decode(encode(text), includeSpecialTokens: true) == text`, with special
    /// tokens allowed or not, BOS and EOS left out; ids inside the vocabulary; invalid UTF-8
    /// refused at an offset inside it.
    ///
    /// A vocabulary may lack the token of some byte, and the tokenizer then drops that byte (as
    /// llama.cpp does). So unless `complete` (a vocabulary known to cover every byte), the round
    /// trip is required only of texts whose every scalar round-trips on its own: the property
    /// is that tokenizing a text loses nothing its characters do not lose alone.
    public static func checkRoundTrips(_ tokenizer: BPETokenizer, sample: [UInt8], alsoFixedText: Bool = true, complete: Bool = false) {
        for text in alsoFixedText ? [sample, fixedText] : [sample] {
            let required = complete || everyScalarRoundTrips(tokenizer, text)
            for special in [false, true] {
                do {
                    let ids = try tokenizer.encode(utf8: text, addBOS: false, addEOS: false, allowSpecialTokens: special, threads: 1)
                    require(!required || tokenizer.decode(ids, includeSpecialTokens: true) == text,
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

    /// Whether each distinct scalar of `text` (valid UTF-8) survives encoding and decoding alone.
    static func everyScalarRoundTrips(_ tokenizer: BPETokenizer, _ text: [UInt8]) -> Bool {
        guard let string = String(validating: text, as: UTF8.self) else { return false }
        var seen = Set<Unicode.Scalar>()
        for scalar in string.unicodeScalars where seen.insert(scalar).inserted {
            let bytes = Array(String(scalar).utf8)
            guard let ids = try? tokenizer.encode(utf8: bytes, addBOS: false, addEOS: false, threads: 1),
                  tokenizer.decode(ids, includeSpecialTokens: true) == bytes else { return false }
        }
        return true
    }
}
