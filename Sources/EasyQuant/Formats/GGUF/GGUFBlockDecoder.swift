/// Decodes ggml's block formats to f32 (layouts: docs/GGUF.md; ggml's `ggml-common.h`).
///
/// Each decoder turns one block (`bytesPerBlock` bytes) into `blockSize` floats, computing
/// every value with the same float32 operations in the same order as ggml's reference
/// dequantization (a product of the f16 scale and the integer code, then the f16 minimum
/// added or the scaled minimum subtracted), so results match it bit for bit.
///
/// Non-finite scales: a block whose f16 scale or minimum is infinite or NaN is refused (the
/// decoder returns its index), as is an infinite or NaN value in an F32/F16/BF16 tensor.
/// With finite scales every decoded value is finite (the largest, 65504 × 63 × 63, is far
/// from overflow), so nothing downstream ever sees a NaN weight that came from the file.
enum GGUFBlockDecoder {
    /// Decodes `blocks` consecutive blocks of `type` at `source` into `blocks × type.blockSize`
    /// floats at `destination`. Returns the index of the first block with a non-finite scale
    /// (or value), or nil when all were decoded.
    ///
    /// The caller has checked that `type.canDequantize`, that `source` holds
    /// `blocks × type.bytesPerBlock` bytes and `destination` room for the floats: the loops
    /// below then index without further checks.
    static func decode(_ type: GGMLType, _ source: UnsafeRawPointer, blocks: Int,
                       into destination: UnsafeMutablePointer<Float>) -> Int? {
        let step = type.bytesPerBlock, size = type.blockSize
        let block: (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Bool
        switch type {
        case .F32, .F16, .BF16: return plain(type, source, count: blocks, into: destination)
        case .Q4_0: block = q4_0
        case .Q4_1: block = q4_1
        case .Q5_0: block = q5_0
        case .Q5_1: block = q5_1
        case .Q8_0: block = q8_0
        case .Q2_K: block = q2_K
        case .Q3_K: block = q3_K
        case .Q4_K: block = q4_K
        case .Q5_K: block = q5_K
        case .Q6_K: block = q6_K
        default: return 0
        }
        for b in 0..<blocks where !block(source + b &* step, destination + b &* size) { return b }
        return nil
    }

    // MARK: Reading fields

    @inline(__always) static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
    }

    @inline(__always) static func byte(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
        p.load(fromByteOffset: offset, as: UInt8.self)
    }

    // MARK: Plain floats (one element per block)

