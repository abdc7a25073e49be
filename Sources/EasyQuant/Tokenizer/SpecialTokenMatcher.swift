/// Finds added tokens (control and user-defined tokens, see `TokenType`) in text: the leftmost
/// occurrence, and at that position the longest token, as tiktoken and Hugging Face tokenizers
/// do. (llama.cpp instead cuts out the longest token everywhere first, then the next longest;
/// the two differ only when one added token's text overlaps another's, which no vocabulary of
/// the supported families has.)
///
/// A byte trie of the tokens' UTF-8 texts, so that the text is read once whatever the number
/// of tokens (Qwen2 has 293, Llama 3 256): positions whose byte starts no token are skipped by
/// a table lookup, and the others cost at most one step per byte of the longest token.
struct SpecialTokenMatcher: Sendable {
    /// Node n's edges are `edgeBytes[edgeStart[n]..<edgeStart[n+1]]` (sorted), leading to the
    /// nodes in `edgeTargets`; `tokenAt[n]` is the id of the token that ends at n, or -1.
    private let edgeStart: [Int32]
    private let edgeBytes: [UInt8]
    private let edgeTargets: [Int32]
    private let tokenAt: [Int32]
    /// Whether some token starts with each byte.
    private let startsToken: [Bool]

    var isEmpty: Bool { tokenAt.count <= 1 }

    /// `tokens` are (UTF-8 text, id) with distinct, non-empty texts.
    init(tokens: [(bytes: [UInt8], id: Int32)]) {
        var children: [[UInt8: Int32]] = [[:]]
        var tokenAt: [Int32] = [-1]
        var starts = [Bool](repeating: false, count: 256)
        for (bytes, id) in tokens where !bytes.isEmpty {
            starts[Int(bytes[0])] = true
            var node = 0
            for b in bytes {
                if let next = children[node][b] {
                    node = Int(next)
                } else {
                    children.append([:])
                    tokenAt.append(-1)
                    children[node][b] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            tokenAt[node] = id
        }
        var edgeStart: [Int32] = [0]
        var edgeBytes: [UInt8] = []
        var edgeTargets: [Int32] = []
        for node in children {
            for (b, target) in node.sorted(by: { $0.key < $1.key }) {
                edgeBytes.append(b)
                edgeTargets.append(target)
            }
            edgeStart.append(Int32(edgeBytes.count))
        }
        self.edgeStart = edgeStart
        self.edgeBytes = edgeBytes
        self.edgeTargets = edgeTargets
        self.tokenAt = tokenAt
        self.startsToken = starts
    }

    /// The child of `node` along byte `b`, or -1.
    @inline(__always)
    private func child(_ node: Int, _ b: UInt8) -> Int {
        var lo = Int(edgeStart[node]), hi = Int(edgeStart[node + 1])
        while lo < hi {
            let mid = (lo + hi) >> 1
            let m = edgeBytes[mid]
            if m == b { return Int(edgeTargets[mid]) }
            if m < b { lo = mid + 1 } else { hi = mid }
        }
        return -1
    }

    /// The first token in `text[from..<end]`: where it starts, its length and its id.
    func firstMatch(in text: UnsafePointer<UInt8>, from: Int, end: Int) -> (at: Int, length: Int, id: Int32)? {
        guard !isEmpty else { return nil }
        var i = from
        while i < end {
            if startsToken[Int(text[i])] {
                var node = 0
                var j = i
                var best: (length: Int, id: Int32)?
                while j < end {
                    node = child(node, text[j])
                    if node < 0 { break }
                    j += 1
                    if tokenAt[node] >= 0 { best = (j - i, tokenAt[node]) }
                }
                if let best { return (i, best.length, best.id) }
            }
            i += 1
        }
        return nil
    }
}
