/// Writes an EasyQuant `QuantizedTensor`'s own codes as ggml blocks, without requantizing.
///
/// ggml's 32-element blocks each carry an f16 step (and, for Q4_1, an f16 minimum): a
/// tensor maps onto them exactly when every run of 32 along a row shares one EasyQuant scale
/// and its codes fit the block's code range:
///
/// | codes | ggml type | block |
/// |---|---|---|
/// | signed, symmetric, 5-8 bits (absmax, symquant, …) | Q8_0 | d = f16(step); the int8 codes copied |
/// | signed, symmetric, 2-4 bits | Q4_0 | d = f16(step); q = code + 8 |
/// | unsigned, asymmetric, 2-4 bits (simquant) | Q4_1 | d = f16(step); m = f16(−z · step); q = code |
/// | signed, asymmetric, 2-4 bits (zeropoint) | Q4_1 | d = f16(step); m = f16(−(z + 8) · step); q = code + 8 |
///
/// with x = (code − z) · step on EasyQuant's side and d·(q − 8), q·d, d·q + m on ggml's. The
/// only change is the rounding of d and m to f16 (m from the exact product, rounded once).
/// "Shares one scale" holds for per-channel and per-tensor scales and for groups of a
/// multiple of 32 along the row (blocks `[r, c]` with c a multiple of 32, or c at least the
/// row length), when the row length is itself a multiple of 32. Asymmetric codes of 5-8 bits
/// have no exact form: Q8_0 has no minimum.
struct GGUFCodeMapping {
    let type: GGMLType
    /// XOR applied to a stored nibble to get ggml's unsigned code: 8 turns a signed 4-bit
    /// two's-complement code c into c + 8; 0 keeps unsigned codes.
    let nibbleFlip: UInt8
    /// Added to the zero point before m = −(z + offset) · step (Q4_1 from signed codes).
    let zeroOffset: Float

    /// Why a tensor has no exact mapping: a phrase for the plan's one-line summary.
    enum Refusal: Error, Equatable {
        case rowLength(Int)
        case blocksAcrossRuns(block: [Int])
        case asymmetricWide(bits: Int)
        case unsignedSymmetric
        case scaleOverflow(block: Int, value: Double)

        var phrase: String {
            switch self {
            case .rowLength(let n): return "row length \(n) is not a multiple of 32"
            case .blocksAcrossRuns(let b): return "its scale blocks \(b) split runs of 32 along a row"
            case .asymmetricWide(let bits): return "asymmetric \(bits)-bit codes have no GGUF block with a minimum"
            case .unsignedSymmetric: return "unsigned symmetric codes have no GGUF block"
            case let .scaleOverflow(block, value): return "block \(block)'s step or minimum \(value) is beyond f16"
            }
        }
    }

    /// The exact mapping for `q` (already checked by `GGUFTensorCheck`), or why there is none.
    static func find(for q: QuantizedTensor) -> Result<GGUFCodeMapping, Refusal> {
        let cols = q.shape[1]
        guard cols % 32 == 0 else { return .failure(.rowLength(cols)) }
        guard q.layout.columns % 32 == 0 || q.layout.columns >= cols else { return .failure(.blocksAcrossRuns(block: q.layout.block)) }
        let mapping: GGUFCodeMapping
        if q.isSymmetric {
            guard q.isSigned else { return .failure(.unsignedSymmetric) }
            mapping = q.bits <= 4 ? GGUFCodeMapping(type: .Q4_0, nibbleFlip: 8, zeroOffset: 0)
                                  : GGUFCodeMapping(type: .Q8_0, nibbleFlip: 0, zeroOffset: 0)
        } else {
            guard q.bits <= 4 else { return .failure(.asymmetricWide(bits: q.bits)) }
            mapping = GGUFCodeMapping(type: .Q4_1, nibbleFlip: q.isSigned ? 8 : 0, zeroOffset: q.isSigned ? 8 : 0)
        }
        // Every block's step (and minimum) must survive the rounding to f16.
        for s in 0..<q.scales.count {
            guard Float16(q.scales[s]).isFinite else { return .failure(.scaleOverflow(block: s, value: Double(q.scales[s]))) }
            if mapping.type == .Q4_1 {
                let z = q.zeroPoints?[s] ?? 0
                guard mapping.minimum(zeroPoint: z, step: q.scales[s]).isFinite else {
                    let m: Double = -(Double(z) + Double(mapping.zeroOffset)) * Double(q.scales[s])
                    return .failure(.scaleOverflow(block: s, value: m))
                }
            }
        }
        return .success(mapping)
    }

    /// Q4_1's minimum for a block: −(z + offset) · step, computed exactly in Double (the
    /// product of two floats fits its 53 bits) and rounded to f16 once.
    func minimum(zeroPoint z: Float, step: Float) -> Float16 {
        Float16(-((Double(z) + Double(zeroOffset)) * Double(step)))
    }

    /// Writes row `r` of `q` as `cols / 32` blocks of `type` at `out`.
    ///
    /// The caller has checked `q` (codes, scales and zero points sized for its shape and
    /// layout) and that `r` is a row of it; within the row every index stays below the
    /// row's end, so the loops run unchecked.
    func encodeRow(_ q: QuantizedTensor, _ r: Int, into out: UnsafeMutableRawPointer) {
        let cols = q.shape[1]
        let scaleRow = (r / q.layout.rows) * q.layout.scaleShape[1]
        let blockColumns = q.layout.columns
        q.codes.withUnsafeBytes { codes in
            let rowStart = r * cols
            for k in 0..<(cols / 32) {
                let s = scaleRow + (k &* 32) / blockColumns
                let y = out + k &* type.bytesPerBlock
                let step = q.scales[s]
                y.storeBytes(of: Float16(step).bitPattern.littleEndian, as: UInt16.self)
                let first = rowStart &+ k &* 32
                switch type {
                case .Q8_0:
                    // One signed byte per code, already two's complement.
                    (y + 2).copyMemory(from: codes.baseAddress! + first, byteCount: 32)
                default:
                    var codeOffset = 2
                    if type == .Q4_1 {
                        let m = minimum(zeroPoint: q.zeroPoints?[s] ?? 0, step: step)
                        y.storeBytes(of: m.bitPattern.littleEndian, toByteOffset: 2, as: UInt16.self)
                        codeOffset = 4
                    }
                    // EasyQuant packs elements 2i, 2i+1 into byte i (low, high); ggml puts
                    // elements j and j + 16 of a block into byte j. `first` is even.
                    let packed = codes.baseAddress! + first >> 1
                    @inline(__always) func code(_ e: Int) -> UInt8 {
                        let byte = packed.load(fromByteOffset: e >> 1, as: UInt8.self)
                        return (e & 1 == 0 ? byte & 0x0F : byte >> 4) ^ nibbleFlip
                    }
                    for j in 0..<16 {
                        y.storeBytes(of: code(j) | code(j &+ 16) << 4, toByteOffset: codeOffset &+ j, as: UInt8.self)
                    }
                }
            }
        }
    }
}
