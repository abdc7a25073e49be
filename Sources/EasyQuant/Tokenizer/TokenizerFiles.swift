import Foundation

/// Reads the on-disk forms of a byte-level BPE tokenizer.
///
/// * `tokenizer.json` (Hugging Face): `model.vocab` and `model.merges` of a BPE model (merges
///   written either as "left right" strings or as [left, right] arrays), `added_tokens`, and a
///   `pre_tokenizer` section that must be one of the known rule sets (`PreTokenizerRules`).
///   A `tokenizer_config.json` beside it, if any, says whether BOS and EOS are added.
/// * `vocab.json` + `merges.txt` (Hugging Face's names) or `encoder.json` + `vocab.bpe`
///   (OpenAI's): a JSON object token → id, and one merge per line, "left right", in rank order,
///   after an optional `#version` line. These are GPT-2's files: `gpt2` rules, and
///   `<|endoftext|>` as BOS, EOS and the one special token.
enum TokenizerFiles {
    /// The file pairs, in the order `locate` tries them (after tokenizer.json).
    static let pairs: [(vocab: String, merges: String)] = [("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")]
    static let tokenizerJSON = "tokenizer.json"
    static let tokenizerConfig = "tokenizer_config.json"
    static let endOfText = "<|endoftext|>"
    /// Tokenizer files larger than this are refused before they are read.
    static let largestFile = 1 << 30

    /// Where a folder keeps its tokenizer.
    enum Location: Equatable {
        case tokenizerJSON(String, config: String?)
        case pair(vocab: String, merges: String)
    }

