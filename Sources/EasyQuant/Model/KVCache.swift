/// The keys and values of the tokens seen so far, per layer, for incremental decoding.
///
/// Without quantization it holds f32. With a `KVQuantization` it holds what such a cache
/// would: one byte-wide code per key and value element (b bits used), each value vector's
/// range, and the outliers kept exactly; attention reads them dequantized. The numbers
/// attention sees are the same as `KVQuantization.roundTrip` gives in a whole-window pass.
public final class KVCache {
    public let layers: Int
    public let embedding: Int
    public let capacity: Int
    public let quantization: KVQuantization?
    /// Tokens held (all layers hold the same number once a step is committed).
    public private(set) var count = 0

    /// f32 keys and values per layer, [capacity, E] (without quantization).
    private var keys: [UnsafeMutablePointer<Float>] = []
    private var values: [UnsafeMutablePointer<Float>] = []
    private var keyCodes: [[UInt8]]
    private var valueCodes: [[UInt8]]
    /// Per layer, per token and head: the (low, high) range of the value vector.
    private var valueRanges: [[Float]]
    /// Per layer: element index (token · E + channel) → exact value, for keys and values.
    private var keyOutliers: [[Int: Float]]
    private var valueOutliers: [[Int: Float]]
    /// Dequantized keys and values of the layer being computed (with quantization).
    private let scratchKeys: UnsafeMutablePointer<Float>
    private let scratchValues: UnsafeMutablePointer<Float>

    public init(config: GPT2Config, quantization: KVQuantization? = nil, capacity: Int? = nil) {
        layers = config.layerCount
        embedding = config.embeddingSize
        self.capacity = min(capacity ?? config.contextLength, config.contextLength)
        self.quantization = quantization
        let n = self.capacity * embedding
        let quantized = quantization != nil
        if !quantized {
            keys = (0..<layers).map { _ in .allocate(capacity: n) }
            values = (0..<layers).map { _ in .allocate(capacity: n) }
        }
        scratchKeys = .allocate(capacity: quantized ? n : 1)
        scratchValues = .allocate(capacity: quantized ? n : 1)
        keyCodes = Array(repeating: quantized ? [UInt8](repeating: 0, count: n) : [], count: layers)
        valueCodes = keyCodes
        valueRanges = Array(repeating: quantized ? [Float](repeating: 0, count: self.capacity * 2 * config.headCount) : [], count: layers)
        keyOutliers = Array(repeating: [:], count: layers)
        valueOutliers = keyOutliers
    }

    deinit {
        (keys + values + [scratchKeys, scratchValues]).forEach { $0.deallocate() }
    }

    /// Bytes the cache holds per token, over all layers (f32, or codes + value ranges + outliers).
    public var bytesPerToken: Double {
        guard let q = quantization else { return Double(layers * 2 * embedding * 4) }
        let outliers = count == 0 ? 0 : Double(keyOutliers.reduce(0) { $0 + $1.count } + valueOutliers.reduce(0) { $0 + $1.count }) / Double(count)
        return Double(layers) * (2 * Double(embedding * q.bits) / 8 + Double(q.heads * 8)) + 6 * outliers
    }

    /// Stores the keys and values of `n` new tokens of `layer` (rows of qkv [n, 3E]) at
    /// positions count ..< count+n, and returns the dequantized keys and values of positions
    /// 0 ..< count+n, [count+n, E] each, valid until the next call.
    func append(layer l: Int, qkv: UnsafePointer<Float>, tokens n: Int) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        let e = embedding
        precondition(count + n <= capacity, "the KV cache holds \(capacity) tokens")
        guard let q = quantization else {
            for t in 0..<n {
                (keys[l] + (count + t) * e).update(from: qkv + t * 3 * e + e, count: e)
                (values[l] + (count + t) * e).update(from: qkv + t * 3 * e + 2 * e, count: e)
            }
            return (UnsafePointer(keys[l]), UnsafePointer(values[l]))
        }
        let d = e / q.heads
        for t in 0..<n {
            let row = count + t
            for c in 0..<e {
                let x = qkv[t * 3 * e + e + c]
                let (lo, hi) = (q.keyLow[l][c], q.keyHigh[l][c])
                if q.outlierPercent > 0, x < lo || x > hi { keyOutliers[l][row * e + c] = x }
                keyCodes[l][row * e + c] = KVQuantization.encode(x, low: lo, high: hi, levels: q.levels)
            }
            for h in 0..<q.heads {
                var vector = Array(UnsafeBufferPointer(start: qkv + t * 3 * e + 2 * e + h * d, count: d))
                let (lo, hi, outliers) = q.valueRange(&vector)
                valueRanges[l][(row * q.heads + h) * 2] = lo
                valueRanges[l][(row * q.heads + h) * 2 + 1] = hi
                for i in 0..<d {
                    if outliers.contains(i) { valueOutliers[l][row * e + h * d + i] = vector[i] }
                    valueCodes[l][row * e + h * d + i] = KVQuantization.encode(vector[i], low: lo, high: hi, levels: q.levels)
                }
            }
        }
        // Dequantize everything attention will read.
        for row in 0..<(count + n) {
            for c in 0..<e {
                let i = row * e + c
                scratchKeys[i] = keyOutliers[l][i] ?? KVQuantization.decode(keyCodes[l][i], low: q.keyLow[l][c], high: q.keyHigh[l][c], levels: q.levels)
                let h = c / d
                let lo = valueRanges[l][(row * q.heads + h) * 2], hi = valueRanges[l][(row * q.heads + h) * 2 + 1]
                scratchValues[i] = valueOutliers[l][i] ?? KVQuantization.decode(valueCodes[l][i], low: lo, high: hi, levels: q.levels)
            }
        }
        return (UnsafePointer(scratchKeys), UnsafePointer(scratchValues))
    }

    /// Makes the `n` tokens appended to every layer part of the cache.
    func commit(_ n: Int) { count += n }
}
