import EasyQuant
import FuzzSupport

/// Target (f): `config.json` together with model construction from a weight source. The input
/// is a config.json text, a NUL byte, then a safetensors file holding the tensors (a tiny
/// model's tensors with fuzzed shapes and config). Family detection, the name table, the
/// config checks against the shapes, and the builder's shape and finiteness checks run as they
/// do for a model folder; a model that is built must then run a forward pass over a few
/// tokens and an incremental decoding step without trapping, and its logits must be finite.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModel(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Fuzz.bytes(data, size)
    guard let split = bytes.firstIndex(of: 0) else { return 0 }
    let name = "fuzz.safetensors"
    Fuzz.expectingErrors {
        let config = try JSONValue.parse(Array(bytes[..<split]))
        let file = try SafetensorsFile(file: MappedFile(bytes: Array(bytes[(split + 1)...]), name: name))
        let source = try SafetensorsWeightSource(model: SafetensorsModel(file: file, config: config))
        let model = try source.makeModel()
        let c = model.config
        Fuzz.require(c.vocabSize > 0 && c.contextLength > 0 && c.embeddingSize > 0, "a model was built from an empty dimension")
        // A few tokens, never more than the context holds: ids 0, 1, ... wrapped into the vocabulary.
        let count = min(3, c.contextLength)
        let tokens = (0..<count).map { Int32($0 % c.vocabSize) }
        try model.checkTokens(tokens, source: name)
        let context = ComputeContext(mode: .f32, threads: 1)
        let hidden = model.hiddenStates(tokens, context: context)
        Fuzz.require(hidden.count == count * c.embeddingSize, "hidden states of the wrong size")
        var logits = [Float](repeating: 0, count: c.vocabSize)
        hidden.withUnsafeBufferPointer { h in
            logits.withUnsafeMutableBufferPointer { model.logits(h.baseAddress! + (count - 1) * c.embeddingSize, rows: 1, into: $0.baseAddress!, context: context) }
        }
        // Finite weights and inputs give finite logits unless the arithmetic overflows, which a
        // trained model's weights cannot make happen but fuzzed ones (up to 3e38) can; so only
        // NaN from finite, moderate weights would be a fault, and that is what the builder's
        // finiteness check and the normalisation's epsilon guarantee. Checked: no NaN when
        // every weight is small.
        if source.shapes.keys.allSatisfy({ (try? source.floats($0).allSatisfy { abs($0) <= 4 }) ?? false }) {
            Fuzz.require(!logits.contains { $0.isNaN }, "NaN logits from small finite weights")
        }
        let cache = model.makeCache(quantization: nil, capacity: count)
        let step = model.decode(Array(tokens.prefix(1)), cache: cache, context: context)
        Fuzz.require(step.count == c.embeddingSize, "an incremental step of the wrong size")
    }
    return 0
}
