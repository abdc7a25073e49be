import EasyQuant

// Quantize a GPT-2 model, look at the error, write it as .eqm, and run it from the file.
let input = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "fixtures/tiny-gpt2"
let output = CommandLine.arguments.count > 2 ? CommandLine.arguments[2] : "/tmp/quickstart.eqm"

// 1. Open a safetensors model (a file or a Hugging Face folder); tensors are read lazily.
let model = try SafetensorsModel(path: input)
print("\(model.tensors.count) tensors, config: \(model.config != nil)")

// 2. Quantize one weight by hand: absmax, 8 bits, one scale per output channel
//    (GPT-2's Conv1D weights are stored [in, out], so the channel axis is 1).
let tensor = model.tensor("transformer.h.0.mlp.c_fc.weight")!
let weights = model.floats(of: tensor)
let layout = BlockLayout(shape: tensor.info.shape, axis: 1, granularity: .channel)
let quantized = try weights.withUnsafeBufferPointer { try AbsMax(bits: 8).quantize($0, layout: layout) }
let restored = quantized.dequantized()
let worst = zip(weights, restored).map { abs($0 - $1) }.max()!
print("c_fc: \(quantized.scales.count) scales, largest error \(worst)")

// 3. Convert the whole model and read the same tensor back from the file.
let report = try ModelConverter(options: ConversionOptions(method: "absmax")).convert(model, to: output)
print("wrote \(report.outputBytes) bytes, \(report.bitsPerWeight) bits per weight")
let file = try EQMFile(path: output)
print("same values from the file: \(try file.floats(tensor.name) == restored)")

// 4. Run the model straight from the quantized file and score a sentence.
let source = try EQMWeightSource(file: file)
let network = try source.makeModel()
let tokens = try EvaluationSetup.tokenizer(for: source, override: nil).encode("The history of the city is long.")
let settings = PerplexityProtocol(contextLength: network.config.contextLength)
let result = try PerplexityEvaluator(model: network, context: ComputeContext(), protocolSettings: settings).evaluate(tokens)
print("perplexity of the sentence: \(result.perplexity)")
