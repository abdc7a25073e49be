// eqbench-gemv: the batch-1 products of one decode step alone, without attention, norms or
// the rest of the forward pass, so that their speed can be set against the machine's read
// bandwidth (scripts/bench-gemv runs it beside scripts/bench-stream).
//
// It builds a model's linear layers with random weights, quantized as bench-gen quantizes
// them (8-bit: absmax per channel; 4-bit: symquant group:32), keeps only their batch-1 layout
// (as eqgen does), and runs them in the order and grouping of a decode step: q/k/v (or GPT-2's
// c_attn) in one parallel step, the attention output, gate/up (or c_fc), down; then the
// output layer. Every pass reads every weight once; there are far more weight bytes than
// the caches hold, so each pass streams them from memory, as decoding does. The layouts are
// made as decoding makes them (`Linear.keepOnlyStreamingForms`: one PageArena).
//
// Prints one JSON object: per part ("blocks", "logits", "token" = both), the weight bytes a
// pass reads, the median pass in seconds, and bytes / median.
import EasyQuant
import Foundation

struct Matrix { let name: String, inputs: Int, outputs: Int }
/// The products of one block, in parallel steps: the matrices of a step share their input.
struct Family { let name: String, blocks: Int, steps: [[Matrix]], logits: Matrix }

let families = [
    Family(name: "gpt2", blocks: 12, steps: [
        [Matrix(name: "attn.c_attn", inputs: 768, outputs: 2304)],
        [Matrix(name: "attn.c_proj", inputs: 768, outputs: 768)],
        [Matrix(name: "mlp.c_fc", inputs: 768, outputs: 3072)],
        [Matrix(name: "mlp.c_proj", inputs: 3072, outputs: 768)],
    ], logits: Matrix(name: "lm_head", inputs: 768, outputs: 50257)),
    Family(name: "smollm2", blocks: 30, steps: [
        [Matrix(name: "q_proj", inputs: 576, outputs: 576), Matrix(name: "k_proj", inputs: 576, outputs: 192),
         Matrix(name: "v_proj", inputs: 576, outputs: 192)],
        [Matrix(name: "o_proj", inputs: 576, outputs: 576)],
        [Matrix(name: "gate_proj", inputs: 576, outputs: 1536), Matrix(name: "up_proj", inputs: 576, outputs: 1536)],
        [Matrix(name: "down_proj", inputs: 1536, outputs: 576)],
    ], logits: Matrix(name: "lm_head", inputs: 576, outputs: 49152)),
]

func usage() -> Never {
    FileHandle.standardError.write("usage: eqbench-gemv [--model gpt2|smollm2] [--bits 8|4] [--compute int8|f32] [--threads T] [--seconds S] [--blocks N]\n".data(using: .utf8)!)
    exit(64)
}

var familyName = "gpt2", bits = 8, threads = Parallel.defaultThreads, minSeconds = 3.0
var mode = ComputeMode.int8
var blockCount: Int? = nil
var args = CommandLine.arguments.dropFirst()
while let arg = args.popFirst() {
    switch arg {
    case "--model": familyName = args.popFirst() ?? ""
    case "--bits": bits = Int(args.popFirst() ?? "") ?? 0
    case "--compute": mode = ComputeMode(rawValue: args.popFirst() ?? "") ?? { usage() }()
    case "--threads": threads = Int(args.popFirst() ?? "") ?? 0
    case "--seconds": minSeconds = Double(args.popFirst() ?? "") ?? -1
    case "--blocks": blockCount = Int(args.popFirst() ?? "") ?? 0
    default: usage()
    }
}
guard let family = families.first(where: { $0.name == familyName }), bits == 8 || bits == 4,
      (1...1024).contains(threads), minSeconds >= 0, (blockCount ?? 1) >= 1 else { usage() }

