import Foundation

/// Quantization of the attention keys and values as a cache holds them (KVQuant, Hooper et
/// al. 2024), with simquant's asymmetric formula: s = (2^b − 1)/(hi − lo), z = round(−lo·s),
/// q = clamp(round(x·s + z), 0, 2^b − 1), x̂ = (q − z)/s.
///
/// - Keys per channel, with each channel's range [lo, hi] calibrated at conversion time
///   (keys have a few channels with large magnitudes in every token, so per-channel ranges fit).
/// - Values per token and head, with the range computed on the fly from the vector itself.
/// - Dense-and-sparse outliers (`outlierPercent` P > 0): for values, the largest P% of
///   magnitudes of each vector are kept exactly and the range is taken over the rest; for
///   keys, as KVQuant does, the thresholds are per channel and calibrated offline: the
///   range is the channel's P/2 and 100 − P/2 percentiles, and what falls outside is kept.
public struct KVQuantization: Sendable {
    public var bits: Int
    public var outlierPercent: Double
    /// Key/value heads: each value vector (one head of one token) gets its own range.
    public var heads: Int
    /// Per layer: the calibrated key range of each channel.
    public var keyLow: [[Float]]
    public var keyHigh: [[Float]]

    /// The outlier levels (percent) for which calibration stores key ranges.
    public static let outlierLevels: [Double] = [0, 0.1, 0.5, 1, 2, 5]

    public init(bits: Int, outlierPercent: Double, heads: Int, keyLow: [[Float]], keyHigh: [[Float]]) {
        precondition((2...8).contains(bits))
        self.bits = bits; self.outlierPercent = outlierPercent; self.heads = heads
        self.keyLow = keyLow; self.keyHigh = keyHigh
    }

    var levels: Float { Float((1 << bits) - 1) }

    /// Counts of what was stored, for the bytes-per-token report.
    public final class Tally: @unchecked Sendable {
        private let lock = Lock()
        public private(set) var vectors = 0
        public private(set) var keyOutliers = 0
        public private(set) var valueOutliers = 0
        public init() {}
        func add(keys: Int, values: Int, vectors v: Int) {
            lock.withLock { keyOutliers += keys; valueOutliers += values; vectors += v }
        }
    }

    /// Quantizes and dequantizes one token's key row (E values) of `layer` in place;
    /// returns how many values were kept exactly.
    @discardableResult
    public func roundTripKey(_ row: UnsafeMutablePointer<Float>, width: Int, layer: Int) -> Int {
        var kept = 0
        let lo = keyLow[layer], hi = keyHigh[layer]
        for c in 0..<width {
            let x = row[c]
            if outlierPercent > 0, x < lo[c] || x > hi[c] { kept += 1; continue }
            row[c] = Self.decode(Self.encode(x, low: lo[c], high: hi[c], levels: levels), low: lo[c], high: hi[c], levels: levels)
        }
        return kept
    }

    /// Quantizes and dequantizes one token's value row (E values, `heads` vectors) in place;
    /// returns how many values were kept exactly.
    @discardableResult
    public func roundTripValue(_ row: UnsafeMutablePointer<Float>, width: Int) -> Int {
        let d = width / heads
        var kept = 0
        var vector = [Float](repeating: 0, count: d)
        for h in 0..<heads {
            let v = row + h * d
            for i in 0..<d { vector[i] = v[i] }
            let (lo, hi, outliers) = valueRange(&vector)
            kept += outliers.count
            for i in 0..<d where !outliers.contains(i) {
                v[i] = Self.decode(Self.encode(v[i], low: lo, high: hi, levels: levels), low: lo, high: hi, levels: levels)
            }
        }
        return kept
    }

    /// A value vector's quantization range over its inliers, and the indices of its outliers
    /// (the largest P% of magnitudes).
    func valueRange(_ v: inout [Float]) -> (low: Float, high: Float, outliers: Set<Int>) {
        let d = v.count
        let count = Int((outlierPercent / 100 * Double(d)).rounded(.up))
        var outliers = Set<Int>()
        if count > 0 {
            let order = v.indices.sorted { abs(v[$0]) > abs(v[$1]) || (abs(v[$0]) == abs(v[$1]) && $0 < $1) }
            outliers = Set(order.prefix(min(count, d)))
        }
        var lo = Float.infinity, hi = -Float.infinity
        for i in 0..<d where !outliers.contains(i) { lo = min(lo, v[i]); hi = max(hi, v[i]) }
        if lo > hi { (lo, hi) = (0, 0) }
        return (lo, hi, outliers)
    }

