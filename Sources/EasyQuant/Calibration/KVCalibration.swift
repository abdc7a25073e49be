/// Calibrates the per-channel key ranges that KV-cache quantization needs (`KVQuantization`):
/// for every layer and key channel, the P/2 and 100 − P/2 percentiles of the keys seen over
/// the calibration windows, for each outlier level P (0 gives min and max).
///
/// Keys are what the cache stores: after the rotary embedding, kv heads × head size wide.
/// At most `maximumRows` token rows per layer are kept (every n-th token), which bounds
/// memory at layers × maximumRows × key width floats.
public final class KVCalibration: ForwardObserver, ModelPreparation, @unchecked Sendable {
    public let maximumRows: Int
    /// Values per key row.
    private let width: Int
    private var keys: [[Float]]
    private var rows: [Int]
    private let stride: Int

    /// `expectedTokens` (windows × length) sets the sampling stride.
    public init(layers: Int, width: Int, expectedTokens: Int, maximumRows: Int = 4096) {
        self.maximumRows = maximumRows
        self.width = width
        keys = Array(repeating: [], count: layers)
        rows = Array(repeating: 0, count: layers)
        stride = max(1, (expectedTokens + maximumRows - 1) / maximumRows)
    }

    private var seen: [Int] = []

    public func keysAndValues(layer: Int, keys k: UnsafePointer<Float>, values: UnsafePointer<Float>, ld: Int, width w: Int, tokens: Int) {
        precondition(w == width, "key rows of \(w) values, expected \(width)")
        if seen.count < keys.count { seen = Array(repeating: 0, count: keys.count) }
        for t in 0..<tokens {
            defer { seen[layer] += 1 }
            guard seen[layer] % stride == 0, rows[layer] < maximumRows else { continue }
            keys[layer].append(contentsOf: UnsafeBufferPointer(start: k + t * ld, count: w))
            rows[layer] += 1
        }
    }

    /// [layer] → (low, high), each [levels × E] row-major, level order `KVQuantization.outlierLevels`.
    public lazy var ranges: [(low: [Float], high: [Float])] = keys.indices.map { l in
        let n = rows[l], e = width
        let levels = KVQuantization.outlierLevels
        var low = [Float](repeating: 0, count: levels.count * e)
        var high = [Float](repeating: 0, count: levels.count * e)
        var column = [Float](repeating: 0, count: n)
        for c in 0..<e {
            for r in 0..<n { column[r] = keys[l][r * e + c] }
            column.sort()
            for (i, p) in levels.enumerated() {
                let cut = Int((p / 200 * Double(n)).rounded(.down))
                low[i * e + c] = column[min(cut, n - 1)]
                high[i * e + c] = column[max(0, n - 1 - cut)]
            }
        }
        return (low, high)
    }

    // MARK: ModelPreparation: adds the ranges to the file, changes no weight.

    public func changes(_ name: String) -> Bool { false }
    public func transform(_ name: String, _ values: [Float]) -> [Float] { values }
    public var extraTensors: [ExtraTensor] {
        ranges.enumerated().flatMap { l, r -> [ExtraTensor] in
            let names = KVQuantization.keyRangeNames(layer: l)
            let shape = [KVQuantization.outlierLevels.count, width]
            return [ExtraTensor(name: names.low, shape: shape, values: r.low), ExtraTensor(name: names.high, shape: shape, values: r.high)]
        }
    }
    public var parameters: [(String, JSONValue)] {
        [("kv_outlier_levels", .array(KVQuantization.outlierLevels.map { .double($0) })), ("kv_calibration_rows", JSONValue(rows.first ?? 0))]
    }

    /// The KV quantization these ranges give.
    public func quantization(bits: Int, outlierPercent: Double, heads: Int) throws -> KVQuantization {
        guard let level = KVQuantization.outlierLevels.firstIndex(where: { abs($0 - outlierPercent) < 1e-9 }) else {
            throw KVQuantization.Failure.unknownLevel(outlierPercent)
        }
        let e = width
        return KVQuantization(bits: bits, outlierPercent: outlierPercent, heads: heads,
                              keyLow: ranges.map { Array($0.low[(level * e)..<((level + 1) * e)]) },
                              keyHigh: ranges.map { Array($0.high[(level * e)..<((level + 1) * e)]) })
    }
}

/// Several preparations applied in order; their extra tensors and parameters concatenated.
public struct CombinedPreparation: ModelPreparation {
    public let parts: [any ModelPreparation]
    public init(_ parts: [any ModelPreparation]) { self.parts = parts }
    public func changes(_ name: String) -> Bool { parts.contains { $0.changes(name) } }
    public func transform(_ name: String, _ values: [Float]) -> [Float] {
        parts.reduce(values) { $1.changes(name) ? $1.transform(name, $0) : $0 }
    }
    public var extraTensors: [ExtraTensor] { parts.flatMap(\.extraTensors) }
    public var parameters: [(String, JSONValue)] { parts.flatMap(\.parameters) }
}
