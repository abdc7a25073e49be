import Foundation

/// What a tokenizer's files say, before any table for encoding is built.
struct TokenizerDefinition {
    var vocabulary: Vocabulary
    /// The file the vocabulary came from, for errors found later.
    var vocabularyFile: String
    /// Merges in rank order.
    var merges: [(left: Int32, right: Int32, merged: Int32)]
    /// Text → id of the special tokens (`encode` emits them only when asked to).
    var specialTokens: [(text: String, id: Int32)]
}

/// Reads the three on-disk forms of a GPT-2-style tokenizer.
///
/// * `vocab.json` + `merges.txt` (Hugging Face's names) or `encoder.json` + `vocab.bpe`
///   (OpenAI's): a JSON object token → id, and one merge per line, "left right", in rank order,
///   after an optional `#version` line.
/// * `tokenizer.json` (Hugging Face): `model.vocab` and `model.merges` of a BPE model, the
///   merges written either as "left right" strings or as [left, right] arrays.
enum TokenizerFiles {
    /// The file pairs, in the order `locate` tries them.
    static let pairs: [(vocab: String, merges: String)] = [("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")]
    static let tokenizerJSON = "tokenizer.json"
    static let endOfText = "<|endoftext|>"

    /// Where a folder keeps its tokenizer.
    enum Location: Equatable {
        case pair(vocab: String, merges: String)
        case tokenizerJSON(String)
    }

