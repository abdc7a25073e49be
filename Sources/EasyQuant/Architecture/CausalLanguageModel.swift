/// A causal language model, as evaluation, generation, calibration and `eqtable` see it:
/// tokens in, hidden states and logits out, with an incremental mode over a KV cache.
/// Every family's network conforms (through `DecoderModel`).
public protocol CausalLanguageModel: AnyObject, Sendable {
    var config: ModelConfig { get }
    var family: any ModelFamily { get }
    /// The model's file, for messages.
    var origin: String { get }

    /// The final hidden states (after the last norm) of one window of at most
    /// `config.contextLength` tokens, [T, embeddingSize]. Token ids must be checked
    /// (`checkTokens`) by the caller.
    func hiddenStates(_ tokens: [Int32], context: ComputeContext, observer: (any ForwardObserver)?) -> [Float]
    /// Incremental decoding: the hidden states of `tokens`, which follow the tokens already
    /// in `cache`; their keys and values are added to it.
    func decode(_ tokens: [Int32], cache: KVCache, context: ComputeContext) -> [Float]
    /// Logits of `rows` hidden states, [rows, vocabSize].
    func logits(_ hidden: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>, context: ComputeContext)
    /// A cache for `capacity` tokens (default: the model's context), storing `storage`.
    func makeCache(quantization: KVQuantization?, capacity: Int?, storage: KVStorage) -> KVCache
    /// Bytes of weights one decoded token reads in `mode`: every linear layer of the blocks
    /// and the output layer, as its product reads them (embedding lookups not counted).
    func weightBytesPerToken(mode: ComputeMode) -> Int
    /// Makes what decoding one token at a time in `mode` reads (quantized weights rearranged
    /// for batch-1 products, in either mode), so that the first step does not; `threads`
    /// share the work.
    func prepareForDecoding(mode: ComputeMode, threads: Int)
}

extension CausalLanguageModel {
    public func hiddenStates(_ tokens: [Int32], context: ComputeContext) -> [Float] {
        hiddenStates(tokens, context: context, observer: nil)
    }

    /// Refuses token ids outside the vocabulary, naming `source` (the tokenizer or the text)
    /// and the first bad id: the embedding lookup must never be asked for a row it lacks.
    public func checkTokens(_ tokens: [Int32], source: String) throws {
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw ModelError.unsupported(origin: source, reason: "token id \(bad) is outside the vocabulary of \(config.vocabSize) of \(origin); use the tokenizer that belongs to this model")
        }
    }
}

/// Sees inside a forward pass: the hidden state entering and leaving each block
/// ([tokens, embeddingSize]), the input of each linear-layer site ([tokens, width]), and the
/// keys and values as the cache would store them. Calibration (activation statistics, key
/// ranges, distillation targets) is built on this.
public protocol ForwardObserver: AnyObject {
    func blockInput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int)
    func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int)
    func linearInput(layer: Int, _ site: InputSite, _ x: UnsafeBufferPointer<Float>, tokens: Int)
    /// Keys and values of `tokens` rows (row t at `keys + t·ld`, `width` values each).
    func keysAndValues(layer: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ld: Int, width: Int, tokens: Int)
}

extension ForwardObserver {
    public func blockInput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int) {}
    public func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int) {}
    public func linearInput(layer: Int, _ site: InputSite, _ x: UnsafeBufferPointer<Float>, tokens: Int) {}
    public func keysAndValues(layer: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ld: Int, width: Int, tokens: Int) {}
}

/// Several observers watching one forward pass.
public final class ObserverGroup: ForwardObserver {
    public let members: [any ForwardObserver]
    public init(_ members: [any ForwardObserver]) { self.members = members }
    public func blockInput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int) {
        for m in members { m.blockInput(layer: layer, x, tokens: tokens) }
    }
    public func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int) {
        for m in members { m.blockOutput(layer: layer, x, tokens: tokens) }
    }
    public func linearInput(layer: Int, _ site: InputSite, _ x: UnsafeBufferPointer<Float>, tokens: Int) {
        for m in members { m.linearInput(layer: layer, site, x, tokens: tokens) }
    }
    public func keysAndValues(layer: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ld: Int, width: Int, tokens: Int) {
        for m in members { m.keysAndValues(layer: layer, keys: keys, values: values, ld: ld, width: width, tokens: tokens) }
    }
}
