/// The four kinds of scalars the pre-tokenization patterns distinguish.
///
/// Every rule set (`PreTokenizerRules`) only asks whether a scalar is a letter (`\p{L}`:
/// general categories Lu, Ll, Lt, Lm, Lo), a number (`\p{N}`: Nd, Nl, No), white space (`\s`),
/// or none of these ("other"); the few scalars a rule names itself (`'`, space, CR, LF) the
/// scanners test by byte. `\s` is the Unicode White_Space property, as in llama.cpp, the Rust
/// `regex` crate under tiktoken and Oniguruma under HF tokenizers: \t \n \v \f \r, space,
/// U+0085, U+00A0, U+1680, U+2000…U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 — and not
/// U+001C…U+001F (which Python's `str.isspace` counts), U+180E, U+200B or U+FEFF. The three
/// sets are disjoint.
///
/// Categories come from Swift's own Unicode tables, read as of Unicode 15.1: llama.cpp, the
/// reference for the Llama-family rule sets, classifies with Unicode 15.1 tables, where a
/// scalar assigned later (Unicode 16 added letters and digits) is unassigned, i.e. "other".
/// The tests check every scalar assigned up to then against llama.cpp, tiktoken and HF
/// tokenizers (fixtures/reference).
enum ScalarClass {
    static let other: UInt8 = 0
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let space: UInt8 = 3

    /// The Unicode version whose assignments count; later scalars are "other".
    static let unicodeVersion = (major: 15, minor: 1)

    /// The class of a scalar, from the Unicode properties.
    static func compute(_ scalar: Unicode.Scalar) -> UInt8 {
        let properties = scalar.properties
        guard let age = properties.age,
              age.major < unicodeVersion.major || (age.major == unicodeVersion.major && age.minor <= unicodeVersion.minor)
        else { return other }
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

    /// `bmp`, copied once to memory that lives as long as the process, so that the scanners
    /// can hold a plain pointer to it.
    static let bmpTable: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 0x10000)
        bmp.withUnsafeBufferPointer { table.initialize(from: $0.baseAddress!, count: 0x10000) }
        return UnsafePointer(table)
    }()
}

/// Reads the class of the scalar at a byte offset of valid UTF-8; shared by the scanners.
struct ScalarClassReader {
    let text: UnsafePointer<UInt8>
    private let bmp: UnsafePointer<UInt8>

    init(text: UnsafePointer<UInt8>) {
        self.text = text
        self.bmp = ScalarClass.bmpTable
    }

    /// The class of the scalar at byte `i` and its length in bytes.
    @inline(__always)
    func classAt(_ i: Int) -> (cls: UInt8, length: Int) {
        let b0 = text[i]
        if b0 < 0x80 { return (bmp[Int(b0)], 1) }
        if b0 < 0xE0 {
            let v = Int(b0 & 0x1F) << 6 | Int(text[i + 1] & 0x3F)
            return (bmp[v], 2)
        }
        if b0 < 0xF0 {
            let v = Int(b0 & 0x0F) << 12 | Int(text[i + 1] & 0x3F) << 6 | Int(text[i + 2] & 0x3F)
            return (bmp[v], 3)
        }
        let v = UInt32(b0 & 0x07) << 18 | UInt32(text[i + 1] & 0x3F) << 12
            | UInt32(text[i + 2] & 0x3F) << 6 | UInt32(text[i + 3] & 0x3F)
        return (ScalarClass.compute(Unicode.Scalar(v)!), 4)
    }

    /// The class of an ASCII byte.
    @inline(__always)
    func asciiClass(_ b: UInt8) -> UInt8 { bmp[Int(b)] }

    /// The end of the run of class `cls` that continues at byte `start`, stopping at `end`.
    @inline(__always)
    func runEnd(_ cls: UInt8, from start: Int, end: Int) -> Int {
        var i = start
        while i < end {
            let b = text[i]
            if b < 0x80 {
                if bmp[Int(b)] != cls { break }
                i += 1
            } else {
                let (c, length) = classAt(i)
                if c != cls { break }
                i += length
            }
        }
        return i
    }
}

/// A pre-tokenizer: cuts valid UTF-8 `text[start..<end]` into the pieces that BPE merges
/// separately, left to right. Each rule set has its own scanner (hand-written, no regex engine).
protocol PieceScanner {
    init(text: UnsafePointer<UInt8>, start: Int, end: Int)
    /// The next piece as a byte range, or nil at the end of the text.
    mutating func next() -> Range<Int>?
}
