import EasyQuant
import Foundation
import XCTest

/// Paths and shared objects for the tokenizer tests. Fixtures live in the repository
/// (`fixtures/`), found from this file's path so that the tests need no resources or network.
enum TokenizerFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let tokenizerDirectory = root.appendingPathComponent("fixtures/gpt2-tokenizer").path
    static let wikitextDirectory = root.appendingPathComponent("fixtures/wikitext-2-raw").path
    static let referencePath = root.appendingPathComponent("fixtures/reference/tokenizer-digests.json").path

    static func bytes(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError.cannotRead(path: path, reason: "missing fixture")
        }
        return [UInt8](data)
    }

    /// The real GPT-2 tokenizer, loaded once for all tests.
    static let gpt2: BPETokenizer = {
        do { return try BPETokenizer.load(directory: tokenizerDirectory) } catch { fatalError("cannot load fixture tokenizer: \(error)") }
    }()

    /// fixtures/reference/tokenizer-digests.json, written by scripts/tokenizer_reference.py.
    static let reference: JSONValue = {
        do { return try JSONValue.parse(bytes(referencePath)) } catch { fatalError("cannot read \(referencePath): \(error)") }
    }()

    /// SHA-256 of ids written as little-endian uint32, the digest the reference JSON records.
    static func digest(_ ids: [Int32]) -> String {
        let words = ids.map { UInt32(bitPattern: $0).littleEndian }
        return words.withUnsafeBytes { SHA256Hasher.hex(of: $0) }
    }
}

/// Small byte-level BPE tokenizers written out by hand, to pin down the merge rules.
enum SyntheticTokenizer {
    /// GPT-2's byte → character table, restated here independently of the library.
    static let byteCharacters: [Character] = {
        let printable = Set(Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF))
        var extra = 0
        return (0..<256).map { b in
            if printable.contains(b) { return Character(Unicode.Scalar(UInt8(b))) }
            defer { extra += 1 }
            return Character(Unicode.Scalar(UInt32(256 + extra))!)
        }
    }()

    /// vocab.json bytes: the 256 byte tokens (ids 0…255 in byte order), then `extra` tokens.
    static func vocabJSON(extra: [String], skippingByte: UInt8? = nil) -> [UInt8] {
        var members: [(String, JSONValue)] = []
        for b in 0..<256 where b != skippingByte.map(Int.init) { members.append((String(byteCharacters[b]), JSONValue(b))) }
        for (i, token) in extra.enumerated() { members.append((token, JSONValue(256 + i))) }
        return Array(JSONValue.makeObject(members).serialized().utf8)
    }

    /// The start of a tokenizer.json object whose pre-tokenizer is GPT-2's, followed by a comma.
    static let gpt2PreTokenizer = #"{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},"#

    static func mergesText(_ merges: [String]) -> [UInt8] {
        Array((["#version: 0.2"] + merges).joined(separator: "\n").appending("\n").utf8)
    }

    static func make(extra: [String], merges: [String]) throws -> BPETokenizer {
        try BPETokenizer(vocabJSON: vocabJSON(extra: extra), merges: mergesText(merges))
    }
}

/// A scratch folder removed at the end of a test.
final class TemporaryDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "eq-tokenizer-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func write(_ name: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path + "/" + name))
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