    /// F32, F16, BF16: converted in one loop, then checked for infinities and NaN (the
    /// index of the first is returned, as a "block" of one element).
    static func plain(_ type: GGMLType, _ p: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) -> Int? {
        switch type {
        case .F32:
            for i in 0..<count { y[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self))) }
        case .F16:
            for i in 0..<count { y[i] = half(p, 2 &* i) }
        default:
            for i in 0..<count { y[i] = FloatConversion.bf16ToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self))) }
        }
        for i in 0..<count where !y[i].isFinite { return i }
        return nil
    }

    // MARK: 32-element blocks

    /// Q4_0: f16 d; 16 bytes whose low nibbles are elements 0-15 and high nibbles 16-31; x = d·(q − 8).
    static func q4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) -> Bool {
        let d = half(p, 0)
        guard d.isFinite else { return false }
        for j in 0..<16 {
            let q = byte(p, 2 + j)
            y[j] = d * Float(Int(q & 0x0F) - 8)
            y[j + 16] = d * Float(Int(q >> 4) - 8)
        }
        return true
    }

    /// Q4_1: f16 d, f16 m; nibbles as Q4_0; x = d·q + m.
    static func q4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) -> Bool {
        let d = half(p, 0), m = half(p, 2)
        guard d.isFinite, m.isFinite else { return false }
        for j in 0..<16 {
            let q = byte(p, 4 + j)
            y[j] = d * Float(q & 0x0F) + m
            y[j + 16] = d * Float(q >> 4) + m
        }
        return true
    }

    /// Q5_0: f16 d; u32 of fifth bits (bit i for element i); nibbles as Q4_0; x = d·(q − 16).
    static func q5_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) -> Bool {
        let d = half(p, 0)
        guard d.isFinite else { return false }
        let high = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        for j in 0..<16 {
            let q = byte(p, 6 + j)
            let lo = Int(q & 0x0F) | Int((high >> UInt32(j)) & 1) << 4
            let hi = Int(q >> 4) | Int((high >> UInt32(j + 16)) & 1) << 4
            y[j] = d * Float(lo - 16)
            y[j + 16] = d * Float(hi - 16)
        }
        return true
    }

    /// Q5_1: f16 d, f16 m; u32 of fifth bits; nibbles; x = d·q + m.
    static func q5_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) -> Bool {
        let d = half(p, 0), m = half(p, 2)
        guard d.isFinite, m.isFinite else { return false }
        let high = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        for j in 0..<16 {
            let q = byte(p, 8 + j)
            let lo = UInt32(q & 0x0F) | ((high >> UInt32(j)) & 1) << 4
            let hi = UInt32(q >> 4) | ((high >> UInt32(j + 16)) & 1) << 4
            y[j] = d * Float(lo) + m
            y[j + 16] = d * Float(hi) + m
        }
        return true
    }

    /// Q8_0: f16 d; 32 int8 codes; x = q·d.
    static func q8_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) -> Bool {
        let d = half(p, 0)
        guard d.isFinite else { return false }
        for j in 0..<32 { y[j] = Float(Int8(bitPattern: byte(p, 2 + j))) * d }
        return true
    }

    // MARK: 256-element super-blocks (K-quants)

    /// Q2_K: 16 bytes of (min << 4 | scale) for 16-element groups; 64 bytes of 2-bit codes
    /// (byte h·32 + l holds elements (4h + s)·32 + l at bits 2s); f16 d; f16 dmin.
    /// x = (d·scale)·q − dmin·min.
    static func q2_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) -> Bool {
        let d = half(p, 80), dmin = half(p, 82)
        guard d.isFinite, dmin.isFinite else { return false }
        for e in 0..<256 {
            let h = e >> 7, s = (e >> 5) & 3, l = e & 31
            let q = (byte(p, 16 + h * 32 + l) >> UInt8(2 * s)) & 3
            let packed = byte(p, e >> 4)
            y[e] = d * Float(packed & 0x0F) * Float(q) - dmin * Float(packed >> 4)
        }
        return true
    }

    /// Q3_K: 32 bytes of high bits (byte l, bit b for element 32b + l; a clear bit subtracts 4);
    /// 64 bytes of 2-bit codes as Q2_K; 12 bytes of 6-bit scales (low nibbles in bytes 0-7,
    /// high 2 bits in bytes 8-11), biased by 32; f16 d. x = (d·(scale − 32))·q.
    static func q3_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) -> Bool {
        let d = half(p, 108)
        guard d.isFinite else { return false }
        for i in 0..<16 {
            let low = i < 8 ? byte(p, 96 + i) & 0x0F : byte(p, 96 + i - 8) >> 4
            let high = (byte(p, 104 + (i & 3)) >> UInt8(2 * (i >> 2))) & 3
            let dl = d * Float(Int(low | high << 4) - 32)
            for e in (16 * i)..<(16 * i + 16) {
                let h = e >> 7, s = (e >> 5) & 3, l = e & 31
                let code = Int((byte(p, 32 + h * 32 + l) >> UInt8(2 * s)) & 3)
                let set = (byte(p, l) >> UInt8(e >> 5)) & 1
                y[e] = dl * Float(set == 1 ? code : code - 4)
            }
        }
        return true
    }

    /// The 6-bit scale and minimum of sub-block `k` (0-7) of a Q4_K/Q5_K super-block, packed
    /// in 12 bytes at `p`: sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7
    /// (minimums); sub-blocks 4-7 in the nibbles of bytes 8-11 plus the top 2 bits of bytes 0-7.
    @inline(__always) static func scaleAndMin(_ p: UnsafeRawPointer, _ k: Int) -> (UInt8, UInt8) {
        if k < 4 { return (byte(p, k) & 63, byte(p, k + 4) & 63) }
        let scale = (byte(p, k + 4) & 0x0F) | (byte(p, k - 4) >> 6) << 4
        let minimum = (byte(p, k + 4) >> 4) | (byte(p, k) >> 6) << 4
        return (scale, minimum)
    }

    /// Q4_K: f16 d; f16 dmin; 12 bytes of scales and minimums; 128 bytes of codes (bytes
    /// 32j..32j+31 hold sub-block 2j in low nibbles, 2j+1 in high). x = (d·scale)·q − dmin·min.
    static func q4_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) -> Bool {
        let d = half(p, 0), dmin = half(p, 2)
        guard d.isFinite, dmin.isFinite else { return false }
        for k in 0..<8 {
            let (sc, mn) = scaleAndMin(p + 4, k)
            let dk = d * Float(sc), mk = dmin * Float(mn)
            let shift = UInt8(4 * (k & 1)), base = 16 + (k >> 1) * 32
            for l in 0..<32 { y[k * 32 + l] = dk * Float((byte(p, base + l) >> shift) & 0x0F) - mk }
        }
        return true
    }

    /// Q5_K: as Q4_K with 32 bytes of fifth bits before the codes (byte l, bit k for sub-block k).
    static func q5_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) -> Bool {
        let d = half(p, 0), dmin = half(p, 2)
        guard d.isFinite, dmin.isFinite else { return false }
        for k in 0..<8 {
            let (sc, mn) = scaleAndMin(p + 4, k)
            let dk = d * Float(sc), mk = dmin * Float(mn)
            let shift = UInt8(4 * (k & 1)), base = 48 + (k >> 1) * 32
            for l in 0..<32 {
                let q = ((byte(p, base + l) >> shift) & 0x0F) | ((byte(p, 16 + l) >> UInt8(k)) & 1) << 4
                y[k * 32 + l] = dk * Float(q) - mk
            }
        }
        return true
    }

    /// Q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 int8 scales, f16 d.
    /// Each 128-element half h uses ql[64h..<64h+64] and qh[32h..<32h+32]; its 32-element
    /// part s takes the low or high nibble (s / 2) of ql[64h + 32(s % 2) + l] and bits 2s of
    /// qh[32h + l]. x = (d·scale)·(q − 32), one scale per 16 elements.
    static func q6_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) -> Bool {
        let d = half(p, 208)
        guard d.isFinite else { return false }
        for e in 0..<256 {
            let k = e >> 5, l = e & 31, h = k >> 2, s = k & 3
            let low = (byte(p, h * 64 + (s & 1) * 32 + l) >> UInt8(4 * (s >> 1))) & 0x0F
            let high = (byte(p, 128 + h * 32 + l) >> UInt8(2 * s)) & 3
            let scale = d * Float(Int8(bitPattern: byte(p, 192 + (e >> 4))))
            y[e] = scale * Float(Int(low | high << 4) - 32)
        }
        return true
    }
}