    /// simquant's code of x for the range [low, high]: s = levels/(high − low), z = round(−low·s).
    @inline(__always) static func encode(_ x: Float, low: Float, high: Float, levels: Float) -> UInt8 {
        let range = high - low
        guard range > 0 else { return 0 }
        let s = levels / range
        let z = (-low * s).rounded(.toNearestOrEven)
        return UInt8(min(max((x * s + z).rounded(.toNearestOrEven), 0), levels))
    }

    /// x̂ = (q − z)/s; a zero range decodes to its one value.
    @inline(__always) static func decode(_ q: UInt8, low: Float, high: Float, levels: Float) -> Float {
        let range = high - low
        guard range > 0 else { return low }
        let s = levels / range
        let z = (-low * s).rounded(.toNearestOrEven)
        return (Float(q) - z) / s
    }

    /// Rounds `tokens` rows of keys and values (row t at `keys + t·ld`, `width` values: all
    /// key/value heads) in place, as a cache would hold them.
    func roundTrip(keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>, ld: Int, tokens: Int, width: Int,
                   layer: Int, threads: Int, tally: Tally?) {
        Parallel.forRanges(tokens, threads: threads, minimumChunk: 16) { range in
            var keptKeys = 0, keptValues = 0
            for t in range {
                keptKeys += roundTripKey(keys + t * ld, width: width, layer: layer)
                keptValues += roundTripValue(values + t * ld, width: width)
            }
            tally?.add(keys: keptKeys, values: keptValues, vectors: range.count)
        }
    }

    /// Bytes a cache of this kind holds per token per layer for rows of `width` values:
    /// codes for keys and values, a scale and zero point (f32 each) per value vector, and
    /// 6 bytes (u16 index + f32) per outlier at the rate `tally` counted.
    public func bytesPerTokenPerLayer(width: Int, tally: Tally?) -> Double {
        let codes = 2 * Double(width * bits) / 8
        let valueParameters = Double(heads * 8)
        let outliers = tally.map { $0.vectors == 0 ? 0 : Double($0.keyOutliers + $0.valueOutliers) / Double($0.vectors) } ?? 0
        return codes + valueParameters + 6 * outliers
    }

    // MARK: Calibration storage

    /// Names of the extra tensors that hold the calibrated key ranges of `layer`: [levels, key width].
    public static func keyRangeNames(layer: Int) -> (low: String, high: String) {
        ("eqm.kv.h.\(layer).key_low", "eqm.kv.h.\(layer).key_high")
    }

    /// Why KV quantization cannot be set up.
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case notCalibrated(model: String)
        case unknownLevel(Double)
        case badRanges(model: String, tensor: String, shape: [Int], expected: [Int])
        public var description: String {
            switch self {
            case .notCalibrated(let m):
                return "\(m): no calibrated key ranges for --kv-bits; convert the model with --calib FILE (any method) to record them"
            case let .badRanges(m, t, shape, expected):
                return "\(m): \(t) has shape \(shape) but this model's keys need \(expected); the key ranges do not belong to this model, so convert it again with --calib"
            case .unknownLevel(let p):
                return "--kv-outliers \(p) is not a calibrated level; use one of \(KVQuantization.outlierLevels.map { Format.fixed($0, 1) }.joined(separator: ", "))"
            }
        }
    }

    /// The settings for `bits` and `outlierPercent` from the key ranges a source carries.
    public static func load(from source: any WeightSource, layers: Int, heads: Int, width: Int, bits: Int,
                            outlierPercent: Double) throws -> KVQuantization {
        guard let level = outlierLevels.firstIndex(where: { abs($0 - outlierPercent) < 1e-9 }) else {
            throw Failure.unknownLevel(outlierPercent)
        }
        var low: [[Float]] = [], high: [[Float]] = []
        for l in 0..<layers {
            let names = keyRangeNames(layer: l)
            guard let shape = source.shapes[names.low], shape.count == 2, shape[0] == outlierLevels.count,
                  source.shapes[names.high] == shape else {
                throw Failure.notCalibrated(model: source.origin)
            }
            guard shape[1] == width else {
                throw Failure.badRanges(model: source.origin, tensor: names.low, shape: shape, expected: [outlierLevels.count, width])
            }
            let e = shape[1]
            low.append(Array(try source.floats(names.low)[(level * e)..<((level + 1) * e)]))
            high.append(Array(try source.floats(names.high)[(level * e)..<((level + 1) * e)]))
        }
        return KVQuantization(bits: bits, outlierPercent: outlierPercent, heads: heads, keyLow: low, keyHigh: high)
    }
}
