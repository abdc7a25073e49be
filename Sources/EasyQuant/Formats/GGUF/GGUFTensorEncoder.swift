/// One tensor encoded for GGUF, with what the encoding cost.
public struct GGUFEncodedTensor: Sendable {
    public let plan: GGUFTensorPlan
    /// The tensor's data as it goes into the file: `plan.type`'s blocks, row after row.
    public let bytes: [UInt8]
    /// The largest |written − reference| over the tensor, where "written" is what ggml's
    /// dequantization (`GGUFFile.floats(of:threads:)`) gives back from `bytes` and
    /// "reference" is the `QuantizedTensor.dequantized()` value (the .eqm's own) or, for
    /// float input, the float. For an exact mapping this is the error the f16 rounding of the
    /// steps (and Q4_1's minimum) adds; for the other routes, that of requantizing or
    /// converting. Differences are taken in Double.
    public let maxAbsError: Double
    /// The root mean square of the same differences.
    public let rmsError: Double
}

/// Turns EasyQuant tensors into GGUF blocks (`GGUFTensorPlan` says which and how) and
/// measures the error each adds. Each call is independent and thread-safe, so a caller may
/// encode several tensors in parallel and hand them to `GGUFWriter` in order.
///
/// Work goes row by row: one row of reference values and one of decoded values are all the
/// memory used beyond the output bytes.
public enum GGUFTensorEncoder {
    /// Encodes a quantized tensor as `GGUFTensorPlan(quantized:name:request:)` plans it.
    public static func encode(_ q: QuantizedTensor, name: String, request: GGUFTypeRequest = .auto) throws -> GGUFEncodedTensor {
        let plan = try GGUFTensorPlan(quantized: q, name: name, request: request)
        var mapping: GGUFCodeMapping?
        if plan.route == .exact, case .success(let found) = GGUFCodeMapping.find(for: q) { mapping = found }
        let rows = q.shape[0], cols = q.shape[1]
        return try encodeRows(plan, rows: rows, rowLength: cols) { r, reference, out in
            q.dequantizeRows(r..<(r + 1), into: reference)
            if let i = (0..<cols).first(where: { !reference[$0].isFinite }) {
                // Finite steps and zero points can still multiply past Float's range.
                throw GGUFConversionError(tensor: name, problem: .nonFinite(index: r * cols + i, value: reference[i]))
            }
            if let mapping {
                mapping.encodeRow(q, r, into: out)
                return nil
            }
            return GGUFBlockEncoder.encode(plan.type, reference, count: cols, into: out)
        }
    }

    /// Encodes float values (row-major, `shape` in PyTorch order) as `type`: F32, F16, BF16,
    /// or Q8_0, Q4_0, Q4_1 through ggml's reference quantizers.
    public static func encode(floats: UnsafeBufferPointer<Float>, shape: [Int], name: String,
                              as type: GGMLType) throws -> GGUFEncodedTensor {
        let plan = try GGUFTensorPlan(floats: name, shape: shape, as: type)
        let rowLength = shape[shape.count - 1], elements = elementCount(shape) ?? 0
        guard floats.count == elements else {
            throw GGUFConversionError(tensor: name, problem: .wrongCount(expected: elements, values: floats.count))
        }
        if let i = floats.firstIndex(where: { !$0.isFinite }) {
            throw GGUFConversionError(tensor: name, problem: .nonFinite(index: i, value: floats[i]))
        }
        return try encodeRows(plan, rows: elements / rowLength, rowLength: rowLength) { r, reference, out in
            reference.update(from: floats.baseAddress! + r * rowLength, count: rowLength)
            return GGUFBlockEncoder.encode(type, reference, count: rowLength, into: out)
        }
    }

    /// `encode(floats:shape:name:as:)` for an array.
    public static func encode(floats: [Float], shape: [Int], name: String, as type: GGMLType) throws -> GGUFEncodedTensor {
        try floats.withUnsafeBufferPointer { try encode(floats: $0, shape: shape, name: name, as: type) }
    }

    /// Runs `fill` for every row (it writes the row's reference values into its second
    /// argument and the row's blocks into its third, returning a failure if a value or step
    /// does not fit), decodes each row back with the reader's decoder and measures it.
    private static func encodeRows(
        _ plan: GGUFTensorPlan, rows: Int, rowLength: Int,
        _ fill: (Int, UnsafeMutablePointer<Float>, UnsafeMutableRawPointer) throws -> GGUFBlockEncoder.Failure?
    ) throws -> GGUFEncodedTensor {
        let type = plan.type
        let blocksPerRow = rowLength / type.blockSize
        let rowBytes = blocksPerRow * type.bytesPerBlock  // the plan checked that the whole tensor's bytes fit
        var bytes = [UInt8](repeating: 0, count: rows * rowBytes)
        var reference = [Float](repeating: 0, count: rowLength), decoded = [Float](repeating: 0, count: rowLength)
        var maxAbs = 0.0, sumOfSquares = 0.0
        try bytes.withUnsafeMutableBytes { out in
            try reference.withUnsafeMutableBufferPointer { ref in
                try decoded.withUnsafeMutableBufferPointer { dec in
                    for r in 0..<rows {
                        let row = out.baseAddress! + r * rowBytes
                        if let failure = try fill(r, ref.baseAddress!, row) {
                            throw error(failure, plan: plan, row: r, rowLength: rowLength, values: ref)
                        }
                        if let block = GGUFBlockDecoder.decode(type, row, blocks: blocksPerRow, into: dec.baseAddress!) {
                            // The encoders refuse infinities, so this is only reached by a bug.
                            throw GGUFConversionError(tensor: plan.name, problem: .scaleOverflow(
                                block: r * blocksPerRow + block, value: .infinity, type: type))
                        }
                        for i in 0..<rowLength {
                            let e = abs(Double(dec[i]) - Double(ref[i]))
                            maxAbs = Swift.max(maxAbs, e)
                            sumOfSquares += e * e
                        }
                    }
                }
            }
        }
        let count = Double(rows) * Double(rowLength)
        return GGUFEncodedTensor(plan: plan, bytes: bytes, maxAbsError: maxAbs, rmsError: (sumOfSquares / count).squareRoot())
    }

    /// The error for an encoder failure in row `row`, with tensor-wide indices.
    private static func error(_ failure: GGUFBlockEncoder.Failure, plan: GGUFTensorPlan, row: Int, rowLength: Int,
                              values: UnsafeMutableBufferPointer<Float>) -> GGUFConversionError {
        switch failure {
        case .valueOverflow(let i):
            return GGUFConversionError(tensor: plan.name, problem: .valueOverflow(index: row * rowLength + i, value: values[i], type: plan.type))
        case let .scaleOverflow(block, value):
            return GGUFConversionError(tensor: plan.name, problem: .scaleOverflow(
                block: row * (rowLength / plan.type.blockSize) + block, value: Double(value), type: plan.type))
        }
    }
}
