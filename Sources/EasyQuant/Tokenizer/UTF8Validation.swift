/// Strict UTF-8 validation that reports where the input went wrong.
///
/// Byte input (a file, a memory map) is checked once up front so that the scanner can decode
/// scalars without checks. The rules are those of Unicode §3.9 / RFC 3629: no overlong forms,
/// no surrogates (U+D800…U+DFFF), nothing above U+10FFFF, no truncated sequences.
enum UTF8Validation {
    /// The offset of the first byte of the first ill-formed sequence, or nil if `bytes` is valid.
    static func firstInvalidOffset(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        let p = base.assumingMemoryBound(to: UInt8.self)
        let n = bytes.count
        var i = 0
        while i < n {
            // Most text is ASCII: skip 8 bytes at a time while no high bit is set.
            while i + 8 <= n, base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
            }
            if i >= n { break }
            let b0 = p[i]
            if b0 < 0x80 { i += 1; continue }
            let length: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF  // allowed range of the second byte
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE, 0xEF: length = 3
            case 0xED: length = 3; hi = 0x9F
            case 0xF0: length = 4; lo = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; hi = 0x8F
            default: return i  // continuation byte without a lead, C0/C1 overlong leads, F5…FF
            }
            if i + length > n { return i }
            let b1 = p[i + 1]
            if b1 < lo || b1 > hi { return i }
            for k in 2..<length where p[i + k] & 0xC0 != 0x80 { return i }
            i += length
        }
        return nil
    }
}