    /// tokenizer.json comes first: a folder that has it and vocab.json + merges.txt (as Hugging
    /// Face's do) describes its pre-tokenizer only in tokenizer.json (SmolLM2's splits digits,
    /// which the pair cannot say).
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
        if exists(tokenizerJSON) {
            return .tokenizerJSON(path(tokenizerJSON), config: exists(tokenizerConfig) ? path(tokenizerConfig) : nil)
        }
        for p in pairs where exists(p.vocab) && exists(p.merges) {
            return .pair(vocab: path(p.vocab), merges: path(p.merges))
        }
        for p in pairs {
            if exists(p.vocab) { throw TokenizerError.partnerMissing(directory: directory, found: p.vocab, missing: p.merges) }
            if exists(p.merges) { throw TokenizerError.partnerMissing(directory: directory, found: p.merges, missing: p.vocab) }
        }
        throw TokenizerError.filesNotFound(
            directory: directory, lookedFor: [tokenizerJSON] + pairs.map { "\($0.vocab) + \($0.merges)" })
    }

    static func read(_ path: String) throws -> [UInt8] {
        // Through MappedFile's checks: a FIFO or a device is refused, not waited on.
        do { return try InputFiles.read(path, what: "tokenizer file", limit: largestFile) } catch let e as FileError {
            throw TokenizerError.cannotRead(path: path, reason: e.detail)
        }
    }

    static func parseJSON(_ bytes: [UInt8], file: String) throws -> JSONValue {
        do {
            return try JSONValue.parse(bytes)
        } catch let e as JSONParseError {
            throw TokenizerError.invalidJSON(file: file, offset: e.offset, reason: e.reason)
        }
    }

    // MARK: vocab.json + merges.txt

    static func parsePair(vocabJSON: [UInt8], merges: [UInt8], vocabFile: String, mergesFile: String) throws -> TokenizerDefinition {
        let json = try parseJSON(vocabJSON, file: vocabFile)
        guard let members = json.objectMembers else {
            throw TokenizerError.invalidVocabulary(file: vocabFile, reason: "the top-level value is not a JSON object of token → id")
        }
        var entries = try vocabularyEntries(members, file: vocabFile)
        if let i = entries.firstIndex(where: { $0.text == endOfText }) { entries[i].type = .control }
        let vocabulary = try Vocabulary(entries: entries, file: vocabFile)
        let merges = try parseMergesText(merges, vocabulary: vocabulary, file: mergesFile)
        let endOfTextID = vocabulary.id(ofText: endOfText)
        return try TokenizerDefinition(
            vocabulary: vocabulary, vocabularyFile: vocabFile, merges: merges, duplicateMergeRank: .last,
            rules: .gpt2, ignoreMerges: false, bos: endOfTextID, eos: endOfTextID, addBOS: false, addEOS: false
        ).validated()
    }

    /// Entries of a JSON object token → id, all normal tokens.
    static func vocabularyEntries(_ members: [(key: String, value: JSONValue)], file: String) throws -> [(text: String, id: Int, type: TokenType)] {
        var entries: [(text: String, id: Int, type: TokenType)] = []
        entries.reserveCapacity(members.count)
        for m in members {
            guard let id = m.value.intValue else {
                throw TokenizerError.invalidVocabulary(file: file, reason: "the id of token \(Vocabulary.quoted(m.key)) is not an integer")
            }
            entries.append((m.key, id, .normal))
        }
        return entries
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
                guard merges.count < TokenizerDefinition.mergeLimit else {
                    throw TokenizerError.invalidMerge(file: file, line: lineNumber, reason: "more than \(TokenizerDefinition.mergeLimit) merges")
                }
                merges.append(try resolveMerge(line, vocabulary: vocabulary, file: file, line: lineNumber))
            }
        }
        return merges
    }

    /// A merge written "left right" (one space; GGUF's `tokenizer.ggml.merges` uses the same form).
    static func resolveMerge(_ line: UnsafeBufferPointer<UInt8>, vocabulary: Vocabulary, file: String, line lineNumber: Int) throws -> (left: Int32, right: Int32, merged: Int32) {
        let spaces = line.indices.filter { line[$0] == 0x20 }
        guard spaces.count == 1, let space = spaces.first, space > 0, space < line.count - 1 else {
            throw TokenizerError.invalidMerge(
                file: file, line: lineNumber,
                reason: "expected two tokens separated by one space, found \(Vocabulary.quoted(String(decoding: line, as: UTF8.self)))")
        }
        return try resolveMerge(UnsafeBufferPointer(rebasing: line[..<space]), UnsafeBufferPointer(rebasing: line[(space + 1)...]),
                                vocabulary: vocabulary, file: file, line: lineNumber)
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

    static func parseTokenizerJSON(_ bytes: [UInt8], file: String, config: [UInt8]? = nil,
                                   configFile: String = tokenizerConfig) throws -> TokenizerDefinition {
        let json = try parseJSON(bytes, file: file)
        func unsupported(_ reason: String) -> TokenizerError { .unsupportedTokenizer(file: file, reason: reason) }
        guard json.objectMembers != nil else { throw unsupported("the top-level value is not an object") }
        guard let model = json["model"], model.objectMembers != nil else { throw unsupported("it has no \"model\" object") }
        if let type = model["type"], type != .null, type.stringValue != "BPE" {
            throw unsupported("model.type is \(type.serialized()), not \"BPE\"")
        }
        // NFC is accepted and not applied, as llama.cpp does for Qwen2: it changes only text
        // that is not in NFC already.
        if let normalizer = json["normalizer"], normalizer != .null, normalizer["type"]?.stringValue != "NFC" {
            throw unsupported("it has a normalizer (\(normalizer["type"]?.stringValue ?? "?")); only none or NFC is supported")
        }
        guard let pre = json["pre_tokenizer"], pre != .null else {
            throw unsupported("it has no pre_tokenizer; the known rule sets are \(PreTokenizerRules.knownNames)")
        }
        let rules: PreTokenizerRules
        switch PreTokenizerRules.recognize(pre) {
        case .success(let r): rules = r
        case .failure(let mismatch): throw unsupported(mismatch.description)
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key]?.stringValue, !v.isEmpty { throw unsupported("model.\(key) is \"\(v)\"; a byte-level BPE has none") }
        }
        if model["byte_fallback"]?.boolValue == true { throw unsupported("model.byte_fallback is true; that is a SentencePiece-style BPE, not byte-level") }
        if let dropout = model["dropout"]?.doubleValue, dropout > 0 { throw unsupported("model.dropout is \(dropout); encoding must be deterministic") }
        guard let vocab = model["vocab"], let members = vocab.objectMembers else {
            throw TokenizerError.invalidVocabulary(file: file, reason: "model.vocab is missing or not a JSON object of token → id")
        }

        // Added tokens: special ones are control tokens, the others user-defined (see
        // TokenType). One missing from model.vocab (as in some files) joins the vocabulary.
        var entries = try vocabularyEntries(members, file: file)
        var indexOfID: [Int: Int] = [:]
        for (i, e) in entries.enumerated() { indexOfID[e.id] = i }
        for (i, token) in (json["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let content = token["content"]?.stringValue, let id = token["id"]?.intValue else {
                throw TokenizerError.invalidVocabulary(file: file, reason: "added_tokens[\(i)] needs a \"content\" string and an integer \"id\"")
            }
            for flag in ["lstrip", "rstrip", "single_word"] where token[flag]?.boolValue == true {
                throw unsupported("added_tokens[\(i)] \(Vocabulary.quoted(content)) has \(flag): true, which is not supported")
            }
            let type: TokenType = token["special"]?.boolValue == true ? .control : .userDefined
            if let existing = indexOfID[id] {
                guard entries[existing].text == content else {
                    throw TokenizerError.invalidVocabulary(
                        file: file, reason: "added_tokens[\(i)] \(Vocabulary.quoted(content)) has id \(id), which model.vocab gives to \(Vocabulary.quoted(entries[existing].text))")
                }
                entries[existing].type = type
            } else {
                indexOfID[id] = entries.count
                entries.append((content, id, type))
            }
        }
        let vocabulary = try Vocabulary(entries: entries, file: file)

        guard let mergeList = model["merges"]?.arrayValue else {
            throw TokenizerError.invalidVocabulary(file: file, reason: "model.merges is missing or not an array")
        }
        guard mergeList.count <= TokenizerDefinition.mergeLimit else {
            throw TokenizerError.invalidMerge(file: file, line: mergeList.count, reason: "more than \(TokenizerDefinition.mergeLimit) merges")
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

        // BOS and EOS: tokenizer_config.json first (Hugging Face rebuilds the post-processor
        // from its add_bos_token / add_eos_token), else the post-processor's template.
        let template = TemplateTokens(json["post_processor"], vocabulary: vocabulary)
        var bos = template.bos, eos = template.eos
        var addBOS = template.bos != nil, addEOS = template.eos != nil
        if let config {
            let settings = try parseJSON(config, file: configFile)
            func tokenID(_ key: String) throws -> Int32? {
                guard let value = settings[key], value != .null else { return nil }
                guard let text = value.stringValue ?? value["content"]?.stringValue else {
                    throw TokenizerError.invalidVocabulary(file: configFile, reason: "\(key) is neither a string nor an object with \"content\"")
                }
                guard let id = vocabulary.id(ofText: text) else {
                    throw TokenizerError.invalidVocabulary(file: configFile, reason: "\(key) \(Vocabulary.quoted(text)) is not a token of \(file)")
                }
                return id
            }
            bos = try tokenID("bos_token") ?? bos
            eos = try tokenID("eos_token") ?? eos
            if let add = settings["add_bos_token"]?.boolValue { addBOS = add }
            if let add = settings["add_eos_token"]?.boolValue { addEOS = add }
        }
        return try TokenizerDefinition(
            vocabulary: vocabulary, vocabularyFile: file, merges: merges, duplicateMergeRank: .last, rules: rules,
            ignoreMerges: model["ignore_merges"]?.boolValue ?? false, bos: bos, eos: eos, addBOS: addBOS, addEOS: addEOS
        ).validated()
    }
}

