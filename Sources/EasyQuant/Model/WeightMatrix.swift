import CKernels

/// A float matrix, row-major, either viewed in place in a memory-mapped file or owned.
public final class DenseWeight: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    public let values: UnsafePointer<Float>
    /// Keeps the memory alive: a MappedFile, or the array the values live in.
    private let owner: AnyObject?
    private let storage: UnsafeMutablePointer<Float>?

    /// Copies `values` into memory of its own.
    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns)
        self.rows = rows; self.columns = columns
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, values.count))
        p.initialize(from: values, count: values.count)
        storage = p
        self.values = UnsafePointer(p)
        owner = nil
    }

    /// Views floats that `owner` keeps alive (a mapped safetensors tensor, 4-byte aligned).
    public init(rows: Int, columns: Int, viewing values: UnsafePointer<Float>, owner: AnyObject) {
        self.rows = rows; self.columns = columns; self.values = values; self.owner = owner
        storage = nil
    }

    deinit { storage?.deallocate() }
}

/// A quantized matrix kept quantized in memory, plus the per-block scales and zero points of
/// docs/FORMAT.md §5.2. Codes of 5 to 8 bits take a signed byte each; codes of 4 bits or
/// fewer stay packed two per byte, as the file stores them, and are widened to bytes only a
/// tile at a time inside the batch products (the batch-1 products read them packed).
///
/// Unsigned 8-bit codes are shifted by -128 together with their zero points, which leaves
/// (q - z) unchanged and lets every code sit in an Int8.
public final class QuantizedWeight: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    /// Codes of more than 4 bits, one signed byte each (empty when packed or streamed).
    private var wide: [Int8]
    /// Codes of 4 bits or fewer, element 2i in the low nibble of byte i (two's complement
    /// when signed), as stored (empty otherwise, or when streamed).
    private var nibbles: [UInt8]
    /// Set by `keepOnlyStreamingForm`: the batch-1 layout that then holds the only copy of
    /// the codes, and its orientation.
    private var streamed: (form: StreamingQuantizedWeight, outputIsRows: Bool)?
    public let scales: [Float]
    /// Zero points after the shift, or nil when every zero point is 0.
    public let zeroPoints: [Float]?
    public let blockRows: Int
    public let blockColumns: Int
    public let scaleColumns: Int
    public let bits: Int
    /// Whether the codes are signed (as stored; unsigned 8-bit codes are shifted here).
    public let isSigned: Bool
    public let method: String
    /// The batch-1 layouts made so far (see `streaming(outputIsRows:)`), by orientation
    /// (output channels as rows, or as columns): .none when not made yet, .some(nil) when the
    /// weight has no such layout. Two fields, not a dictionary: decoding looks them up for
    /// every product.
    private var streamingFormRows: StreamingQuantizedWeight??
    private var streamingFormColumns: StreamingQuantizedWeight??
    private let streamingLock = Lock()

    public init(_ q: QuantizedTensor) {
        rows = q.shape[0]; columns = q.shape[1]
        let n = rows * columns
        if CodePacking.isPacked(bits: q.bits) {
            precondition(q.codes.count == (n + 1) / 2, "\(q.codes.count) bytes for \(n) packed codes")
            nibbles = q.codes
            wide = []
        } else {
            // One byte a code (FORMAT.md §5.2): signed codes are their bit pattern, unsigned
            // 8-bit codes move down by 128 (wrapping subtraction of the byte), and unsigned
            // codes of fewer bits are below 128 already.
            let shift: UInt8 = (!q.isSigned && q.bits == 8) ? 128 : 0
            precondition(q.codes.count == n, "\(q.codes.count) bytes for \(n) codes")
            wide = [Int8](unsafeUninitializedCapacity: n) { out, written in
                q.codes.withUnsafeBufferPointer { bytes in
                    for i in 0..<n { out[i] = Int8(bitPattern: bytes[i] &- shift) }
                }
                written = n
            }
            nibbles = []
        }
        let shift: Float = (!q.isSigned && q.bits == 8) ? 128 : 0
        scales = q.scales
        if let z = q.zeroPoints {
            let shifted = z.map { $0 - shift }
            zeroPoints = shifted.allSatisfy { $0 == 0 } ? nil : shifted
        } else {
            zeroPoints = nil
        }
        blockRows = q.layout.rows; blockColumns = q.layout.columns
        scaleColumns = q.layout.scaleShape[1]
        bits = q.bits
        isSigned = q.isSigned
        method = q.method
    }

    /// Whether the codes are held two per byte (4 bits or fewer).
    public var isPacked: Bool { CodePacking.isPacked(bits: bits) }

    /// Every code widened to a signed byte, row-major (a copy; the packed form stays).
    public var codes: [Int8] {
        [Int8](unsafeUninitializedCapacity: rows * columns) { out, written in
            if rows * columns > 0 { widen(from: 0, count: rows * columns, into: out.baseAddress!) }
            written = rows * columns
        }
    }

    /// Whether the codes sit one per byte in the file's row-major order (readable in place).
    private var codesInPlace: Bool { !isPacked && streamed == nil }

    /// Codes of elements start ..< start+count (row-major) as signed bytes into `out`.
    func widen(from start: Int, count: Int, into out: UnsafeMutablePointer<Int8>) {
        precondition(start >= 0 && count >= 0 && start + count <= rows * columns, "codes \(start)..<\(start + count) of \(rows * columns)")
        if count == 0 { return }
        if let (form, outputIsRows) = streamed {
            // One code at a time from the batch-1 layout: only small reads (an embedding row) come here.
            for e in 0..<count {
                let r = (start + e) / columns, c = (start + e) % columns
                out[e] = outputIsRows ? form.code(output: r, input: c) : form.code(output: c, input: r)
            }
            return
        }
        if !isPacked {
            wide.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + start, count: count) }
            return
        }
        nibbles.withUnsafeBufferPointer { eqk_widen_nibbles($0.baseAddress!, start, count, isSigned ? 1 : 0, out) }
    }

    /// Calls `body` with every code as a signed byte, row-major: in place, or a temporary
    /// widened copy when packed.
    func withWidenedCodes<R>(_ body: (UnsafePointer<Int8>) throws -> R) rethrows -> R {
        if codesInPlace { return try wide.withUnsafeBufferPointer { try body($0.baseAddress!) } }
        let n = max(1, rows * columns)
        let out = UnsafeMutablePointer<Int8>.allocate(capacity: n)
        defer { out.deallocate() }
        if rows * columns > 0 { widen(from: 0, count: rows * columns, into: out) }
        return try body(out)
    }

    /// Calls `body` with the codes of output channels `outputs` as signed bytes: a pointer to
    /// channel outputs.lowerBound's first code and the leading dimension, so that code (channel
    /// lowerBound + j, input i) is at [j·ld + i] when `outputIsRows` (the matrix is [out, in]),
    /// else at [i·ld + j]. In place, or widened into scratch memory when packed.
    func withCodes<R>(outputs: Range<Int>, outputIsRows: Bool, _ body: (UnsafePointer<Int8>, Int) throws -> R) rethrows -> R {
        let n = outputIsRows ? rows : columns, k = outputIsRows ? columns : rows
        precondition(outputs.lowerBound >= 0 && outputs.upperBound <= n, "channels \(outputs) of \(n)")
        if codesInPlace {
            return try wide.withUnsafeBufferPointer { codes in
                try body(codes.baseAddress! + (outputIsRows ? outputs.lowerBound * k : outputs.lowerBound), outputIsRows ? k : n)
            }
        }
        let nb = outputs.count
        return try ScratchBuffers.shared.withBuffer(of: Int8.self, count: max(1, nb * k)) { tile in
            if outputIsRows {
                widen(from: outputs.lowerBound * k, count: nb * k, into: tile)
                return try body(tile, k)
            }
            for i in 0..<k { widen(from: i * n + outputs.lowerBound, count: nb, into: tile + i * nb) }
            return try body(tile, nb)
        }
    }

    /// The weight rearranged for batch-1 products, made on first use and kept (nil when its
    /// groups do not allow it). `outputIsRows` says which axis holds the output channels; a
    /// layout made now takes its memory from `arena` when given.
    public func streaming(outputIsRows: Bool, arena: PageArena? = nil) -> StreamingQuantizedWeight? {
        streamingLock.withLock {
            if let made = outputIsRows ? streamingFormRows : streamingFormColumns { return made }
            let made = StreamingQuantizedWeight(self, outputIsRows: outputIsRows, arena: arena)
            if outputIsRows { streamingFormRows = .some(made) } else { streamingFormColumns = .some(made) }
            return made
        }
    }

    /// Makes the batch-1 layout for `outputIsRows` the only copy of the codes and frees the
    /// codes as loaded, so that a model prepared for decoding holds its weights once; false,
    /// changing nothing, when the weight has no such layout. Codes then read from that layout
    /// (`streamedForm`), slowly one by one for an embedding row, or by the batch-1 kernels
    /// row after row for several rows (`Linear`). Call it while no forward pass runs. The
    /// layout takes its memory from `arena` when given (and not made before).
    @discardableResult
    public func keepOnlyStreamingForm(outputIsRows: Bool, arena: PageArena? = nil) -> Bool {
        guard let form = streaming(outputIsRows: outputIsRows, arena: arena) else { return false }
        // Under the lock: two layers sharing this weight may ask at once.
        return streamingLock.withLock {
            if let streamed { return streamed.outputIsRows == outputIsRows }
            streamed = (form, outputIsRows)
            wide = []; nibbles = []
            return true
        }
    }

    /// The batch-1 layout for `outputIsRows` when it holds the only copy of the codes (after
    /// `keepOnlyStreamingForm`), or nil.
    public func streamedForm(outputIsRows: Bool) -> StreamingQuantizedWeight? {
        streamed?.outputIsRows == outputIsRows ? streamed?.form : nil
    }

    /// Bytes held in memory: the codes as loaded with their scales and zero points, or the
    /// batch-1 layout that replaced them (other batch-1 layouts not included).
    public var memoryBytes: Int {
        if let streamed { return streamed.form.memoryBytes }
        return wide.count + nibbles.count + 4 * scales.count + 4 * (zeroPoints?.count ?? 0)
    }

    /// Writes rows `rowRange`, columns `columnRange` dequantized into `out` (leading dimension `ld`).
    public func dequantize(rows rowRange: Range<Int>, columns columnRange: Range<Int>,
                           into out: UnsafeMutablePointer<Float>, ld: Int) {
        let hasZeros = zeroPoints != nil
        precondition(rowRange.lowerBound >= 0 && rowRange.upperBound <= rows && columnRange.lowerBound >= 0 && columnRange.upperBound <= columns,
                     "rows \(rowRange), columns \(columnRange) of a \(rows) × \(columns) weight")
        // Packed codes are widened one row at a time; bytes are read in place.
        let inPlace = codesInPlace
        let row = UnsafeMutablePointer<Int8>.allocate(capacity: inPlace ? 1 : max(1, columnRange.count))
        defer { row.deallocate() }
        wide.withUnsafeBufferPointer { wideCodes in
            scales.withUnsafeBufferPointer { scales in
                (zeroPoints ?? []).withUnsafeBufferPointer { zeros in
                for r in rowRange {
                    let src: UnsafePointer<Int8>
                    if !inPlace {
                        widen(from: r * columns + columnRange.lowerBound, count: columnRange.count, into: row)
                        src = UnsafePointer(row) - columnRange.lowerBound
                    } else {
                        src = wideCodes.baseAddress! + r * columns
                    }
                    let dst = out + (r - rowRange.lowerBound) * ld - columnRange.lowerBound
                    let scaleRow = scales.baseAddress! + (r / blockRows) * scaleColumns
                    let zeroRow = hasZeros ? zeros.baseAddress! + (r / blockRows) * scaleColumns : nil
                    if blockColumns == 1 {
                        // One scale per column (Conv1D weights per channel, or groups along rows).
                        if let z = zeroRow {
                            for c in columnRange { dst[c] = (Float(src[c]) - z[c]) * scaleRow[c] }
                        } else {
                            for c in columnRange { dst[c] = Float(src[c]) * scaleRow[c] }
                        }
                    } else {
                        // Runs of columns sharing one scale (rows of an embedding, groups along columns).
                        var c = columnRange.lowerBound
                        while c < columnRange.upperBound {
                            let b = c / blockColumns
                            let end = min(columnRange.upperBound, (b + 1) * blockColumns)
                            let s = scaleRow[b], z = zeroRow?[b] ?? 0
                            for k in c..<end { dst[k] = (Float(src[k]) - z) * s }
                            c = end
                        }
                    }
                }
                }
            }
        }
    }
}

/// A linear layer's weight as the source stores it.
public enum WeightMatrix: Sendable {
    case dense(DenseWeight)
    case quantized(QuantizedWeight)

    public var rows: Int {
        switch self { case .dense(let d): return d.rows; case .quantized(let q): return q.rows }
    }
    public var columns: Int {
        switch self { case .dense(let d): return d.columns; case .quantized(let q): return q.columns }
    }
    /// Bytes the weight takes in memory (0 for a view into a mapped file).
    public var isQuantized: Bool { if case .quantized = self { return true } else { return false } }
}
