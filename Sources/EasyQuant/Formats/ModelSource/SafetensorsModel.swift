import Foundation

/// A model stored as safetensors: one file, or a Hugging Face model folder (one
/// `model.safetensors`, or shards listed by `model.safetensors.index.json`), together with
/// the `config.json` and tokenizer files found beside it.
public final class SafetensorsModel: @unchecked Sendable {
    /// One tensor and the shard that holds it.
    public struct Tensor: Sendable {
        public var info: SafetensorsTensorInfo
        public var shard: Int
        public var name: String { info.name }
    }

    /// What the user named (file or folder).
    public let path: String
    /// The folder the companion files were looked for in.
    public let directory: String
    public let shards: [SafetensorsFile]
    /// All tensors, shard by shard, each shard in data order.
    public let tensors: [Tensor]
    /// `config.json`, if found.
    public let config: JSONValue?
    /// Tokenizer files found beside the model, by file name.
    public let tokenizerFiles: [(name: String, path: String)]
    private let index: [String: Int]

    /// Tokenizer file sets, in order of preference: `tokenizer.json` describes the
    /// pre-tokenizer (SmolLM2's digit split, Llama 3's rules), which vocab.json cannot.
    public static let tokenizerFileSets = [["tokenizer.json", "tokenizer_config.json"], ["tokenizer.json"], ["vocab.json", "merges.txt"],
                                           ["encoder.json", "vocab.bpe"]]

    public init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FileError.notFound(path: path, hint: "give a .safetensors file or a Hugging Face model folder")
        }
        let shardPaths: [String]
        if isDir.boolValue {
            directory = path
            shardPaths = try Self.findShards(in: path)
        } else {
            directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
            shardPaths = [path]
        }
        shards = try shardPaths.map { try SafetensorsFile(path: $0) }

        var all: [Tensor] = []
        var seen: [String: Int] = [:]
        for (s, file) in shards.enumerated() {
            for info in file.tensors {
                if let other = seen[info.name] {
                    throw ModelSourceError.duplicateTensor(name: info.name, first: shards[all[other].shard].path, second: file.path)
                }
                seen[info.name] = all.count
                all.append(Tensor(info: info, shard: s))
            }
        }
        tensors = all
        index = seen

        let configPath = (directory as NSString).appendingPathComponent("config.json")
        if let data = FileManager.default.contents(atPath: configPath) {
            do { config = try JSONValue.parse([UInt8](data)) } catch {
                throw ModelSourceError.badConfig(path: configPath, reason: "\(error)")
            }
        } else {
            config = nil
        }
        var found: [(String, String)] = []
        let dir = directory
        for set in Self.tokenizerFileSets {
            let paths = set.map { (dir as NSString).appendingPathComponent($0) }
            if paths.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
                found = Array(zip(set, paths))
                break
            }
        }
        tokenizerFiles = found.map { (name: $0.0, path: $0.1) }
    }

    /// The shard files of a model folder.
    static func findShards(in dir: String) throws -> [String] {
        let single = (dir as NSString).appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single) { return [single] }
        let indexPath = (dir as NSString).appendingPathComponent("model.safetensors.index.json")
        if let data = FileManager.default.contents(atPath: indexPath) {
            let json: JSONValue
            do { json = try JSONValue.parse([UInt8](data)) } catch {
                throw ModelSourceError.badIndex(path: indexPath, reason: "\(error)")
            }
            guard let map = json["weight_map"]?.objectMembers else {
                throw ModelSourceError.badIndex(path: indexPath, reason: "no \"weight_map\" object")
            }
            var files: [String] = []
            for (tensor, file) in map {
                guard let name = file.stringValue, !name.contains("/") else {
                    throw ModelSourceError.badIndex(path: indexPath, reason: "tensor \(tensor) maps to \(file.serialized()), not a file name in the folder")
                }
                if !files.contains(name) { files.append(name) }
            }
            let paths = files.sorted().map { (dir as NSString).appendingPathComponent($0) }
            for p in paths where !FileManager.default.fileExists(atPath: p) {
                throw ModelSourceError.missingShard(path: p, index: indexPath)
            }
            return paths
        }
        let others = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        if others.count == 1 { return [(dir as NSString).appendingPathComponent(others[0])] }
        throw ModelSourceError.noWeights(directory: dir)
    }

    public func tensor(_ name: String) -> Tensor? { index[name].map { tensors[$0] } }

    /// The raw bytes of a tensor, straight from its shard's map.
    public func bytes(of t: Tensor) -> UnsafeRawBufferPointer { shards[t.shard].bytes(of: t.info) }

    /// A tensor's values as Float.
    public func floats(of t: Tensor) -> [Float] { shards[t.shard].floats(of: t.info) }

    /// Tells the kernel a tensor's pages are no longer needed by this process.
    public func release(_ t: Tensor) { shards[t.shard].file.release(shards[t.shard].fileRange(of: t.info)) }

    /// Total bytes of the shard files.
    public var fileBytes: Int { shards.reduce(0) { $0 + $1.file.count } }
}

/// Problems with a model folder's companion files.
public enum ModelSourceError: Error, CustomStringConvertible, Equatable {
    case noWeights(directory: String)
    case badIndex(path: String, reason: String)
    case missingShard(path: String, index: String)
    case duplicateTensor(name: String, first: String, second: String)
    case badConfig(path: String, reason: String)

    public var description: String {
        switch self {
        case .noWeights(let d):
            return "\(d): no model.safetensors, model.safetensors.index.json or single .safetensors file in this folder; point at the weights file itself"
        case let .badIndex(p, r): return "\(p): \(r); fix the index or give the shard files' folder a valid one"
        case let .missingShard(p, i): return "\(p): listed in \(i) but missing; copy the shard beside the index"
        case let .duplicateTensor(n, a, b): return "tensor \(n) appears in both \(a) and \(b); the shards do not belong together"
        case let .badConfig(p, r): return "\(p): not valid JSON: \(r); fix or remove the file"
        }
    }
}
