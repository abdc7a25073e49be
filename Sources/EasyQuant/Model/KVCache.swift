/// The keys and values of the tokens seen so far, per layer, for incremental decoding.
///
/// A token's keys are `kvSize` values (key/value heads × head size, which grouped-query
/// attention makes narrower than the embedding), and so are its values. The cache holds them
/// head by head: each key/value head's rows are one contiguous run [capacity, head size],
/// which decoding attention reads front to back (a row of all heads would make it read one
/// head's slice out of every row). With a `KVQuantization`, each new row is quantized as the
/// cache would store it (codes, the value vectors' ranges, the outliers kept exactly) and
/// decoded once, when it is appended: attention then reads the decoded rows in place on
/// every later step, and the numbers it sees are those `KVQuantization.roundTrip` gives in a
/// whole-window pass. `bytesPerToken` is what the quantized cache stores per token.
public final class KVCache {
    public let layers: Int
    /// Values per key (and per value) row: key/value heads × head size.
    public let width: Int
    public let heads: Int
    public let headSize: Int
    public let capacity: Int
    public let quantization: KVQuantization?
    /// Tokens held (all layers hold the same number once a step is committed).
    public private(set) var count = 0
    /// Keys and values per layer, [heads, capacity, headSize].
    private let keys: [UnsafeMutablePointer<Float>]
    private let values: [UnsafeMutablePointer<Float>]
    /// What the quantization kept exactly, over all layers and rows.
    private let tally = KVQuantization.Tally()

    public init(config: ModelConfig, quantization: KVQuantization? = nil, capacity: Int? = nil) {
        layers = config.layerCount
        width = config.kvSize
        heads = config.kvHeadCount
        headSize = config.headSize
        self.capacity = min(capacity ?? config.contextLength, config.contextLength)
        self.quantization = quantization
        let n = max(1, self.capacity * width)
        keys = (0..<layers).map { _ in .allocate(capacity: n) }
        values = (0..<layers).map { _ in .allocate(capacity: n) }
    }

    deinit { (keys + values).forEach { $0.deallocate() } }

    /// Touches the memory of positions 0 ..< min(tokens, capacity) in every layer, so that
    /// appending them later takes no page faults (a head's run of rows reaches a new page every
    /// 4096 / (4 · head size) tokens: for SmolLM2-135M, 30 layers × 3 heads × keys and values,
    /// that is 180 runs over 16 tokens, about 11 faults per decoded token). Call it before the
    /// first append.
    public func reserve(tokens: Int) {
        precondition(count == 0, "reserve the KV cache before appending to it")
        let n = min(max(0, tokens), capacity), stride = capacity * headSize
        for l in 0..<layers {
            for h in 0..<heads {
                (keys[l] + h * stride).initialize(repeating: 0, count: n * headSize)
                (values[l] + h * stride).initialize(repeating: 0, count: n * headSize)
            }
        }
    }

    /// Bytes the cache stores per token, over all layers: f32, or codes + value ranges +
    /// outliers at the rate seen so far.
    public var bytesPerToken: Double {
        guard let q = quantization else { return Double(layers * 2 * width * 4) }
        return Double(layers) * q.bytesPerTokenPerLayer(width: width, tally: tally)
    }

    /// Where attention finds the keys and values of positions 0 ..< count+n: key/value head h's
    /// row t at `keys + h·headStride + t·ld` (and the same for values).
    struct Held {
        let keys: UnsafePointer<Float>
        let values: UnsafePointer<Float>
        let ld: Int
        let headStride: Int
    }

    /// Stores the keys and values of `n` new tokens of `layer` (row t at `newKeys + t·ld`,
    /// all heads side by side) at positions count ..< count+n, quantized and decoded in place
    /// first if the cache is quantized, and says where positions 0 ..< count+n are. When the
    /// cache held nothing before, that is the new rows themselves (row-major, as a window
    /// without a cache reads them); otherwise the cache's runs per head.
    func append(layer l: Int, keys newKeys: UnsafeMutablePointer<Float>, values newValues: UnsafeMutablePointer<Float>, ld: Int,
                tokens n: Int) -> Held {
        precondition(count + n <= capacity, "the KV cache holds \(capacity) tokens")
        quantization?.roundTrip(keys: newKeys, values: newValues, ld: ld, tokens: n, width: width, layer: l, threads: 1, tally: tally)
        let d = headSize, stride = capacity * d
        for h in 0..<heads {
            let k = keys[l] + h * stride + count * d, v = values[l] + h * stride + count * d
            for t in 0..<n {
                (k + t * d).update(from: newKeys + t * ld + h * d, count: d)
                (v + t * d).update(from: newValues + t * ld + h * d, count: d)
            }
        }
        if count == 0 { return Held(keys: UnsafePointer(newKeys), values: UnsafePointer(newValues), ld: ld, headStride: d) }
        return Held(keys: UnsafePointer(keys[l]), values: UnsafePointer(values[l]), ld: d, headStride: stride)
    }

    /// Makes the `n` tokens appended to every layer part of the cache.
    func commit(_ n: Int) { count += n }
}

extension CausalSelfAttention.Operands {
    /// Queries q [queries, heads·d] (leading dimension ldq) against the keys and values a cache holds.
    init(q: UnsafePointer<Float>, ldq: Int, _ held: KVCache.Held, queries: Int, start: Int) {
        self.init(q: q, ldq: ldq, k: held.keys, ldk: held.ld, v: held.values, ldv: held.ld, kvHeadStride: held.headStride,
                  queries: queries, start: start)
    }
}
