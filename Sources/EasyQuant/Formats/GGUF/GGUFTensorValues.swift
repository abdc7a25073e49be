/// A GGUF tensor's values as f32, through `GGUFBlockDecoder`.
extension GGUFFile {
    /// Rows decoded per task by `floats(of:threads:)`: about 1 MiB of floats for a 1024-wide
    /// row, small enough for the work to spread evenly over the threads.
    static let rowsPerTask = 256

    /// The whole tensor dequantized to f32 (in `shape` order, row-major), rows split over
    /// `threads`. Refuses a type EasyQuant cannot dequantize, and a block whose scale (or,
    /// for float tensors, value) is infinite or NaN, naming the tensor and the block.
    public func floats(of tensor: GGUFTensorInfo, threads: Int) throws -> [Float] {
        let t = try dequantizable(tensor)
        let rows = t.rowCount, perTask = Self.rowsPerTask
        return try [Float](unsafeUninitializedCapacity: t.elementCount) { buffer, initialized in
            initialized = t.elementCount  // Float needs no deinitialization if a task throws
            guard let out = buffer.baseAddress else { return }
            try Parallel.forEachThrowing((rows + perTask - 1) / perTask, threads: max(1, threads)) { task in
                let lo = task * perTask, hi = min(rows, lo + perTask)
                try decodeRows(t, lo..<hi, into: out + lo * t.rowLength)
            }
        }
    }

    /// Dequantizes rows `rows` of `tensor` into `out`, which must have room for
    /// `rows.count × tensor.rowLength` floats. A row is GGUF's `ne[0]` elements (the last
    /// entry of `shape`), so this works for tensors of any rank: a 1-D tensor is one row.
    public func dequantizeRows(_ tensor: GGUFTensorInfo, _ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let t = try dequantizable(tensor)
        guard rows.lowerBound >= 0, rows.upperBound <= t.rowCount else {
            throw GGUFError(path: path, problem: .rowsOutOfRange(tensor: t.name, rows: rows, rowCount: t.rowCount))
        }
        try decodeRows(t, rows, into: out)
    }

    /// This file's record of `tensor`, if EasyQuant can dequantize its type.
    private func dequantizable(_ tensor: GGUFTensorInfo) throws -> GGUFTensorInfo {
        let t = try owned(tensor)
        guard t.type.canDequantize else {
            throw GGUFError(path: path, problem: .unsupportedType(tensor: t.name, type: t.type))
        }
        return t
    }

    /// Decodes rows already checked to lie inside `t`, which was checked (at open) to lie
    /// inside the file.
    private func decodeRows(_ t: GGUFTensorInfo, _ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        guard !rows.isEmpty, let base = file.bytes.baseAddress else { return }
        let blocksPerRow = t.rowLength / t.type.blockSize
        let firstBlock = rows.lowerBound * blocksPerRow
        let start = t.offset + firstBlock * t.type.bytesPerBlock
        if let bad = GGUFBlockDecoder.decode(t.type, base + start, blocks: rows.count * blocksPerRow, into: out) {
            throw GGUFError(path: path, problem: .nonFinite(tensor: t.name, block: firstBlock + bad,
                                                            offset: start + bad * t.type.bytesPerBlock))
        }
    }
}
