/// The four kinds of scalars GPT-2's pre-tokenization pattern distinguishes.
///
/// The pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// only asks whether a scalar is a letter (`\p{L}`: general categories Lu, Ll, Lt, Lm, Lo), a
/// number (`\p{N}`: Nd, Nl, No), white space (`\s`), or none of these. The regex engines the
/// references use (Rust `regex` under tiktoken, Oniguruma under HF tokenizers) both read `\s` as
/// the Unicode White_Space property: \t \n \v \f \r, space, U+0085, U+00A0, U+1680,
/// U+2000…U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 — and not U+001C…U+001F (which
/// Python's `str.isspace` counts), U+180E, U+200B or U+FEFF. The three sets are disjoint.
///
/// Categories come from Swift's own Unicode tables. The tests check every scalar assigned in
/// Unicode 14 against tiktoken and HF tokenizers (fixtures/reference); scalars assigned later
/// may be classified differently by an engine with older tables (as unassigned, i.e. "other").
enum ScalarClass {
    static let other: UInt8 = 0
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let space: UInt8 = 3

    /// The class of a scalar, from the Unicode properties.
    static func compute(_ scalar: Unicode.Scalar) -> UInt8 {
        let properties = scalar.properties
        if properties.isWhitespace { return space }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        default:
            return other
        }
    }

    /// Classes of U+0000…U+FFFF, one byte each (64 KiB), computed once per process: looking up
    /// the Unicode properties of every scalar would dominate the scan of non-ASCII text.
    /// Scalars above the BMP are rare and go through `compute`.
    static let bmp: [UInt8] = {
        var table = [UInt8](repeating: other, count: 0x10000)
        for v in 0..<0x10000 {
            if let scalar = Unicode.Scalar(UInt32(v)) { table[v] = compute(scalar) }
        }
        return table
    }()
}
