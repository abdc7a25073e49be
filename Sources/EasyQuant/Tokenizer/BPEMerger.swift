/// Byte-pair encoding of one pre-token: start from one token per byte and repeatedly apply the
/// lowest-ranked merge among adjacent pairs, the leftmost one when a pair occurs more than once,
/// until no adjacent pair has a merge. This is the rule of GPT-2's `encoder.py`, of Hugging
/// Face's BPE model and of llama.cpp (tiktoken ranks pairs by the merged token instead, which
/// gives the same ids for GPT-2's files; `scripts/tokenizer_reference.py` checks both).
///
/// One merger per thread: it owns its scratch buffers.
final class BPEMerger {
    private let merges: MergeTable
    private let byteTokens: [Int32]

    /// Pieces up to this many bytes use the quadratic scan below, which on short words beats
    /// any bookkeeping; longer ones (long numbers, runs of symbols, text without spaces) use a
    /// heap so that the cost stays O(n log n).
    static let smallLimit = 64

    private let ids = UnsafeMutablePointer<Int32>.allocate(capacity: BPEMerger.smallLimit)
    private let pairs = UnsafeMutablePointer<UInt64>.allocate(capacity: BPEMerger.smallLimit)
    /// Scratch of `mergeLarge`, grown to the longest piece seen (callers cap piece length):
    /// ids, links and the heap, 4 + 4 + 4 + 8 × (up to 3) bytes per byte of the piece.
    private var largeIDs = UnsafeMutableBufferPointer<Int32>(start: nil, count: 0)
    private var largeNext = UnsafeMutableBufferPointer<Int32>(start: nil, count: 0)
    private var largePrev = UnsafeMutableBufferPointer<Int32>(start: nil, count: 0)
    private var heap = PairHeap()

    /// Pair lookups and heap operations done so far: the merge work, for `EncodingStatistics`.
    private(set) var steps = 0
    /// Whether some byte has no token (its entry in `byteTokens` is -1): such bytes take part
    /// in no merge and are left out of the result, as llama.cpp leaves them out.
    private let bytesMayLackTokens: Bool

    init(merges: MergeTable, byteTokens: [Int32]) {
        precondition(byteTokens.count == 256)
        self.merges = merges
        self.byteTokens = byteTokens
        self.bytesMayLackTokens = byteTokens.contains { $0 < 0 }
    }

    deinit {
        ids.deallocate()
        pairs.deallocate()
        largeIDs.deallocate()
        largeNext.deallocate()
        largePrev.deallocate()
    }

    /// Bytes of scratch memory held now.
    var scratchBytes: Int {
        BPEMerger.smallLimit * 12 + largeIDs.count * 12 + heap.capacityBytes
    }

    /// The ids of the piece `p[0..<count]` (1 ≤ count < 2^31), in storage owned by the merger
    /// that stays valid until its next call.
    /// May be empty if no byte of the piece has a token.
    @inline(__always)
    func merge(_ p: UnsafePointer<UInt8>, _ count: Int) -> UnsafeBufferPointer<Int32> {
        if count <= BPEMerger.smallLimit {
            return dropMissing(ids, mergeSmall(p, count))
        }
        if largeIDs.count < count {
            largeIDs.deallocate(); largeNext.deallocate(); largePrev.deallocate()
            largeIDs = .allocate(capacity: count)
            largeNext = .allocate(capacity: count)
            largePrev = .allocate(capacity: count)
        }
        return dropMissing(largeIDs.baseAddress!, mergeLarge(p, count))
    }

    /// `ids[0..<n]` without the -1 entries of bytes that have no token.
    @inline(__always)
    private func dropMissing(_ ids: UnsafeMutablePointer<Int32>, _ n: Int) -> UnsafeBufferPointer<Int32> {
        guard bytesMayLackTokens else { return UnsafeBufferPointer(start: ids, count: n) }
        var kept = 0
        for k in 0..<n where ids[k] >= 0 {
            ids[kept] = ids[k]
            kept += 1
        }
        return UnsafeBufferPointer(start: ids, count: kept)
    }

    /// Appends the ids of the piece `p[0..<count]` (count ≥ 1) to `out`.
    func encode(_ p: UnsafePointer<UInt8>, _ count: Int, into out: inout [Int32]) {
        out.append(contentsOf: merge(p, count))
    }

