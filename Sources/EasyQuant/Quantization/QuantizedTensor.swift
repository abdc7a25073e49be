/// A quantized 2-D tensor: codes, scales and zero points, as docs/FORMAT.md §5.2 stores them.
public struct QuantizedTensor: Sendable {
    public var shape: [Int]
    public var method: String
    public var bits: Int
    public var isSigned: Bool
    public var isSymmetric: Bool
    public var layout: BlockLayout
    /// Stored codes: one byte each for 5-8 bits, two per byte (low nibble first) for 2-4 bits.
    public var codes: [UInt8]
    /// One dequantization step per block, row-major over `layout.scaleShape`.
    public var scales: [Float]
    /// One zero point per block (integers), or nil when symmetric.
    public var zeroPoints: [Float]?

    public init(shape: [Int], method: String, bits: Int, isSigned: Bool, isSymmetric: Bool,
                layout: BlockLayout, codes: [UInt8], scales: [Float], zeroPoints: [Float]?) {
        self.shape = shape; self.method = method; self.bits = bits; self.isSigned = isSigned
        self.isSymmetric = isSymmetric; self.layout = layout; self.codes = codes
        self.scales = scales; self.zeroPoints = zeroPoints
    }

    public var elementCount: Int { shape[0] * shape[1] }

    /// Whether codes are packed two per byte.
    public var isPacked: Bool { CodePacking.isPacked(bits: bits) }

    /// The code of element `index` (row-major) as an integer.
    @inline(__always) public func code(at index: Int) -> Int32 {
        CodePacking.code(in: codes, at: index, bits: bits, signed: isSigned)
    }

    /// All values, dequantized: (q - z) · scale.
    public func dequantized() -> [Float] {
        guard elementCount > 0 else { return [] }
        var out = [Float](repeating: 0, count: elementCount)
        out.withUnsafeMutableBufferPointer { dequantizeRows(0..<shape[0], into: $0.baseAddress!) }
        return out
    }

    /// Dequantizes rows `rows` into `destination` (which receives rows.count × shape[1] floats).
    public func dequantizeRows(_ rows: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let cols = shape[1]
        guard cols > 0 else { return }  // [n, 0]: nothing to write, however large n is
        let scaleCols = layout.scaleShape[1]
        let zps = zeroPoints
        codes.withUnsafeBufferPointer { codeBuf in
            var d = destination
            for r in rows {
                let scaleRow = (r / layout.rows) * scaleCols
                for c in 0..<cols {
                    let s = scaleRow + c / layout.columns
                    let q = Float(CodePacking.code(in: codeBuf, at: r * cols + c, bits: bits, signed: isSigned))
                    let z = zps?[s] ?? 0
                    d[c] = (q - z) * scales[s]
                }
                d += cols
            }
        }
    }
}

/// Code storage: one per byte for 5-8 bits, two per byte for 2-4 bits (element 2i in the
/// low nibble of byte i, element 2i+1 in the high nibble), per docs/FORMAT.md §5.2.
public enum CodePacking {
    @inline(__always) public static func isPacked(bits: Int) -> Bool { bits <= 4 }

    /// Bytes needed for `count` codes of `bits` bits.
    public static func storedSize(count: Int, bits: Int) -> Int { isPacked(bits: bits) ? (count + 1) / 2 : count }

    @inline(__always) public static func code<C: RandomAccessCollection>(in codes: C, at index: Int, bits: Int, signed: Bool) -> Int32
    where C.Element == UInt8, C.Index == Int {
        if !isPacked(bits: bits) {
            let b = codes[codes.startIndex + index]
            return signed ? Int32(Int8(bitPattern: b)) : Int32(b)
        }
        let byte = codes[codes.startIndex + index >> 1]
        let nibble = index & 1 == 0 ? byte & 0x0F : byte >> 4
        return signed ? Int32(Int8(bitPattern: nibble << 4) >> 4) : Int32(nibble)
    }

    /// Packs one code per byte (two's complement low bits) into the stored form.
    public static func pack(_ unpacked: [UInt8], bits: Int) -> [UInt8] {
        guard isPacked(bits: bits) else { return unpacked }
        let n = unpacked.count
        return [UInt8](unsafeUninitializedCapacity: (n + 1) / 2) { out, written in
            unpacked.withUnsafeBufferPointer { codes in
                // Element 2i in the low nibble, 2i+1 in the high one (FORMAT.md §5.2).
                var i = 0
                while i &+ 1 < n {
                    out[i >> 1] = (codes[i] & 0x0F) | (codes[i &+ 1] << 4)
                    i &+= 2
                }
                if i < n { out[i >> 1] = codes[i] & 0x0F }
            }
            written = (n + 1) / 2
        }
    }
}