    static func locate(directory: String) throws -> Location {
        let fm = FileManager.default
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        func exists(_ name: String) -> Bool {
            var isDirectory: ObjCBool = false
            return fm.fileExists(atPath: path(name), isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TokenizerError.cannotRead(path: directory, reason: "no such folder")
        }
        for p in pairs where exists(p.vocab) && exists(p.merges) {
            return .pair(vocab: path(p.vocab), merges: path(p.merges))
        }
        if exists(tokenizerJSON) { return .tokenizerJSON(path(tokenizerJSON)) }
        for p in pairs {
            if exists(p.vocab) { throw TokenizerError.partnerMissing(directory: directory, found: p.vocab, missing: p.merges) }
            if exists(p.merges) { throw TokenizerError.partnerMissing(directory: directory, found: p.merges, missing: p.vocab) }
        }
        throw TokenizerError.filesNotFound(
            directory: directory, lookedFor: pairs.map { "\($0.vocab) + \($0.merges)" } + [tokenizerJSON])
    }

    static func read(_ path: String) throws -> [UInt8] {
        do { return try InputFile.read(path) } catch let e as FileError { throw TokenizerError.cannotRead(path: path, reason: e.detail) }
    }

    // MARK: vocab.json + merges.txt

    static func parsePair(vocabJSON: [UInt8], merges: [UInt8], vocabFile: String, mergesFile: String) throws -> TokenizerDefinition {
        let json = try parseJSON(vocabJSON, file: vocabFile)
        let vocabulary = try vocabularyFromObject(json, file: vocabFile, what: "the top-level value")
        let merges = try parseMergesText(merges, vocabulary: vocabulary, file: mergesFile)
        var special: [(text: String, id: Int32)] = []
        if let id = vocabulary.id(ofText: endOfText) { special.append((endOfText, id)) }
        return TokenizerDefinition(vocabulary: vocabulary, vocabularyFile: vocabFile, merges: merges, specialTokens: special)
    }

    static func parseJSON(_ bytes: [UInt8], file: String) throws -> JSONValue {
        do {
            return try JSONValue.parse(bytes)
        } catch let e as JSONParseError {
            throw TokenizerError.invalidJSON(file: file, offset: e.offset, reason: e.reason)
        }
    }

    /// Entries of a JSON object token → id.
    static func vocabularyFromObject(_ json: JSONValue, file: String, what: String,
                                     extra: [(text: String, id: Int)] = []) throws -> Vocabulary {
        guard let members = json.objectMembers else {
            throw TokenizerError.invalidVocabulary(file: file, reason: "\(what) is not a JSON object of token → id")
        }
        var entries: [(text: String, id: Int)] = []
        entries.reserveCapacity(members.count + extra.count)
        for m in members {
            guard let id = m.value.intValue else {
                throw TokenizerError.invalidVocabulary(file: file, reason: "the id of token \(Vocabulary.quoted(m.key)) is not an integer")
            }
            entries.append((m.key, id))
        }
        // An added token may repeat its model.vocab entry, but not give the id another text.
        let known = Dictionary(entries.map { ($0.id, $0.text) }, uniquingKeysWith: { first, _ in first })
        for e in extra {
            guard let text = known[e.id] else { entries.append(e); continue }
            if text != e.text {
                throw TokenizerError.invalidVocabulary(
                    file: file, reason: "id \(e.id) is given to both \(Vocabulary.quoted(text)) and \(Vocabulary.quoted(e.text))")
            }
        }
        return try Vocabulary(entries: entries, file: file)
    }

    /// merges.txt: lines "left right"; a first `#version` line and empty lines are skipped, a
    /// trailing CR is ignored (no byte-level token contains a raw CR or space).
    static func parseMergesText(_ text: [UInt8], vocabulary: Vocabulary, file: String) throws -> [(left: Int32, right: Int32, merged: Int32)] {
        var merges: [(left: Int32, right: Int32, merged: Int32)] = []
        merges.reserveCapacity(vocabulary.count)
        try text.withUnsafeBufferPointer { all in
            var lineNumber = 0
            var start = 0
            while start < all.count {
                lineNumber += 1
                var end = start
                while end < all.count, all[end] != 0x0A { end += 1 }
                let next = end + 1
                if end > start, all[end - 1] == 0x0D { end -= 1 }
                defer { start = next }
                let line = UnsafeBufferPointer(rebasing: all[start..<end])
                if line.isEmpty { continue }
                if line.starts(with: "#version".utf8) { continue }
                let spaces = line.indices.filter { line[$0] == 0x20 }
                guard spaces.count == 1, let space = spaces.first, space > 0, space < line.count - 1 else {
                    throw TokenizerError.invalidMerge(
                        file: file, line: lineNumber,
                        reason: "expected two tokens separated by one space, found \(Vocabulary.quoted(String(decoding: line, as: UTF8.self)))")
                }
                merges.append(try resolveMerge(UnsafeBufferPointer(rebasing: line[..<space]),
                                               UnsafeBufferPointer(rebasing: line[(space + 1)...]),
                                               vocabulary: vocabulary, file: file, line: lineNumber))
            }
        }
        return merges
    }

    /// The ids of a merge's two sides and of their concatenation, all of which must be tokens.
    static func resolveMerge(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>,
                             vocabulary: Vocabulary, file: String, line: Int) throws -> (left: Int32, right: Int32, merged: Int32) {
        func missing(_ bytes: UnsafeBufferPointer<UInt8>, _ role: String) -> TokenizerError {
            .invalidMerge(file: file, line: line,
                          reason: "\(role) \(Vocabulary.quoted(String(decoding: bytes, as: UTF8.self))) is not in the vocabulary")
        }
        guard let l = vocabulary.id(ofText: left) else { throw missing(left, "token") }
        guard let r = vocabulary.id(ofText: right) else { throw missing(right, "token") }
        let joined = Array(left) + Array(right)
        guard let m = joined.withUnsafeBufferPointer({ vocabulary.id(ofText: $0) }) else {
            throw joined.withUnsafeBufferPointer { missing($0, "merged token") }
        }
        return (l, r, m)
    }

    // MARK: tokenizer.json

    static func parseTokenizerJSON(_ bytes: [UInt8], file: String) throws -> TokenizerDefinition {
        let json = try parseJSON(bytes, file: file)
        func unsupported(_ reason: String) -> TokenizerError { .unsupportedTokenizer(file: file, reason: reason) }
        guard json.objectMembers != nil else { throw unsupported("the top-level value is not an object") }
        guard let model = json["model"], model.objectMembers != nil else { throw unsupported("it has no \"model\" object") }
        if let type = model["type"], type != .null, type.stringValue != "BPE" {
            throw unsupported("model.type is \(type.serialized()), not \"BPE\"")
        }
        if let normalizer = json["normalizer"], normalizer != .null {
            throw unsupported("it has a normalizer (\(normalizer["type"]?.stringValue ?? "?")); GPT-2 has none")
        }
        if let pre = json["pre_tokenizer"], pre != .null {
            guard pre["type"]?.stringValue == "ByteLevel" else {
                throw unsupported("pre_tokenizer is \(pre["type"]?.stringValue ?? "?"), not ByteLevel")
            }
            if pre["add_prefix_space"]?.boolValue == true { throw unsupported("pre_tokenizer.add_prefix_space is true; GPT-2 adds no space") }
            if pre["use_regex"]?.boolValue == false { throw unsupported("pre_tokenizer.use_regex is false; GPT-2 splits with its pattern") }
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key]?.stringValue, !v.isEmpty { throw unsupported("model.\(key) is \"\(v)\"; GPT-2 has none") }
        }
        if model["ignore_merges"]?.boolValue == true { throw unsupported("model.ignore_merges is true; GPT-2 applies every merge") }
        if let dropout = model["dropout"]?.doubleValue, dropout > 0 { throw unsupported("model.dropout is \(dropout); encoding must be deterministic") }
        guard let vocab = model["vocab"] else { throw TokenizerError.invalidVocabulary(file: file, reason: "model.vocab is missing") }

        // Added tokens: the special ones can be emitted on request; one missing from model.vocab
        // (as in some files) is added to the vocabulary.
        var added: [(text: String, id: Int)] = []
        var special: [(text: String, id: Int32)] = []
        for (i, token) in (json["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let content = token["content"]?.stringValue, let id = token["id"]?.intValue,
                  id >= 0, id < Vocabulary.idLimit else {
                throw TokenizerError.invalidVocabulary(file: file, reason: "added_tokens[\(i)] needs a \"content\" string and an \"id\"")
            }
            added.append((content, id))
            if token["special"]?.boolValue == true { special.append((content, Int32(id))) }
        }
        let vocabulary = try vocabularyFromObject(vocab, file: file, what: "model.vocab", extra: added)
        if special.isEmpty, let id = vocabulary.id(ofText: endOfText) { special.append((endOfText, id)) }

        guard let mergeList = model["merges"]?.arrayValue else {
            throw TokenizerError.invalidVocabulary(file: file, reason: "model.merges is missing or not an array")
        }
        var merges: [(left: Int32, right: Int32, merged: Int32)] = []
        merges.reserveCapacity(mergeList.count)
        for (i, entry) in mergeList.enumerated() {
            let sides: [String]
            if let s = entry.stringValue {
                sides = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else if let a = entry.arrayValue, a.allSatisfy({ $0.stringValue != nil }) {
                sides = a.map { $0.stringValue! }
            } else {
                sides = []
            }
            guard sides.count == 2, !sides[0].isEmpty, !sides[1].isEmpty else {
                throw TokenizerError.invalidMerge(file: file, line: i + 1,
                                                  reason: "expected \"left right\" or [\"left\", \"right\"], found \(entry.serialized())")
            }
            let l = Array(sides[0].utf8), r = Array(sides[1].utf8)
            merges.append(try l.withUnsafeBufferPointer { l in
                try r.withUnsafeBufferPointer { r in
                    try resolveMerge(l, r, vocabulary: vocabulary, file: file, line: i + 1)
                }
            })
        }
        return TokenizerDefinition(vocabulary: vocabulary, vocabularyFile: file, merges: merges, specialTokens: special)
    }
}
