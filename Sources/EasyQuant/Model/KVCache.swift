import CKernels

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
/// Rows are stored as f32 or, with `KVStorage.f16`, as halves, which decoding attention
/// reads in place (`eqk_attend_one_f16`).
public final class KVCache {
    public let layers: Int
    /// Values per key (and per value) row: key/value heads × head size.
    public let width: Int
    public let heads: Int
    public let headSize: Int
    public let capacity: Int
    public let quantization: KVQuantization?
    /// The number type each held key and value is stored in.
    public let storage: KVStorage
    /// Tokens held (all layers hold the same number once a step is committed).
    public private(set) var count = 0
    /// Keys and values that were beyond the range of f16 (magnitude 65,520 or more) and
    /// became ±∞ in an f16 cache: attention over them is meaningless, so a generator stops.
    public private(set) var overflows = 0
    /// Keys and values per layer, [heads, capacity, headSize] elements of `storage`.
    private let keys: [UnsafeMutableRawPointer]
    private let values: [UnsafeMutableRawPointer]
    /// What the quantization kept exactly, over all layers and rows.
    private let tally = KVQuantization.Tally()
    /// Half rows widened to floats for attention over several new tokens at once (the
    /// whole-window path reads floats): keys then values, [heads, tokens, headSize] each.
    private var widened: UnsafeMutablePointer<Float>?
    private var widenedCapacity = 0

    public init(config: ModelConfig, quantization: KVQuantization? = nil, capacity: Int? = nil, storage: KVStorage = .f32) {
        layers = config.layerCount
        width = config.kvSize
        heads = config.kvHeadCount
        headSize = config.headSize
        self.capacity = min(capacity ?? config.contextLength, config.contextLength)
        self.quantization = quantization
        self.storage = storage
        let bytes = max(1, self.capacity * width) * storage.bytes
        keys = (0..<layers).map { _ in .allocate(byteCount: bytes, alignment: 64) }
        values = (0..<layers).map { _ in .allocate(byteCount: bytes, alignment: 64) }
    }

    deinit {
        (keys + values).forEach { $0.deallocate() }
        widened?.deallocate()
    }

    /// Touches the memory of positions 0 ..< min(tokens, capacity) in every layer, so that
    /// appending them later takes no page faults (a head's run of rows reaches a new page every
    /// 4096 / (4 · head size) tokens for f32: for SmolLM2-135M, 30 layers × 3 heads × keys and
    /// values, that is 180 runs over 16 tokens, about 11 faults per decoded token). Call it
    /// before the first append.
    public func reserve(tokens: Int) {
        precondition(count == 0, "reserve the KV cache before appending to it")
        let n = min(max(0, tokens), capacity), stride = capacity * headSize * storage.bytes
        for l in 0..<layers {
            for h in 0..<heads {
                (keys[l] + h * stride).initializeMemory(as: UInt8.self, repeating: 0, count: n * headSize * storage.bytes)
                (values[l] + h * stride).initializeMemory(as: UInt8.self, repeating: 0, count: n * headSize * storage.bytes)
            }
        }
    }

    /// Bytes the cache stores per token, over all layers: f32 or f16, or codes + value
    /// ranges + outliers at the rate seen so far.
    public var bytesPerToken: Double {
        guard let q = quantization else { return Double(layers * 2 * width * storage.bytes) }
        return Double(layers) * q.bytesPerTokenPerLayer(width: width, tally: tally)
    }

    /// Where attention finds the keys and values of positions 0 ..< count+n: key/value head h's
    /// row t at element `h·headStride + t·ld` of `keys` (and the same for values), elements of
    /// `storage`.
    struct Held {
        let keys: UnsafeRawPointer
        let values: UnsafeRawPointer
        let storage: KVStorage
        let ld: Int
        let headStride: Int
    }

    /// Stores the keys and values of `n` new tokens of `layer` (row t at `newKeys + t·ld`,
    /// all heads side by side) at positions count ..< count+n, quantized and decoded in place
    /// first if the cache is quantized, and says where positions 0 ..< count+n are: when the
    /// cache held nothing before, the new rows themselves (row-major floats, as a window
    /// without a cache reads them); for one new token, the cache's runs per head as stored;
    /// for several, those runs as floats (halves widened once for the whole-window path).
    func append(layer l: Int, keys newKeys: UnsafeMutablePointer<Float>, values newValues: UnsafeMutablePointer<Float>, ld: Int,
                tokens n: Int) -> Held {
        precondition(count + n <= capacity, "the KV cache holds \(capacity) tokens")
        quantization?.roundTrip(keys: newKeys, values: newValues, ld: ld, tokens: n, width: width, layer: l, threads: 1, tally: tally)
        let d = headSize, stride = capacity * d
        for h in 0..<heads {
            for t in 0..<n {
                let at = h * stride + (count + t) * d
                store(newKeys + t * ld + h * d, to: keys[l], at: at)
                store(newValues + t * ld + h * d, to: values[l], at: at)
            }
        }
        if count == 0 {
            return Held(keys: UnsafeRawPointer(newKeys), values: UnsafeRawPointer(newValues), storage: .f32, ld: ld, headStride: d)
        }
        if storage == .f32 || n == 1 {
            return Held(keys: UnsafeRawPointer(keys[l]), values: UnsafeRawPointer(values[l]), storage: storage, ld: d, headStride: stride)
        }
        let rows = count + n, run = rows * d
        if widenedCapacity < 2 * heads * run {
            widened?.deallocate()
            widenedCapacity = 2 * heads * run
            widened = .allocate(capacity: widenedCapacity)
        }
        let wideKeys = widened!, wideValues = wideKeys + heads * run
        for h in 0..<heads {
            eqk_f16_to_f32(keys[l].assumingMemoryBound(to: UInt16.self) + h * stride, run, wideKeys + h * run)
            eqk_f16_to_f32(values[l].assumingMemoryBound(to: UInt16.self) + h * stride, run, wideValues + h * run)
        }
        return Held(keys: UnsafeRawPointer(wideKeys), values: UnsafeRawPointer(wideValues), storage: .f32, ld: d, headStride: run)
    }

    /// Writes one head's d values of one row at element `at` of a layer's run.
    private func store(_ row: UnsafePointer<Float>, to base: UnsafeMutableRawPointer, at: Int) {
        switch storage {
        case .f32: (base.assumingMemoryBound(to: Float.self) + at).update(from: row, count: headSize)
        case .f16: overflows += eqk_f32_to_f16(row, headSize, base.assumingMemoryBound(to: UInt16.self) + at)
        }
    }

    /// Makes the `n` tokens appended to every layer part of the cache.
    func commit(_ n: Int) { count += n }
}

/// The number type a KV cache stores keys and values in.
///
/// f32 holds them as computed; f16 (IEEE half, rounded to nearest) halves the bytes that
/// decoding attention reads on every step, as llama.cpp's default cache type does, at a
/// relative rounding of at most 2^−11 per value.
public enum KVStorage: String, CaseIterable, Sendable {
    case f32, f16

    /// Bytes per stored value.
    public var bytes: Int { self == .f32 ? 4 : 2 }
}

extension CausalSelfAttention.Operands {
    /// Queries q [queries, heads·d] (leading dimension ldq) against the keys and values a cache holds.
    init(q: UnsafePointer<Float>, ldq: Int, _ held: KVCache.Held, queries: Int, start: Int) {
        self.init(q: q, ldq: ldq, keys: held.keys, ldk: held.ld, values: held.values, ldv: held.ld, storage: held.storage,
                  kvHeadStride: held.headStride, queries: queries, start: start)
    }
}
