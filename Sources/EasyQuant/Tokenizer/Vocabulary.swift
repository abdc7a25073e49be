/// The tokens of a vocabulary: id ↔ token text ↔ bytes, and each token's kind.
///
/// Built from (text, id, kind) entries as vocab.json, encoder.json, tokenizer.json or a GGUF
/// file list them. The bytes of a normal token are its text read through `ByteLevelAlphabet`;
/// a token whose text leaves the alphabet, and every control or user-defined token (an added
/// token written as plain text), stands for its UTF-8 bytes.
struct Vocabulary: Sendable {
    /// One past the largest id (ids may have gaps; a gap decodes to U+FFFD).
    let count: Int
    /// Bytes of token i are `bytes[offsets[i]..<offsets[i+1]]`.
    let offsets: [Int32]
    let bytes: [UInt8]
    /// Whether id i exists, and its kind (`.unused` for a gap).
    let present: [Bool]
    let types: [TokenType]
    /// Whether token i's text is made of byte-level characters (whatever its kind).
    let textIsByteLevel: [Bool]
    /// Token text (UTF-8, exactly as in the file) → id, for resolving merges by name.
    let textIndex: ByteStringTable

    /// Ids above this are refused: the tables are sized by the largest id.
    static let idLimit = 1 << 24
    /// Ids may leave gaps, but the id space may be at most about twice what is listed: the
    /// tables are sized by the largest id, so a few listed tokens with one huge id would make a
    /// file of a few KiB cost hundreds of MB (found by fuzz-tokenizer). Real vocabularies are
    /// dense or nearly so.
    static func idSpaceLimit(tokens: Int) -> Int { min(idLimit, 2 * tokens + 1024) }
    /// Longer token texts are refused (the lookup tables store lengths in 16 bits).
    static let longestToken = 65535

    /// `entries` in file order; `file` names the source in errors.
    init(entries: [(text: String, id: Int, type: TokenType)], file: String) throws {
        guard !entries.isEmpty else { throw TokenizerError.invalidVocabulary(file: file, reason: "it has no tokens") }
        var maxID = 0
        for e in entries {
            guard e.id >= 0, e.id < Vocabulary.idLimit else {
                throw TokenizerError.invalidVocabulary(
                    file: file, reason: "token \(Vocabulary.quoted(e.text)) has id \(e.id), outside 0..<\(Vocabulary.idLimit)")
            }
            maxID = max(maxID, e.id)
        }
        let count = maxID + 1
        guard count <= Vocabulary.idSpaceLimit(tokens: entries.count) else {
            throw TokenizerError.invalidVocabulary(
                file: file, reason: "it lists \(entries.count) tokens but uses ids up to \(maxID); ids may leave gaps, but must stay below \(Vocabulary.idSpaceLimit(tokens: entries.count)) (2 × tokens + 1024)")
        }
        var texts = [String?](repeating: nil, count: count)
        var types = [TokenType](repeating: .unused, count: count)
        let index = ByteStringTable(expectedCount: entries.count)
        for e in entries {
            if let other = texts[e.id] {
                throw TokenizerError.invalidVocabulary(
                    file: file, reason: "id \(e.id) is given to both \(Vocabulary.quoted(other)) and \(Vocabulary.quoted(e.text))")
            }
            texts[e.id] = e.text
            types[e.id] = e.type
            var utf8 = Array(e.text.utf8)
            if utf8.isEmpty {
                throw TokenizerError.invalidVocabulary(file: file, reason: "id \(e.id) has an empty token")
            }
            if utf8.count > Vocabulary.longestToken {
                throw TokenizerError.invalidVocabulary(
                    file: file, reason: "token \(e.id) is \(utf8.count) bytes long, more than \(Vocabulary.longestToken)")
            }
            var id = Int32(e.id)
            let hash = ByteStringTable.hash(&utf8, utf8.count)
            if let found = index.find(&utf8, utf8.count, hash: hash) {
                throw TokenizerError.invalidVocabulary(
                    file: file, reason: "token \(Vocabulary.quoted(e.text)) is listed twice, as ids \(index.values[found.offset]) and \(e.id)")
            }
            index.insert(&utf8, utf8.count, hash: hash, values: &id, count: 1)
        }
        var offsets: [Int32] = [0]
        var bytes: [UInt8] = []
        var present = [Bool](repeating: false, count: count)
        var textIsByteLevel = [Bool](repeating: false, count: count)
        offsets.reserveCapacity(count + 1)
        for id in 0..<count {
            if let text = texts[id] {
                present[id] = true
                let decoded = ByteLevelAlphabet.bytes(ofTokenText: text)
                textIsByteLevel[id] = decoded != nil
                if let decoded, types[id].isByteLevel {
                    bytes += decoded
                } else {
                    bytes += Array(text.utf8)
                }
            } else {
                bytes += [0xEF, 0xBF, 0xBD]  // U+FFFD for an id nobody uses
            }
            guard bytes.count <= Int(Int32.max) else {
                throw TokenizerError.invalidVocabulary(file: file, reason: "the tokens are too long")
            }
            offsets.append(Int32(bytes.count))
        }
        self.count = count
        self.offsets = offsets
        self.bytes = bytes
        self.present = present
        self.types = types
        self.textIsByteLevel = textIsByteLevel
        self.textIndex = index
    }

    /// The id of a token given by its text's UTF-8 bytes.
    func id(ofText utf8: UnsafeBufferPointer<UInt8>) -> Int32? {
        guard let base = utf8.baseAddress, utf8.count > 0 else { return nil }
        guard let found = textIndex.find(base, utf8.count, hash: ByteStringTable.hash(base, utf8.count)) else { return nil }
        return textIndex.values[found.offset]
    }

    func id(ofText text: String) -> Int32? {
        Array(text.utf8).withUnsafeBufferPointer { id(ofText: $0) }
    }

    /// The text of token `id` decoded through the byte-level alphabet, if it can be (for the
    /// kinds whose stored bytes are their plain UTF-8 text).
    func byteLevelBytes(of id: Int) -> [UInt8]? {
        guard present[id], textIsByteLevel[id] else { return nil }
        let stored = Array(bytes[Int(offsets[id])..<Int(offsets[id + 1])])
        if types[id].isByteLevel { return stored }
        return ByteLevelAlphabet.bytes(ofTokenText: String(decoding: stored, as: UTF8.self))
    }

    /// The id of the single-byte token for each byte value, or -1 for a byte that has none
    /// (SmolLM2 has no token for 21 bytes, such as 0x04 and 0xC0).
    func byteTokens() -> [Int32] {
        (0..<256).map { b in id(ofText: String(Unicode.Scalar(ByteLevelAlphabet.scalarForByte[b])!)) ?? -1 }
    }

    /// A token text for messages: quoted, with controls escaped, and cut if very long.
    static func quoted(_ text: String) -> String {
        var s = ""
        for scalar in text.unicodeScalars.prefix(40) {
            s += scalar.value < 0x20 || scalar.value == 0x7F ? scalar.escaped(asASCII: true) : String(scalar)
        }
        return "\"" + s + (text.unicodeScalars.count > 40 ? "…" : "") + "\""
    }
}
