import ArgumentParser
import EasyQuant
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

    @Option(help: "Tokens to generate.")
    var generate = 50

    @Option(help: "0 for greedy decoding; above 0, sample from softmax(logits / temperature).")
    var temperature: Float = 0

    @Option(help: "Sample among the K most likely tokens only.")
    var topK: Int?

    @Option(help: "Seed for sampling.")
    var seed: UInt64 = 0

    @Option(help: "f32 or int8 (default: what the file asks for, else f32).")
    var compute: String?

    @Option(help: "Hold keys and values in the cache at 8, 4 or 2 bits (needs eqconvert --calib).")
    var kvBits: Int?

    @Option(help: "With --kv-bits: percentage of outliers kept exactly (0, 0.1, 0.5, 1, 2 or 5).")
    var kvOutliers: Double = 0

    @Option(help: "Threads to use (default: all cores).")
    var threads = Parallel.defaultThreads

    @Option(help: "Folder with the tokenizer files, instead of the model's own.")
    var tokenizer: String?

    @Flag(help: "Keep going after <|endoftext|>.")
    var ignoreEndOfText = false

    @Flag(help: "Print the result as JSON (no streaming).")
    var json = false

    func validate() throws {
        guard generate >= 1 else { throw ValidationError("--generate must be at least 1") }
        if let compute, ComputeMode(rawValue: compute) == nil { throw ValidationError("--compute must be f32 or int8") }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be 0 or more") }
        if let kvBits, !(2...8).contains(kvBits) { throw ValidationError("--kv-bits must be between 2 and 8") }
    }

    func run() throws {
        let loaded = try LoadedModel(path: model, compute: compute.flatMap(ComputeMode.init), tokenizerDirectory: tokenizer)
        let (mode, network, tok) = (loaded.mode, loaded.network, loaded.tokenizer)
        let ids = tok.encode(prompt)
        guard !ids.isEmpty else { throw ValidationError("the prompt is empty after tokenization") }
        let kv = try loaded.kvQuantization(bits: kvBits, outlierPercent: kvOutliers)
        let generator = TextGenerator(model: network, context: ComputeContext(mode: mode, threads: threads), kvQuantization: kv,
                                      endOfText: ignoreEndOfText ? nil : tok.endOfTextID)
        var stream = UTF8Stream()
        if !json { FileHandle.standardOutput.write(Data(prompt.utf8)) }
        let result = try generator.generate(prompt: ids, maxNewTokens: generate,
                                        sampling: SamplingOptions(temperature: temperature, topK: topK, seed: seed)) { token in
            if !json { FileHandle.standardOutput.write(Data(stream.push(tok.decode([token])))) }
        }
        let text = tok.decodeText(result.generated)
        if json {
            print(JSONValue.makeObject([
                ("model", .string(model)), ("compute", .string(mode.rawValue)),
                ("prompt", .string(prompt)), ("prompt_tokens", JSONValue(result.promptTokens)),
                ("generated_ids", JSONValue(result.generated.map(Int.init))), ("text", .string(text)),
                ("stop", .string(result.stopReason)), ("kv_bits", kvBits.map { JSONValue($0) } ?? .int(32)),
                ("kv_bytes_per_token", .double(result.kvBytesPerToken)),
                ("prompt_seconds", .double(result.promptSeconds)), ("decode_seconds", .double(result.decodeSeconds)),
                ("tokens_per_second", .double(result.tokensPerSecond)),
            ]).prettyPrinted())
            return
        }
        FileHandle.standardOutput.write(Data(stream.flush()))
        FileHandle.standardError.write(Data(("\n\n" + "\(result.generated.count) tokens in \(Format.duration(result.decodeSeconds)) (\(Format.fixed(result.tokensPerSecond, 1)) tokens/s, stop: \(result.stopReason)); prompt \(result.promptTokens) tokens in \(Format.duration(result.promptSeconds)); KV cache \(Format.fixed(result.kvBytesPerToken / 1024, 1)) KiB per token\n").utf8))
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

EQGen.main()
