/// Byte-pair encoding of one pre-token: start from one token per byte and repeatedly apply the
/// lowest-ranked merge among adjacent pairs, the leftmost one when a pair occurs more than once,
/// until no adjacent pair has a merge. This is the rule of GPT-2's `encoder.py` and of Hugging
/// Face's BPE model (tiktoken ranks pairs by the merged token instead, which gives the same ids
/// for GPT-2's files; `scripts/tokenizer_reference.py` checks both).
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
    /// Output of `mergeLarge`, grown to the longest piece seen.
    private var largeOut = UnsafeMutableBufferPointer<Int32>(start: nil, count: 0)

    init(merges: MergeTable, byteTokens: [Int32]) {
        precondition(byteTokens.count == 256)
        self.merges = merges
        self.byteTokens = byteTokens
    }

    deinit {
        ids.deallocate()
        pairs.deallocate()
        largeOut.deallocate()
    }

    /// The ids of the piece `p[0..<count]` (count ≥ 1), in storage owned by the merger that
    /// stays valid until its next call.
    @inline(__always)
    func merge(_ p: UnsafePointer<UInt8>, _ count: Int) -> UnsafeBufferPointer<Int32> {
        if count <= BPEMerger.smallLimit {
            return UnsafeBufferPointer(start: ids, count: mergeSmall(p, count))
        }
        if largeOut.count < count {
            largeOut.deallocate()
            largeOut = .allocate(capacity: count)
        }
        return UnsafeBufferPointer(start: largeOut.baseAddress, count: mergeLarge(p, count))
    }

    /// Appends the ids of the piece `p[0..<count]` (count ≥ 1) to `out`.
    func encode(_ p: UnsafePointer<UInt8>, _ count: Int, into out: inout [Int32]) {
        out.append(contentsOf: merge(p, count))
    }

    /// The quadratic scan on arrays of at most `smallLimit` entries; the result is `ids[0..<n]`.
    private func mergeSmall(_ p: UnsafePointer<UInt8>, _ count: Int) -> Int {
        byteTokens.withUnsafeBufferPointer { byteTokens in
            var n = count
            for k in 0..<n { ids[k] = byteTokens[Int(p[k])] }
            for k in 0..<(n - 1) { pairs[k] = merges.lookup(ids[k], ids[k + 1]) }
            while n > 1 {
                var best = MergeTable.none
                var at = -1
                for k in 0..<(n - 1) where pairs[k] < best {
                    best = pairs[k]
                    at = k
                }
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
            return n
        }
    }

    /// The same rule on a doubly linked list with a binary heap of candidate pairs ordered by
    /// (rank, position); entries made stale by earlier merges are skipped when popped. The
    /// result is `largeOut[0..<n]`.
    private func mergeLarge(_ p: UnsafePointer<UInt8>, _ count: Int) -> Int {
        var ids = [Int32](repeating: 0, count: count)
        var next = [Int](repeating: 0, count: count)
        var prev = [Int](repeating: 0, count: count)
        var pairAt = [UInt64](repeating: MergeTable.none, count: count)
        var heap = PairHeap()
        for k in 0..<count {
            ids[k] = byteTokens[Int(p[k])]
            next[k] = k + 1
            prev[k] = k - 1
        }
        for k in 0..<(count - 1) {
            pairAt[k] = merges.lookup(ids[k], ids[k + 1])
            if pairAt[k] != MergeTable.none { heap.push(pairAt[k], k) }
        }
        while let (answer, k) = heap.pop() {
            // Stale if k was merged away (its answer was reset) or its pair has changed since.
            guard pairAt[k] == answer else { continue }
            let j = next[k]
            ids[k] = Int32(truncatingIfNeeded: answer)
            pairAt[j] = MergeTable.none
            ids[j] = -1
            next[k] = next[j]
            if next[k] < count { prev[next[k]] = k }
            if prev[k] >= 0 {
                let l = prev[k]
                pairAt[l] = merges.lookup(ids[l], ids[k])
                if pairAt[l] != MergeTable.none { heap.push(pairAt[l], l) }
            }
            if next[k] < count {
                pairAt[k] = merges.lookup(ids[k], ids[next[k]])
                if pairAt[k] != MergeTable.none { heap.push(pairAt[k], k) }
            } else {
                pairAt[k] = MergeTable.none
            }
        }
        var k = 0, n = 0
        while k < count {
            largeOut[n] = ids[k]
            n += 1
            k = next[k]
        }
        return n
    }
}

/// A binary min-heap of (packed rank answer, position) pairs.
private struct PairHeap {
    private var items: [(answer: UInt64, position: Int)] = []

    @inline(__always)
    private static func less(_ a: (answer: UInt64, position: Int), _ b: (answer: UInt64, position: Int)) -> Bool {
        a.answer != b.answer ? a.answer < b.answer : a.position < b.position
    }

    mutating func push(_ answer: UInt64, _ position: Int) {
        items.append((answer, position))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !PairHeap.less(items[i], items[parent]) { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (UInt64, Int)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, PairHeap.less(items[l], items[m]) { m = l }
                if r < items.count, PairHeap.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return (top.answer, top.position)
    }
}
