import EasyQuant
import Foundation
import FuzzSupport

/// Target (d): the tokenizer. The first byte picks what the rest is:
/// - 0: `vocab.json`, a NUL byte, `merges.txt` (no NUL: all vocabulary, no merges);
/// - 1: a `tokenizer.json`;
/// - anything else: text, encoded by GPT-2's real tokenizer (fixtures/gpt2-tokenizer).
/// Every tokenizer that loads must give back valid UTF-8 text byte for byte
/// (`Fuzz.checkRoundTrips`): a fixed text and the input's first 256 bytes (kept short, as the
/// check encodes each of their characters alone too). (Tokenizers described by GGUF metadata are fuzzed by fuzz-gguf.)
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let rest = Array(UnsafeBufferPointer(start: data! + 1, count: size - 1))
    switch data![0] {
    case 0:
        let split = rest.firstIndex(of: 0) ?? rest.count
        let vocab = Array(rest[..<split]), merges = split < rest.count ? Array(rest[(split + 1)...]) : []
        Fuzz.expectingErrors { try Fuzz.checkRoundTrips(BPETokenizer(vocabJSON: vocab, merges: merges), sample: Array(merges.prefix(256))) }
    case 1:
        Fuzz.expectingErrors { try Fuzz.checkRoundTrips(BPETokenizer(tokenizerJSON: rest), sample: Array(rest.prefix(256))) }
    default:
        Fuzz.checkRoundTrips(gpt2, sample: rest, alsoFixedText: false, complete: true)
    }
    return 0
}

/// GPT-2's tokenizer, loaded once per process.
let gpt2: BPETokenizer = {
    do { return try BPETokenizer.load(directory: Fuzz.repositoryRoot + "/fixtures/gpt2-tokenizer") } catch {
        fatalError("cannot load the GPT-2 tokenizer fixture: \(error)")
    }
}()