// The weights: random normal values, quantized with the method bench-gen uses at this width.
var rng = SeededGenerator(seed: 11)
func normal() -> Float {
    let u1 = Float.random(in: Float.leastNormalMagnitude..<1, using: &rng), u2 = Float.random(in: 0..<1, using: &rng)
    return 0.05 * (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
}
let distinctCount = min(family.blocks, blockCount ?? family.blocks)
func makeLinear(_ m: Matrix) throws -> Linear {
    let method: any QuantizationMethod = bits == 8 ? AbsMax() : SymQuant(bits: 4)
    let granularity: Granularity = bits == 8 ? .channel : .group(32)
    let values = (0..<(m.inputs * m.outputs)).map { _ in normal() }
    let layout = BlockLayout(shape: [m.outputs, m.inputs], axis: 0, granularity: granularity)
    let q = try values.withUnsafeBufferPointer { try method.quantize($0, layout: layout) }
    return Linear(weight: .quantized(QuantizedWeight(q)), outputIsRows: true, bias: nil)
}

// With --blocks N, a pass runs N distinct blocks, then the same blocks again until it has run
// as many as the model has: with one block the weights stay in cache, which shows what the
// kernels and the hand-outs cost apart from memory.
let distinct = try (0..<distinctCount).map { _ in try family.steps.map { try $0.map(makeLinear) } }
let blocks = (0..<family.blocks).map { distinct[$0 % distinct.count] }
let logits = try makeLinear(family.logits)
// Laid out as decoding lays them out (`DecoderModel.prepareForDecoding`): one arena, codes freed.
let layers = distinct.joined().joined() + [logits]
Linear.keepOnlyStreamingForms(Array(layers), threads: threads)
for layer in layers {
    guard case .quantized(let w) = layer.weight, w.streamedForm(outputIsRows: true) != nil else { fatalError("a layer has no batch-1 layout") }
}
let context = ComputeContext(mode: mode, threads: threads)

// Inputs and outputs for the widest product; the values only need to be finite.
let widest = max(family.logits.outputs, family.steps.joined().map { max($0.inputs, $0.outputs) }.max()!)
let x = (0..<widest).map { _ in normal() }
let outputs = (0..<3).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: widest) }

func runBlocks() {
    x.withUnsafeBufferPointer { xp in
        for block in blocks {
            for step in block {
                let input = SharedInput(xp.baseAddress!, rows: 1, columns: step[0].inFeatures)
                if step.count == 1 {
                    step[0].forward(input, into: outputs[0], context: context)
                } else {
                    Linear.forward(zip(step, outputs).map { (layer: $0.0, y: $0.1) }, sharing: input, context: context)
                }
            }
        }
    }
}
func runLogits() {
    x.withUnsafeBufferPointer { xp in
        logits.forward(xp.baseAddress!, rows: 1, into: outputs[0], context: context)
    }
}

/// The median of passes of `body` after two to warm up: at least 7 passes and `minSeconds` in all.
func medianPass(_ body: () -> Void) -> Double {
    body(); body()
    var times: [Double] = []
    var total = 0.0
    while times.count < 7 || total < minSeconds {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        times.append(t); total += t
    }
    return times.sorted()[times.count / 2]
}

let blockBytes = blocks.joined().joined().reduce(0) { $0 + $1.bytesReadPerToken(mode: mode) }
let logitBytes = logits.bytesReadPerToken(mode: mode)
let parts: [(name: String, bytes: Int, seconds: Double)] = [
    ("blocks", blockBytes, medianPass(runBlocks)),
    ("logits", logitBytes, medianPass(runLogits)),
    ("token", blockBytes + logitBytes, medianPass { runBlocks(); runLogits() }),
]
let rows = parts.map { p in
    "{\"part\": \"\(p.name)\", \"bytes\": \(p.bytes), \"seconds\": \(String(format: "%.6f", p.seconds)), \"gb_s\": \(String(format: "%.2f", Double(p.bytes) / p.seconds / 1e9))}"
}
let steps = family.blocks * family.steps.count + 1
print("{\"model\": \"\(family.name)\", \"bits\": \(bits), \"compute\": \"\(mode.rawValue)\", \"threads\": \(threads), \"isa\": \"\(StreamingQuantizedWeight.instructionSet)\", \"parallel_steps_per_token\": \(steps), \"distinct_blocks\": \(distinct.count), \"parts\": [\(rows.joined(separator: ", "))]}")
