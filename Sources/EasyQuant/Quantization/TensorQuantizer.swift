/// Why a tensor could not be quantized.
public enum QuantizationError: Error, CustomStringConvertible, Equatable {
    case nonFinite(tensor: String, index: Int, value: Float)
    case notMatrix(tensor: String, shape: [Int])

    public var description: String {
        switch self {
        case let .nonFinite(t, i, v):
            return "tensor \(t): element \(i) is \(v); NaN and infinite weights cannot be quantized (fix the model, or keep this tensor in float with --keep '\(t)')"
        case let .notMatrix(t, s):
            return "tensor \(t): shape \(s) is not a matrix; only 2-D tensors are quantized (keep it with --keep '\(t)')"
        }
    }
}

extension QuantizationMethod {
    /// Quantizes a row-major 2-D tensor with blocks `layout`, in two passes over the rows:
    /// the range of every block, then every element's code. Rows are split over `threads`.
    ///
    /// This lives in a protocol extension so that each method gets its own specialised copy
    /// and `code(_:_:)` inlines into the loop. Callers hold the method as an existential
    /// (`any QuantizationMethod`), which would run the unspecialised body with a witness call
    /// per element; `@_specialize` makes the generic entry jump to these copies at run time.
    @_specialize(exported: false, where Self == AbsMax)
    @_specialize(exported: false, where Self == ZeroPoint)
    @_specialize(exported: false, where Self == SymQuant)
    @_specialize(exported: false, where Self == SimQuant)
    public func quantize(_ values: UnsafeBufferPointer<Float>, layout: BlockLayout, name: String = "",
                         threads: Int = 1) throws -> QuantizedTensor {
        let rows = layout.shape[0], cols = layout.shape[1]
        precondition(values.count == rows * cols)
        let scaleShape = layout.scaleShape
        let blockRows = scaleShape[0], blockCols = scaleShape[1]
        var minima = [Float](repeating: .infinity, count: blockRows * blockCols)
        var maxima = [Float](repeating: -.infinity, count: blockRows * blockCols)

        // Pass 1: block ranges. Work is split by block rows so no two threads share a block.
        let base = values.baseAddress
        var badIndex = Int.max
        let lock = Lock()
        minima.withUnsafeMutableBufferPointer { mins in
            maxima.withUnsafeMutableBufferPointer { maxs in
                Parallel.forRanges(blockRows, threads: threads, minimumChunk: max(1, 4096 / max(1, layout.rows * cols))) { blockRange in
                    var firstBad = Int.max
                    for br in blockRange {
                        let r0 = br * layout.rows, r1 = min(rows, r0 + layout.rows)
                        let mrow = mins.baseAddress! + br * blockCols
                        let xrow = maxs.baseAddress! + br * blockCols
                        for r in r0..<r1 {
                            let row = base! + r * cols
                            if layout.columns == 1 {
                                for c in 0..<cols {
                                    let v = row[c]
                                    mrow[c] = Swift.min(mrow[c], v)
                                    xrow[c] = Swift.max(xrow[c], v)
                                }
                            } else {
                                for bc in 0..<blockCols {
                                    var lo = mrow[bc], hi = xrow[bc]
                                    for c in (bc * layout.columns)..<Swift.min(cols, (bc + 1) * layout.columns) {
                                        lo = Swift.min(lo, row[c]); hi = Swift.max(hi, row[c])
                                    }
                                    mrow[bc] = lo; xrow[bc] = hi
                                }
                            }
                            // min/max silently skip NaN; infinities show up in the range. Check the row.
                            if firstBad == Int.max {
                                for c in 0..<cols where !row[c].isFinite { firstBad = r * cols + c; break }
                            }
                        }
                    }
                    if firstBad != Int.max { lock.withLock { badIndex = Swift.min(badIndex, firstBad) } }
                }
            }
        }
        if badIndex != Int.max { throw QuantizationError.nonFinite(tensor: name, index: badIndex, value: values[badIndex]) }

        // Block parameters.
        var params = [BlockParameters]()
        params.reserveCapacity(minima.count)
        for i in 0..<minima.count {
            // An empty block (zero-size tensor) never has codes; give it harmless parameters.
            let lo = minima[i].isFinite ? minima[i] : 0, hi = maxima[i].isFinite ? maxima[i] : 0
            params.append(parameters(minimum: lo, maximum: hi))
        }

        // Pass 2: codes, one byte each (two's complement for signed), packed afterwards if narrow.
        var unpacked = [UInt8](repeating: 0, count: rows * cols)
        unpacked.withUnsafeMutableBufferPointer { out in
            params.withUnsafeBufferPointer { p in
                Parallel.forRanges(rows, threads: threads, minimumChunk: max(1, 16384 / max(1, cols))) { rowRange in
                    // Bounds were fixed above (rows × cols values, blockRows × blockCols
                    // parameters); inside a row the offsets stay below cols, so the inner
                    // loops use wrapping arithmetic and run without per-element checks.
                    for r in rowRange {
                        let row = base! + r * cols
                        let dst = out.baseAddress! + r * cols
                        let prow = p.baseAddress! + (r / layout.rows) * blockCols
                        if layout.columns == 1 {
                            var c = 0
                            while c < cols { dst[c] = UInt8(truncatingIfNeeded: code(row[c], prow[c])); c &+= 1 }
                        } else {
                            for bc in 0..<blockCols {
                                let parameters = prow[bc]
                                var c = bc &* layout.columns
                                let end = Swift.min(cols, c &+ layout.columns)
                                while c < end { dst[c] = UInt8(truncatingIfNeeded: code(row[c], parameters)); c &+= 1 }
                            }
                        }
                    }
                }
            }
        }

        return QuantizedTensor(
            shape: layout.shape, method: Self.name, bits: bits, isSigned: isSigned, isSymmetric: isSymmetric,
            layout: layout, codes: CodePacking.pack(unpacked, bits: bits),
            scales: params.map(\.scale), zeroPoints: isSymmetric ? nil : params.map(\.zeroPoint))
    }
}
