/// The keys and values of the tokens seen so far, per layer, for incremental decoding.
///
/// Rows are `kvSize` wide (key/value heads × head size, which grouped-query attention makes
/// narrower than the embedding). With a `KVQuantization`, each new row is quantized as the
/// cache would store it (codes, the value vectors' ranges, the outliers kept exactly) and
/// decoded once, when it is appended: attention then reads the decoded rows in place on
/// every later step, and the numbers it sees are those `KVQuantization.roundTrip` gives in a
/// whole-window pass. `bytesPerToken` is what the quantized cache stores per token.
public final class KVCache {
    public let layers: Int
    /// Values per key (and per value) row.
    public let width: Int
    public let capacity: Int
    public let quantization: KVQuantization?
    /// Tokens held (all layers hold the same number once a step is committed).
    public private(set) var count = 0
    /// Keys and values per layer, [capacity, width].
    private let keys: [UnsafeMutablePointer<Float>]
    private let values: [UnsafeMutablePointer<Float>]
    /// What the quantization kept exactly, over all layers and rows.
    private let tally = KVQuantization.Tally()

    public init(config: ModelConfig, quantization: KVQuantization? = nil, capacity: Int? = nil) {
        layers = config.layerCount
        width = config.kvSize
        self.capacity = min(capacity ?? config.contextLength, config.contextLength)
        self.quantization = quantization
        let n = max(1, self.capacity * width)
        keys = (0..<layers).map { _ in .allocate(capacity: n) }
        values = (0..<layers).map { _ in .allocate(capacity: n) }
    }

    deinit { (keys + values).forEach { $0.deallocate() } }

    /// Bytes the cache stores per token, over all layers: f32, or codes + value ranges +
    /// outliers at the rate seen so far.
    public var bytesPerToken: Double {
        guard let q = quantization else { return Double(layers * 2 * width * 4) }
        return Double(layers) * q.bytesPerTokenPerLayer(width: width, tally: tally)
    }

    /// Stores the keys and values of `n` new tokens of `layer` (row t at `newKeys + t·ld`)
    /// at positions count ..< count+n, quantized and decoded if the cache is quantized, and
    /// returns the keys and values of positions 0 ..< count+n, [count+n, width] each.
    func append(layer l: Int, keys newKeys: UnsafePointer<Float>, values newValues: UnsafePointer<Float>, ld: Int,
                tokens n: Int) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        precondition(count + n <= capacity, "the KV cache holds \(capacity) tokens")
        let k = keys[l] + count * width, v = values[l] + count * width
        for t in 0..<n {
            (k + t * width).update(from: newKeys + t * ld, count: width)
            (v + t * width).update(from: newValues + t * ld, count: width)
        }
        quantization?.roundTrip(keys: k, values: v, ld: width, tokens: n, width: width, layer: l, threads: 1, tally: tally)
        return (UnsafePointer(keys[l]), UnsafePointer(values[l]))
    }

    /// Makes the `n` tokens appended to every layer part of the cache.
    func commit(_ n: Int) { count += n }
}
