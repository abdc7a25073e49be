import EasyQuant
import Foundation
import XCTest

/// The real vocabularies of fixtures/vocab (zstd-compressed GGUF files, see its README) and the
/// llama.cpp reference ids of fixtures/reference/tokenizer-llamacpp.json.
enum VocabFixtures {
    static let directory = TokenizerFixtures.root.appendingPathComponent("fixtures/vocab").path
    static let referencePath = TokenizerFixtures.root.appendingPathComponent("fixtures/reference/tokenizer-llamacpp.json").path
    /// The vocabularies by the short names the reference uses.
    static let names = ["gpt-2", "llama-bpe", "qwen2", "smollm2"]

    static let manifest: JSONValue = {
        do { return try JSONValue.parse(TokenizerFixtures.bytes(directory + "/manifest.json")) } catch { fatalError("\(error)") }
    }()

    static let reference: JSONValue = {
        do { return try JSONValue.parse(TokenizerFixtures.bytes(referencePath)) } catch { fatalError("cannot read \(referencePath): \(error)") }
    }()

    /// The GGUF bytes of `ggml-vocab-<name>.gguf`, decompressed and checked against the manifest.
    static func ggufBytes(_ name: String) throws -> [UInt8] {
        let file = "ggml-vocab-\(name).gguf"
        let entry = try XCTUnwrap(manifest["files"]?.arrayValue?.first { $0["name"]?.stringValue == file }, "\(file) not in the manifest")
        let packed = try TokenizerFixtures.bytes(directory + "/" + XCTUnwrap(entry["stored_as"]?.stringValue))
        let bytes = try packed.withUnsafeBytes { try Zstd.decompress($0, size: XCTUnwrap(entry["bytes"]?.intValue)) }
        XCTAssertEqual(bytes.withUnsafeBytes { SHA256Hasher.hex(of: $0) }, entry["sha256"]?.stringValue, "\(file) changed")
        return bytes
    }

    static func gguf(_ name: String) throws -> GGUFFile {
        try GGUFFile(file: MappedFile(bytes: ggufBytes(name), name: "ggml-vocab-\(name).gguf"))
    }

    private static let cacheLock = NSLock()
    nonisolated(unsafe) private static var cache: [String: BPETokenizer] = [:]

    /// The tokenizer of a vocabulary, loaded once for all tests.
    static func tokenizer(_ name: String) throws -> BPETokenizer {
        cacheLock.lock()
        defer { cacheLock.unlock() }
        if let t = cache[name] { return t }
        let t = try BPETokenizer(description: TokenizerDescription(gguf: gguf(name)))
        cache[name] = t
        return t
    }

    /// llama.cpp's test strings for a vocabulary (`.inp`) with their expected ids (`.out`).
    static func cases(_ name: String) throws -> [(text: [UInt8], ids: [Int32])] {
        let raw = try TokenizerFixtures.bytes(directory + "/ggml-vocab-\(name).gguf.inp")
        let separator = Array("\n__ggml_vocab_test__\n".utf8)
        var inputs: [[UInt8]] = []
        var start = 0, i = 0
        while i + separator.count <= raw.count {
            if Array(raw[i..<(i + separator.count)]) == separator {
                inputs.append(Array(raw[start..<i]))
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        if start < raw.count { inputs.append(Array(raw[start...])) }
        let out = String(decoding: try TokenizerFixtures.bytes(directory + "/ggml-vocab-\(name).gguf.out"), as: UTF8.self)
        var lines = out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        XCTAssertEqual(inputs.count, lines.count, "\(name): .inp and .out disagree on the number of tests")
        return zip(inputs, lines).map { ($0, $1.split(separator: " ").map { Int32($0)! }) }
    }
}

/// Writes minimal GGUF files (header and metadata, no tensors) for tests of hostile metadata.
enum GGUFMetadataWriter {
    enum Value {
        case string(String)
        case uint32(UInt32)
        case bool(Bool)
        case strings([String])
        /// Strings given as raw bytes, which need not be UTF-8.
        case rawStrings([[UInt8]])
        case int32s([Int32])
    }

    static func file(_ pairs: [(String, Value)]) -> [UInt8] {
        var out: [UInt8] = Array("GGUF".utf8)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func str(_ s: String) { u64(UInt64(s.utf8.count)); out += Array(s.utf8) }
        u32(3)
        u64(0)
        u64(UInt64(pairs.count))
        for (key, value) in pairs {
            str(key)
            switch value {
            case .string(let s): u32(8); str(s)
            case .uint32(let v): u32(4); u32(v)
            case .bool(let b): u32(7); out.append(b ? 1 : 0)
            case .strings(let list): u32(9); u32(8); u64(UInt64(list.count)); list.forEach(str)
            case .rawStrings(let list): u32(9); u32(8); u64(UInt64(list.count)); list.forEach { u64(UInt64($0.count)); out += $0 }
            case .int32s(let list): u32(9); u32(5); u64(UInt64(list.count)); list.forEach { u32(UInt32(bitPattern: $0)) }
            }
        }
        return out
    }

    static func open(_ pairs: [(String, Value)]) throws -> GGUFFile {
        try GGUFFile(file: MappedFile(bytes: file(pairs), name: "test.gguf"))
    }
}
