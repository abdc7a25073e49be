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
        let shardPaths: [String]
        var weightMap: [String: String] = [:]
        switch InputFile.kind(of: path) {
        case .missing:
            throw FileError.notFound(path: path, hint: "give a .safetensors file or a Hugging Face model folder")
        case .directory:
            directory = path
            (shardPaths, weightMap) = try Self.findShards(in: path)
        case .regular, .special, .unreachable:
            // A special file is refused by MappedFile with its own message.
            directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
            shardPaths = [path]
        }
        shards = try shardPaths.map { try SafetensorsFile(path: $0) }
        try Self.refuseRepeatedFiles(shards)

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
        if !weightMap.isEmpty { try Self.checkWeightMap(weightMap, shards: shards, tensors: all, seen: seen, directory: directory) }

        let configPath = (directory as NSString).appendingPathComponent("config.json")
        if InputFile.kind(of: configPath) != .missing {
            let bytes = try InputFiles.read(configPath, what: "config.json")
            do { config = try JSONValue.parse(bytes) } catch {
                throw ModelSourceError.badConfig(path: configPath, reason: "\(error)")
            }
        } else {
            config = nil
        }
        var found: [(String, String)] = []
        let dir = directory
        for set in Self.tokenizerFileSets {
            let paths = set.map { (dir as NSString).appendingPathComponent($0) }
            let kinds = paths.map { InputFile.kind(of: $0) }
            if kinds.allSatisfy({ $0 != .missing }) {
                // Refuse a FIFO or folder now, by name, rather than block or fail when it is read.
                for (p, k) in zip(paths, kinds) { try InputFile.refuseIfNotRegular(p, k) }
                found = Array(zip(set, paths))
                break
            }
        }
        tokenizerFiles = found.map { (name: $0.0, path: $0.1) }
    }

    /// A model from one safetensors file that is already open, with the config given and no
    /// tokenizer: the model-construction fuzz target builds models from its input this way,
    /// through the same family detection, name table and config checks as a model folder.
    public init(file: SafetensorsFile, config: JSONValue?) {
        path = file.path
        directory = "."
        shards = [file]
        tensors = file.tensors.map { Tensor(info: $0, shard: 0) }
        index = Dictionary(tensors.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { first, _ in first })
        self.config = config
        tokenizerFiles = []
    }

    /// Name of the index file of a sharded checkpoint.
    public static let indexFileName = "model.safetensors.index.json"

    /// The shard files of a model folder, and for a sharded one the index's tensor → file map.
    static func findShards(in dir: String) throws -> (paths: [String], weightMap: [String: String]) {
        let single = (dir as NSString).appendingPathComponent("model.safetensors")
        if InputFile.kind(of: single) != .missing { return ([single], [:]) }
        let indexPath = (dir as NSString).appendingPathComponent(indexFileName)
        if InputFile.kind(of: indexPath) != .missing {
            let (files, map) = try readIndex(indexPath)
            let paths = files.sorted().map { (dir as NSString).appendingPathComponent($0) }
            for p in paths where InputFile.kind(of: p) == .missing {
                throw ModelSourceError.missingShard(path: p, index: indexPath)
            }
            return (paths, map)
        }
        let others = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        if others.count == 1 { return ([(dir as NSString).appendingPathComponent(others[0])], [:]) }
        throw ModelSourceError.noWeights(directory: dir)
    }

    /// The shard file names an index lists (each once) and its tensor → file map. A file name
    /// must name a `.safetensors` file in the index's own folder: no `/`, no `..`, no NUL.
    static func readIndex(_ indexPath: String) throws -> (files: [String], map: [String: String]) {
        let json: JSONValue
        do { json = try JSONValue.parse(InputFiles.read(indexPath, what: "shard index")) } catch let e as JSONParseError {
            throw ModelSourceError.badIndex(path: indexPath, reason: "\(e)")
        }
        guard let entries = json["weight_map"]?.objectMembers else {
            throw ModelSourceError.badIndex(path: indexPath, reason: "no \"weight_map\" object")
        }
        var files: [String] = []
        var known = Set<String>()
        var map: [String: String] = [:]
        for (tensor, file) in entries {
            guard let name = file.stringValue, isShardFileName(name) else {
                throw ModelSourceError.badIndex(path: indexPath, reason: "tensor \(MessageText.clean(tensor)) maps to \(MessageText.clean(file.serialized())), not the name of a .safetensors file in the index's folder")
            }
            map[tensor] = name
            if known.insert(name).inserted { files.append(name) }
        }
        guard !files.isEmpty else { throw ModelSourceError.badIndex(path: indexPath, reason: "\"weight_map\" lists no tensors") }
        return (files, map)
    }

    /// Whether `name` is a plain `.safetensors` file name, which cannot reach outside its folder.
    static func isShardFileName(_ name: String) -> Bool {
        name.hasSuffix(".safetensors") && name != ".safetensors" && !name.contains("/") && !name.contains("\0")
    }

    /// Two shard names that are the same file (links) would load every tensor twice.
    static func refuseRepeatedFiles(_ shards: [SafetensorsFile]) throws {
        var seen: [[UInt64]: String] = [:]
        for shard in shards {
            var st = stat()
            guard stat(shard.path, &st) == 0 else { continue }
            let id = [UInt64(st.st_dev), UInt64(st.st_ino)]
            if let first = seen[id] { throw ModelSourceError.sameFile(first: first, second: shard.path) }
            seen[id] = shard.path
        }
    }

    /// The index and the shards must agree wherever both speak: every tensor the index lists
    /// is in the shard it names. (Tensors the index leaves out are loaded, as transformers does.)
    static func checkWeightMap(_ map: [String: String], shards: [SafetensorsFile], tensors: [Tensor],
                               seen: [String: Int], directory: String) throws {
        let indexPath = (directory as NSString).appendingPathComponent(indexFileName)
        for (name, file) in map.sorted(by: { $0.key < $1.key }) {
            guard let t = seen[name] else {
                throw ModelSourceError.badIndex(path: indexPath, reason: "tensor \(MessageText.clean(name)) is listed in \(MessageText.clean(file)) but no shard holds it")
            }
            let holder = (shards[tensors[t].shard].path as NSString).lastPathComponent
            guard holder == file else {
                throw ModelSourceError.badIndex(path: indexPath, reason: "tensor \(MessageText.clean(name)) is listed in \(MessageText.clean(file)) but is in \(MessageText.clean(holder))")
            }
        }
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
    /// Two shard names that lead to the same file.
    case sameFile(first: String, second: String)

    public var description: String { MessageText.oneLine(text) }

    /// The message before the one-line guarantee.
    private var text: String {
        switch self {
        case .noWeights(let d):
            return "\(d): no model.safetensors, model.safetensors.index.json or single .safetensors file in this folder; point at the weights file itself"
        case let .badIndex(p, r): return "\(p): \(r); fix the index or give the shard files' folder a valid one"
        case let .missingShard(p, i): return "\(p): listed in \(i) but missing; copy the shard beside the index"
        case let .duplicateTensor(n, a, b): return "tensor \(MessageText.clean(n)) appears in both \(a) and \(b); the shards do not belong together"
        case let .badConfig(p, r): return "\(p): not valid JSON: \(r); fix or remove the file"
        case let .sameFile(a, b): return "\(b) is the same file as \(a) (a link?); each shard must be listed once"
        }
    }
}