/// The tokens a tokenizer.json `TemplateProcessing` post-processor puts around a single text
/// (`"single": [{"SpecialToken": …}, {"Sequence": …}, {"SpecialToken": …}]`), alone or inside a
/// `Sequence` of processors. Anything else adds nothing.
private struct TemplateTokens {
    var bos: Int32?
    var eos: Int32?

    init(_ processor: JSONValue?, vocabulary: Vocabulary) {
        guard let processor, let template = TemplateTokens.find(processor),
              let single = template["single"]?.arrayValue,
              let sequence = single.firstIndex(where: { $0["Sequence"] != nil }) else { return }
        func id(_ item: JSONValue) -> Int32? {
            guard let name = item["SpecialToken"]?["id"]?.stringValue else { return nil }
            if let ids = template["special_tokens"]?[name]?["ids"]?.arrayValue, ids.count == 1,
               let id = ids[0].intValue, id >= 0, id < vocabulary.count, vocabulary.present[id] {
                return Int32(id)
            }
            return vocabulary.id(ofText: name)
        }
        if sequence == 1 { bos = id(single[0]) }
        if sequence == single.count - 2 { eos = id(single[single.count - 1]) }
    }

    private static func find(_ processor: JSONValue) -> JSONValue? {
        switch processor["type"]?.stringValue {
        case "TemplateProcessing": return processor
        case "Sequence": return processor["processors"]?.arrayValue?.lazy.compactMap { find($0) }.first
        default: return nil
        }
    }
}
