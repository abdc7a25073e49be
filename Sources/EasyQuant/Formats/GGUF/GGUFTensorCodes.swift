/// GGUF blocks back into EasyQuant codes: the inverse of the exact mappings, so that
/// `.eqm → .gguf → .eqm` keeps every code.
extension GGUFFile {
    /// A Q8_0, Q4_0 or Q4_1 matrix as an EasyQuant `QuantizedTensor` with one scale per
    /// block of 32 along each row (`group:32`, axis 0), codes copied:
    ///
    /// - Q8_0 → absmax 8-bit: code = q (int8), step = d.
    /// - Q4_0 → absmax-style signed 4-bit: code = q − 8 (−8…7), step = d.
    /// - Q4_1 → simquant 4-bit: code = q (0…15), step = d (= 1/s), zero point z = −m/d
    ///   (in f32; an integer only when m is a multiple of d, as in files EasyQuant wrote).
    ///   A block with d = 0 has z = 0 if m = 0 and is refused otherwise.
    ///
    /// Dequantized, (code − z) · step gives ggml's values for Q8_0 and Q4_0 bit for bit, and
    /// for Q4_1 within the rounding of z. Refuses other types, tensors that are not matrices,
    /// and non-finite d or m.
    public func quantizedTensor(_ tensor: GGUFTensorInfo) throws -> QuantizedTensor {
        let t = try owned(tensor)
        func fail(_ p: GGUFConversionError.Problem) -> GGUFConversionError { GGUFConversionError(tensor: t.name, problem: p, path: path) }
        guard [.Q8_0, .Q4_0, .Q4_1].contains(t.type) else { throw fail(.notCodes(type: t.type)) }
        guard t.shape.count == 2 else {
            throw fail(.badShape(shape: t.shape, type: t.type, reason: "EasyQuant's quantized tensors are matrices"))
        }
        // Sizes were checked at open: the tensor's bytes lie in the file, so the counts below
        // (at most 2 elements per byte) are bounded by the file size.
        let rows = t.shape[0], cols = t.shape[1], blocks = t.elementCount / 32
        let base = file.bytes.baseAddress! + t.offset
        let size = t.type.bytesPerBlock
        var scales = [Float](repeating: 0, count: blocks)
        var zeroPoints: [Float]? = t.type == .Q4_1 ? [Float](repeating: 0, count: blocks) : nil
        for b in 0..<blocks {
            let p = base + b * size
            let d = GGUFBlockDecoder.half(p, 0)
            let m = t.type == .Q4_1 ? GGUFBlockDecoder.half(p, 2) : 0
            guard d.isFinite, m.isFinite else {
                throw GGUFError(path: path, problem: .nonFinite(tensor: t.name, block: b, offset: t.offset + b * size))
            }
            scales[b] = d
            if t.type == .Q4_1 {
                guard d != 0 || m == 0 else { throw fail(.zeroStepWithMinimum(block: b, offset: t.offset + b * size, minimum: m)) }
                zeroPoints![b] = d == 0 ? 0 : -m / d
            }
        }

        let codes: [UInt8]
        if t.type == .Q8_0 {
            codes = [UInt8](unsafeUninitializedCapacity: t.elementCount) { out, count in
                for b in 0..<blocks {
                    UnsafeMutableRawPointer(out.baseAddress! + b * 32).copyMemory(from: base + b * size + 2, byteCount: 32)
                }
                count = t.elementCount
            }
        } else {
            // ggml: byte j of a block holds elements j (low) and j + 16 (high); EasyQuant:
            // byte i holds elements 2i (low) and 2i + 1 (high). Q4_0's q − 8 as a 4-bit two's
            // complement nibble is q XOR 8.
            let first = t.type == .Q4_1 ? 4 : 2
            let flip: UInt8 = t.type == .Q4_0 ? 8 : 0
            codes = [UInt8](unsafeUninitializedCapacity: t.elementCount / 2) { out, count in
                for b in 0..<blocks {
                    let q = base + b * size + first
                    @inline(__always) func code(_ j: Int) -> UInt8 {
                        let byte = q.load(fromByteOffset: j & 15, as: UInt8.self)
                        return (j < 16 ? byte & 0x0F : byte >> 4) ^ flip
                    }
                    for i in 0..<16 { out[b &* 16 &+ i] = code(2 &* i) | code(2 &* i &+ 1) << 4 }
                }
                count = t.elementCount / 2
            }
        }
        let layout = BlockLayout(shape: [rows, cols], axis: 0, granularity: .group(32))
        switch t.type {
        case .Q8_0:
            return QuantizedTensor(shape: [rows, cols], method: AbsMax.name, bits: 8, isSigned: true, isSymmetric: true,
                                   layout: layout, codes: codes, scales: scales, zeroPoints: nil)
        case .Q4_0:
            return QuantizedTensor(shape: [rows, cols], method: AbsMax.name, bits: 4, isSigned: true, isSymmetric: true,
                                   layout: layout, codes: codes, scales: scales, zeroPoints: nil)
        default:
            return QuantizedTensor(shape: [rows, cols], method: SimQuant.name, bits: 4, isSigned: false, isSymmetric: false,
                                   layout: layout, codes: codes, scales: scales, zeroPoints: zeroPoints)
        }
    }
}
