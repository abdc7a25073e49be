// eqbench-tokenizer: times BPETokenizer on one text file and prints the result as one JSON
// object (scripts/bench-tokenizer runs it next to tiktoken and prints the comparison).
//
//   eqbench-tokenizer [--tokenizer DIR] [--file PATH] [--runs N] [--threads 1,2]
//
// Each thread count gets one warm-up run, then the best of N timed runs of the whole file
// (bytes in memory → ids), the tokenizer already loaded.
import EasyQuant
import Foundation

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("eqbench-tokenizer: \(message)\n".utf8))
    exit(2)
}

var tokenizerDirectory = "fixtures/gpt2-tokenizer"
var file = "fixtures/wikitext-2-raw/wiki.test.raw"
var runs = 5
var threadCounts = [1, 2]
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard let value = arguments.popFirst() else { fail("\(flag) needs a value") }
    switch flag {
    case "--tokenizer": tokenizerDirectory = value
    case "--file": file = value
    case "--runs":
        guard let n = Int(value), n > 0 else { fail("--runs wants a positive number") }
        runs = n
    case "--threads":
        let counts = value.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
        guard !counts.isEmpty else { fail("--threads wants numbers like 1,2") }
        threadCounts = counts
    default: fail("unknown option \(flag); options: --tokenizer DIR --file PATH --runs N --threads 1,2")
    }
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

let clock = ContinuousClock()
let tokenizer: BPETokenizer
let loadStart = clock.now
do { tokenizer = try BPETokenizer.load(directory: tokenizerDirectory) } catch { fail("\(error)") }
let loadSeconds = seconds(clock.now - loadStart)

guard let data = FileManager.default.contents(atPath: file) else { fail("\(file): cannot read") }
let bytes = [UInt8](data)

var results: [JSONValue] = []
var tokenCount = 0
var digest = ""
for threads in threadCounts {
    var ids = try tokenizer.encode(utf8: bytes, threads: threads)  // warm-up
    var best = Double.infinity
    for _ in 0..<runs {
        let start = clock.now
        ids = try tokenizer.encode(utf8: bytes, threads: threads)
        best = min(best, seconds(clock.now - start))
    }
    tokenCount = ids.count
    digest = ids.map { UInt32(bitPattern: $0).littleEndian }.withUnsafeBytes { SHA256Hasher.hex(of: $0) }
    results.append(.makeObject([("threads", JSONValue(threads)), ("best_seconds", JSONValue(best))]))
}

let report = JSONValue.makeObject([
    ("file", JSONValue(file)),
    ("bytes", JSONValue(bytes.count)),
    ("tokens", JSONValue(tokenCount)),
    ("ids_uint32le_sha256", JSONValue(digest)),
    ("load_seconds", JSONValue(loadSeconds)),
    ("runs", JSONValue(runs)),
    ("results", .array(results)),
])
print(report.serialized())
