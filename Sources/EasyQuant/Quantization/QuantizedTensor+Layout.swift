/// Moving a quantized tensor's elements without touching their values: the transpose and the
/// row reorderings that GGUF's layouts need (GPT-2's Conv1D weights stored [out, in],
/// Llama's rotary rows interleaved). Codes move as they are and each scale (and zero point)
/// moves with its block, so every element dequantizes to exactly the value it had.
extension QuantizedTensor {
    /// The stored code of element `index` as its raw bits (a byte, or a nibble for 2-4 bits).
    @inline(__always) func rawCode(at index: Int) -> UInt8 {
        guard isPacked else { return codes[index] }
        let byte = codes[index >> 1]
        return index & 1 == 0 ? byte & 0x0F : byte >> 4
    }

    /// The transpose, [columns, rows]: element (i, j) becomes (j, i), the block shape and the
    /// scale grid are transposed, and the output-channel axis swaps (a Conv1D [in, out]
    /// matrix with per-column scales becomes an [out, in] one with per-row scales).
    public func transposed() -> QuantizedTensor {
        let rows = shape[0], cols = shape[1]
        let n = rows * cols
        var moved = [UInt8](repeating: 0, count: n)
        for i in 0..<rows {
            for j in 0..<cols { moved[j * rows + i] = rawCode(at: i * cols + j) }
        }
        let grid = layout.scaleShape
        func transpose(_ values: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: values.count)
            for i in 0..<grid[0] { for j in 0..<grid[1] { out[j * grid[0] + i] = values[i * grid[1] + j] } }
            return out
        }
        let newLayout = BlockLayout(shape: [cols, rows], block: [layout.columns, layout.rows],
                                    axis: layout.axis.map { 1 - $0 }, groupSize: layout.groupSize)
        return QuantizedTensor(shape: [cols, rows], method: method, bits: bits, isSigned: isSigned, isSymmetric: isSymmetric,
                               layout: newLayout, codes: CodePacking.pack(moved, bits: bits), scales: transpose(scales),
                               zeroPoints: zeroPoints.map(transpose))
    }

    /// Whether rows can be reordered in code space: each row has scales of its own (blocks
    /// one row high), or all rows share the same scale row (one block row).
    public var rowsCarryTheirScales: Bool { layout.rows == 1 || layout.scaleShape[0] == 1 }

    /// The tensor with its rows reordered: row r of the result is row `order[r]` of this one,
    /// with its scales and zero points. Nil when a scale block spans several rows but not
    /// all (`rowsCarryTheirScales`), since such rows cannot move without requantizing.
    /// `order` must be a permutation of the rows.
    public func reorderingRows(_ order: [Int]) -> QuantizedTensor? {
        precondition(order.count == shape[0] && Set(order).count == order.count && order.allSatisfy { (0..<shape[0]).contains($0) },
                     "row order must be a permutation of the rows")
        guard rowsCarryTheirScales else { return nil }
        let cols = shape[1]
        var moved = [UInt8](repeating: 0, count: elementCount)
        for (r, from) in order.enumerated() {
            for c in 0..<cols { moved[r * cols + c] = rawCode(at: from * cols + c) }
        }
        var out = self
        out.codes = CodePacking.pack(moved, bits: bits)
        if layout.rows == 1 && layout.scaleShape[0] > 1 {
            let width = layout.scaleShape[1]
            func permute(_ values: [Float]) -> [Float] {
                var p = [Float](repeating: 0, count: values.count)
                for (r, from) in order.enumerated() { for c in 0..<width { p[r * width + c] = values[from * width + c] } }
                return p
            }
            out.scales = permute(scales)
            out.zeroPoints = zeroPoints.map(permute)
        }
        return out
    }
}

extension GGUFLayoutChange {
    /// The row order that takes the canonical layout to GGUF's (`toGGUF`) or back: row r of
    /// the result is row `order[r]` of the input. Nil for changes that are not row
    /// reorderings, and for head counts that do not divide the rows into even-sized heads
    /// (then nothing is reordered, as `toGGUF` does).
    public func rowOrder(rows: Int, toGGUF: Bool) -> [Int]? {
        guard case .interleavedRotary(let heads) = self, heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else { return nil }
        let d = rows / heads, half = d / 2
        var order = Array(0..<rows)
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let canonical = h * d + j * half + i, gguf = h * d + 2 * i + j
                    if toGGUF { order[gguf] = canonical } else { order[canonical] = gguf }
                }
            }
        }
        return order
    }
}
