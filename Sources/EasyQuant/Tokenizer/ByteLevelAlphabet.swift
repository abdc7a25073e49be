/// GPT-2's reversible mapping between the 256 byte values and 256 printable Unicode characters.
///
/// BPE vocabularies are stored as text (vocab.json keys, merges.txt lines), but the model works
/// on raw UTF-8 bytes. GPT-2 therefore writes every byte as one visible character: bytes that
/// are already printable Latin-1 (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for themselves, and the other
/// 68 (controls, space, DEL, NBSP, soft hyphen, …) take U+0100, U+0101, … in byte order. So a
/// space is `Ġ` (U+0120) and a newline `Ċ` (U+010A). The mapping is a bijection, so a token's
/// text decodes to exactly one byte string.
enum ByteLevelAlphabet {
    /// The character (scalar value) that stands for each byte.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 0x100
        for b in 0..<256 {
            if isSelfPrinting(UInt8(b)) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// The byte each alphabet character stands for; the alphabet spans U+0021…U+0143, so a
    /// 0x144-entry table (-1 = not in the alphabet) answers every lookup.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in scalarForByte.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    /// Bytes GPT-2 keeps as their own Latin-1 character.
    static func isSelfPrinting(_ b: UInt8) -> Bool {
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    }

    /// The bytes a token's text stands for, or nil if some character is outside the alphabet
    /// (such a token is not a byte-level token, e.g. an added special token written in plain text).
    static func bytes(ofTokenText text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            let v = Int(scalar.value)
            guard v < byteForScalar.count, byteForScalar[v] >= 0 else { return nil }
            out.append(UInt8(byteForScalar[v]))
        }
        return out
    }

    /// The token text for some bytes (the inverse of `bytes(ofTokenText:)`).
    static func tokenText(ofBytes bytes: [UInt8]) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(scalarForByte[Int(b)])!) }
        return String(s)
    }
}
