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
    static let gpt2: GPT2Tokenizer = {
        do { return try GPT2Tokenizer.load(directory: tokenizerDirectory) } catch { fatalError("cannot load fixture tokenizer: \(error)") }
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