    /// The quadratic scan on arrays of at most `smallLimit` entries; the result is `ids[0..<n]`.
    private func mergeSmall(_ p: UnsafePointer<UInt8>, _ count: Int) -> Int {
        byteTokens.withUnsafeBufferPointer { byteTokens in
            var n = count
            var steps = n
            for k in 0..<n { ids[k] = byteTokens[Int(p[k])] }
            for k in 0..<(n - 1) { pairs[k] = merges.lookup(ids[k], ids[k + 1]) }
            while n > 1 {
                var best = MergeTable.none
                var at = -1
                for k in 0..<(n - 1) where pairs[k] < best {
                    best = pairs[k]
                    at = k
                }
                steps += n
                if at < 0 { break }
                ids[at] = Int32(truncatingIfNeeded: best)
                // Drop entry at+1: ids after it move down one, and so do the pairs after the
                // pair (at+1, at+2), which is replaced by the new (at, at+1).
                var k = at + 1
                while k < n - 1 {
                    ids[k] = ids[k + 1]
                    pairs[k] = pairs[k + 1]
                    k += 1
                }
                n -= 1
                if at > 0 { pairs[at - 1] = merges.lookup(ids[at - 1], ids[at]) }
                if at < n - 1 { pairs[at] = merges.lookup(ids[at], ids[at + 1]) }
            }
            self.steps += steps
            return n
        }
    }

    /// The same rule on a doubly linked list (in `largeIDs`, `largeNext`, `largePrev`) with a
    /// binary heap of candidate pairs ordered by (rank, position). A heap entry holds only those
    /// two numbers; when it is popped its pair is looked up again, and an entry whose position
    /// was merged away or whose pair now has another rank is stale and skipped (the same rank
    /// means the same merge, hence the same pair). The result is `largeIDs[0..<n]`.
    private func mergeLarge(_ p: UnsafePointer<UInt8>, _ count: Int) -> Int {
        let ids = largeIDs.baseAddress!, next = largeNext.baseAddress!, prev = largePrev.baseAddress!
        let end = Int32(count)
        var steps = 0
        heap.removeAll()
        byteTokens.withUnsafeBufferPointer { byteTokens in
            for k in 0..<count {
                ids[k] = byteTokens[Int(p[k])]
                next[k] = Int32(k + 1)
                prev[k] = Int32(k - 1)
            }
        }
        for k in 0..<(count - 1) {
            let answer = merges.lookup(ids[k], ids[k + 1])
            if answer != MergeTable.none { heap.push(rank: MergeTable.rank(answer), position: Int32(k)) }
        }
        steps += count
        while let (rank, position) = heap.pop() {
            steps += 1
            let k = Int(position)
            // Stale if k was merged away or its right neighbour changed. (A merged-away entry
            // is -1, like a byte without token, which is in no pair.)
            guard ids[k] >= 0, next[k] < end else { continue }
            let j = Int(next[k])
            let answer = merges.lookup(ids[k], ids[j])
            guard answer != MergeTable.none, MergeTable.rank(answer) == rank else { continue }
            ids[k] = Int32(truncatingIfNeeded: answer)
            ids[j] = -1
            next[k] = next[j]
            if next[k] < end { prev[Int(next[k])] = Int32(k) }
            if prev[k] >= 0 {
                let l = Int(prev[k])
                let left = merges.lookup(ids[l], ids[k])
                if left != MergeTable.none { heap.push(rank: MergeTable.rank(left), position: Int32(l)) }
            }
            if next[k] < end {
                let right = merges.lookup(ids[k], ids[Int(next[k])])
                if right != MergeTable.none { heap.push(rank: MergeTable.rank(right), position: Int32(k)) }
            }
            steps += 3
        }
        var k = 0, n = 0
        while k < count {
            ids[n] = ids[k]
            n += 1
            k = Int(next[k])
        }
        self.steps += steps
        return n
    }
}

/// A binary min-heap of (rank, position) pairs packed into one `UInt64` each, so that comparing
/// two entries compares ranks and then positions.
private struct PairHeap {
    private var items: [UInt64] = []

    var capacityBytes: Int { items.capacity * 8 }

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(rank: UInt32, position: Int32) {
        items.append(UInt64(rank) << 32 | UInt64(UInt32(bitPattern: position)))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[i] >= items[parent] { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (rank: UInt32, position: Int32)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, items[l] < items[m] { m = l }
                if r < items.count, items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return (UInt32(truncatingIfNeeded: top >> 32), Int32(bitPattern: UInt32(truncatingIfNeeded: top)))
    }
}
