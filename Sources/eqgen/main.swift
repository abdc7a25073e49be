import ArgumentParser
import EasyQuant
import EasyQuantCLI
import Foundation

/// eqgen: continue a prompt with GPT-2, from an .eqm, a .safetensors or a model folder.
struct EQGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eqgen",
        abstract: "Generate text from a prompt with incremental decoding and a KV cache (quantized with --kv-bits).",
        version: EasyQuantVersion.string)

    @Argument(help: "The model: .eqm, .safetensors, or a Hugging Face model folder.")
    var model: String

    @Option(help: "The text to continue.")
    var prompt: String

    @Option(parsing: .unconditional, help: "Tokens to generate.")
    var generate = 50

    @Option(parsing: .unconditional, help: "0 for greedy decoding; above 0, sample from softmax(logits / temperature).")
    var temperature: Float = 0

    @Option(parsing: .unconditional, help: "Sample among the K most likely tokens only.")
    var topK: Int?

    @Option(parsing: .unconditional, help: "Seed for sampling.")
    var seed: UInt64 = 0

    @OptionGroup var computing: ComputeOptions
    @OptionGroup var kv: KVOptions
    @OptionGroup var threading: ThreadOptions

    @Option(help: "How the KV cache stores keys and values: f16 (half the bytes attention reads per token, as llama.cpp's default) or f32 (as computed).")
    var kvStorage: KVStorage = .f16

    @Option(help: "Folder with the tokenizer files, instead of the model's own.")
    var tokenizer: String?

    @Flag(help: "Keep going after the end-of-text token.")
    var ignoreEndOfText = false

    @Flag(help: "Print the result as JSON (no streaming).")
    var json = false

    @Flag(help: "Time the decode steps per phase (matrix products, attention, output layer, the rest) and print it.")
    var profile = false

    func validate() throws {
        guard (1...1_000_000).contains(generate) else { throw ValidationError("--generate must be between 1 and 1000000, not \(generate)") }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1, not \(topK)") }
        guard temperature.isFinite, temperature >= 0 else { throw ValidationError("--temperature must be a number, 0 or more, not \(temperature)") }
        guard !prompt.isEmpty else { throw ValidationError("--prompt is empty; give the text to continue") }
    }

    func run() throws {
        try ToolPaths.checkInput(model, role: "model (.eqm, GGUF, .safetensors or a model folder)", directoryAllowed: true)
        if let tokenizer { try ToolPaths.checkInput(tokenizer, role: "tokenizer folder", directoryAllowed: true) }
        let loaded = try LoadedModel(path: model, compute: computing.mode, tokenizerDirectory: tokenizer)
        let (mode, network, tok) = (loaded.mode, loaded.network, loaded.tokenizer)
        let ids = tok.encode(prompt)
        guard !ids.isEmpty else { throw ValidationError("the prompt is empty after tokenization") }
        try network.checkTokens(ids, source: tokenizer ?? model)
        let kvQuantization = try loaded.kvQuantization(bits: kv.kvBits, outlierPercent: kv.kvOutliers)
        var context = ComputeContext(mode: mode, backendName: computing.backend, threads: threading.threads)
        let timing = profile ? ForwardProfile() : nil
        context.profile = timing
        let generator = TextGenerator(model: network, context: context,
                                      kvQuantization: kvQuantization, kvStorage: kvStorage, endOfText: ignoreEndOfText ? nil : tok.eosID ?? tok.endOfTextID)
        var stream = UTF8Stream()
        if !json { FileHandle.standardOutput.write(Data(prompt.utf8)) }
        let result = try generator.generate(prompt: ids, maxNewTokens: generate,
                                        sampling: SamplingOptions(temperature: temperature, topK: topK, seed: seed)) { token in
            if !json { FileHandle.standardOutput.write(Data(stream.push(tok.decode([token])))) }
        }
        let text = tok.decodeText(result.generated)
        let phases = timing?.seconds ?? []
        if json {
            var fields: [(String, JSONValue)] = [
                ("model", .string(model)), ("compute", .string(mode.rawValue)),
                ("prompt", .string(prompt)), ("prompt_tokens", JSONValue(result.promptTokens)),
                ("prompt_ids", JSONValue(ids.map(Int.init))),
                ("generated_ids", JSONValue(result.generated.map(Int.init))), ("text", .string(text)),
                ("stop", .string(result.stopReason)), ("kv_bits", kv.kvBits.map { JSONValue($0) } ?? .int(32)),
                ("kv_storage", .string(kvStorage.rawValue)),
                ("kv_bytes_per_token", .double(result.kvBytesPerToken)),
                ("prompt_seconds", .double(result.promptSeconds)), ("decode_seconds", .double(result.decodeSeconds)),
                ("tokens_per_second", .double(result.tokensPerSecond)),
                ("prompt_tokens_per_second", .double(result.promptTokensPerSecond)),
                ("decode_tokens_per_second", .double(result.tokensPerSecond)),
                ("weight_bytes_per_token", JSONValue(network.weightBytesPerToken(mode: mode))),
                ("threads", JSONValue(threading.threads)),
            ]
            if profile {
                fields.append(("profile_seconds", .makeObject(phases.map { ($0.phase.rawValue, .double($0.seconds)) })))
                if let h = timing?.handOffs {
                    fields.append(("hand_offs", .makeObject([
                        ("parallel_steps", JSONValue(h.steps)),
                        ("seconds_between_steps", .double(h.secondsBetweenSteps)),
                        ("worker_busy_seconds", .double(h.workerBusySeconds)),
                        ("worker_wait_seconds", .double(h.workerWaitSeconds)),
                    ])))
                }
            }
            print(JSONValue.makeObject(fields).prettyPrinted())
            return
        }
        FileHandle.standardOutput.write(Data(stream.flush()))
        FileHandle.standardError.write(Data(("\n\n" + "\(result.generated.count) tokens in \(Format.duration(result.decodeSeconds)) (\(Format.fixed(result.tokensPerSecond, 1)) tokens/s, stop: \(result.stopReason)); prompt \(result.promptTokens) tokens in \(Format.duration(result.promptSeconds)); KV cache \(Format.fixed(result.kvBytesPerToken / 1024, 1)) KiB per token\n").utf8))
        for (phase, seconds) in phases {
            FileHandle.standardError.write(Data("  \(phase.rawValue): \(Format.duration(seconds))\n".utf8))
        }
        if let h = timing?.handOffs, h.steps > 0 {
            FileHandle.standardError.write(Data(("  \(h.steps) parallel steps; the calling thread between steps \(Format.duration(h.secondsBetweenSteps)) "
                + "(\(Format.fixed(h.secondsBetweenSteps / Double(h.steps) * 1e6, 2)) µs a step); the worker threads waited "
                + "\(Format.fixed(100 * h.workerWaitShare, 0))% of their time\n").utf8))
        }
    }
}

/// Holds back the bytes of an unfinished UTF-8 character, so a character split across two
/// tokens prints whole.
struct UTF8Stream {
    private var pending: [UInt8] = []
    mutating func push(_ bytes: [UInt8]) -> [UInt8] {
        pending += bytes
        var end = pending.count
        // Find where the last complete character ends.
        var i = pending.count - 1
        var continuation = 0
        while i >= 0, pending[i] & 0xC0 == 0x80, continuation < 3 { i -= 1; continuation += 1 }
        if i >= 0 {
            let lead = pending[i]
            let need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
            if need > continuation + 1 { end = i }
        }
        let out = Array(pending[..<end])
        pending.removeFirst(end)
        return out
    }
    mutating func flush() -> [UInt8] { defer { pending = [] }; return pending }
}

extension KVStorage: ExpressibleByArgument {}

EQGen.main()
