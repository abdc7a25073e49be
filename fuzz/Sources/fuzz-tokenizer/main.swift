import EasyQuant
import Foundation
import FuzzSupport

/// Target (d): the tokenizer. The first byte picks what the rest is:
/// - 0: `vocab.json`, a NUL byte, `merges.txt` (no NUL: all vocabulary, no merges);
/// - 1: a `tokenizer.json`;
/// - anything else: text, encoded by GPT-2's real tokenizer (fixtures/gpt2-tokenizer).
/// Every tokenizer that loads must give back any valid UTF-8 text byte for byte through
/// `decode(encode(text))`, with special tokens allowed or not.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let rest = Array(UnsafeBufferPointer(start: data! + 1, count: size - 1))
    switch data![0] {
    case 0:
        let split = rest.firstIndex(of: 0) ?? rest.count
        let vocab = Array(rest[..<split]), merges = split < rest.count ? Array(rest[(split + 1)...]) : []
        Fuzz.expectingErrors { try roundTrips(GPT2Tokenizer(vocabJSON: vocab, merges: merges), sample: merges) }
    case 1:
        Fuzz.expectingErrors { try roundTrips(GPT2Tokenizer(tokenizerJSON: rest), sample: rest) }
    default:
        roundTrips(gpt2, sample: rest, alsoFixedText: false)
    }
    return 0
}

/// GPT-2's tokenizer, loaded once per process.
let gpt2: GPT2Tokenizer = {
    do { return try GPT2Tokenizer.load(directory: Fuzz.repositoryRoot + "/fixtures/gpt2-tokenizer") } catch {
        fatalError("cannot load the GPT-2 tokenizer fixture: \(error)")
    }
}()

/// Checks that `tokenizer` encodes `sample` (when it is UTF-8) and a fixed text reversibly.
/// With special tokens allowed, that holds only when each special token decodes to its own
/// text, which a crafted tokenizer.json need not promise (an added token may be spelled in
/// the byte-level alphabet); then only the ids are checked.
func roundTrips(_ tokenizer: GPT2Tokenizer, sample: [UInt8], alsoFixedText: Bool = true) {
    let specialsRoundTrip = tokenizer.specialTokenIDs.allSatisfy { tokenizer.decode([$0.value]) == Array($0.key.utf8) }
    let fixed = Array("Hello world! <|endoftext|> 123 ünïcödé\n\n".utf8)
    for text in alsoFixedText ? [sample, fixed] : [sample] {
        for special in [false, true] {
            do {
                let ids = try tokenizer.encode(utf8: text, allowSpecialTokens: special, threads: 1)
                Fuzz.require(tokenizer.decode(ids) == text || (special && !specialsRoundTrip),
                             "decode(encode(text)) is not the text (special tokens \(special))")
                Fuzz.require(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.vocabularySize })
            } catch TokenizerError.invalidUTF8(let offset) {
                Fuzz.require(offset >= 0 && offset < text.count && String(validating: text, as: UTF8.self) == nil)
                break
            } catch {
                fatalError("encoding threw \(error)")
            }
        }
    }
}
