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

/// A quantized matrix kept quantized in memory: one signed byte per code, plus the
/// per-block scales and zero points of docs/FORMAT.md §5.2.
///
/// 4-bit codes are widened to a byte each on load (the batch matrix products take bytes;
/// the batch-1 layout, `streaming(outputIsRows:)`, keeps them two per byte), and
/// unsigned 8-bit codes are shifted by -128 together with their zero points, which leaves
/// (q - z) unchanged and lets every code sit in an Int8.
public final class QuantizedWeight: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    public let codes: [Int8]
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
    /// The batch-1 layouts made so far, by orientation (see `streaming(outputIsRows:)`).
    private var streamingForms: [Bool: StreamingQuantizedWeight?] = [:]
    private let streamingLock = Lock()

    public init(_ q: QuantizedTensor) {
        rows = q.shape[0]; columns = q.shape[1]
        let n = rows * columns
        let shift: Int32 = (!q.isSigned && q.bits == 8) ? 128 : 0
        var codes = [Int8](repeating: 0, count: n)
        q.codes.withUnsafeBufferPointer { packed in
            codes.withUnsafeMutableBufferPointer { out in
                for i in 0..<n { out[i] = Int8(truncatingIfNeeded: CodePacking.code(in: packed, at: i, bits: q.bits, signed: q.isSigned) - shift) }
            }
        }
        self.codes = codes
        scales = q.scales
        if let z = q.zeroPoints {
            let shifted = z.map { $0 - Float(shift) }
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

    /// The weight rearranged for batch-1 products, made on first use and kept (nil when its
    /// groups do not allow it). `outputIsRows` says which axis holds the output channels.
    public func streaming(outputIsRows: Bool) -> StreamingQuantizedWeight? {
        streamingLock.withLock {
            if let made = streamingForms[outputIsRows] { return made }
            let made = StreamingQuantizedWeight(self, outputIsRows: outputIsRows)
            streamingForms[outputIsRows] = made
            return made
        }
    }

    /// Bytes held in memory (the codes as loaded; batch-1 layouts not included).
    public var memoryBytes: Int { codes.count + 4 * scales.count + 4 * (zeroPoints?.count ?? 0) }

    /// Writes rows `rowRange`, columns `columnRange` dequantized into `out` (leading dimension `ld`).
    public func dequantize(rows rowRange: Range<Int>, columns columnRange: Range<Int>,
                           into out: UnsafeMutablePointer<Float>, ld: Int) {
        let hasZeros = zeroPoints != nil
        codes.withUnsafeBufferPointer { codes in
            scales.withUnsafeBufferPointer { scales in
                (zeroPoints ?? []).withUnsafeBufferPointer { zeros in
                for r in rowRange {
                    let src = codes.baseAddress! + r * columns
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
