/// The ranked merges of a BPE model: (left id, right id) → (rank, merged id).
///
/// The merge loop asks this table for every adjacent pair, so it is an open-addressing hash
/// table keyed by the pair packed into one `UInt64`, answering with one `UInt64` that packs
/// rank (high half) and merged id (low half): comparing answers compares ranks, and the lowest
/// answer is the merge to apply. `MergeTable.none` (all ones) means "no such merge". Key and
/// answer share a 16-byte slot, so a lookup touches one cache line: the merge loop's time is
/// mostly spent waiting for these lines.
final class MergeTable: @unchecked Sendable {
    static let none = UInt64.max

    private struct Slot {
        var key: UInt64 = UInt64.max  // no pair packs to all ones: ids are below 2^31
        var answer: UInt64 = MergeTable.none
    }

    private let slots: UnsafeMutablePointer<Slot>
    private let shift: UInt64
    private let mask: Int
    let count: Int

    /// Which rank a pair listed twice keeps.
    enum DuplicateRank {
        /// The last, as GPT-2's `dict(zip(merges, range(len(merges))))` and Hugging Face's map do.
        case last
        /// The first, as llama.cpp's `bpe_ranks.emplace` does for GGUF files.
        case first
    }

    /// `merges[r]` = (left, right, merged) for rank r (fewer than 2^32 merges).
    init(_ merges: [(left: Int32, right: Int32, merged: Int32)], duplicates: DuplicateRank = .last) {
        var capacity = 16
        while capacity < merges.count * 2 { capacity <<= 1 }
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: Slot(), count: capacity)
        mask = capacity - 1
        shift = UInt64(64 - capacity.trailingZeroBitCount)
        var stored = 0
        for (rank, m) in merges.enumerated() {
            let key = MergeTable.key(m.left, m.right)
            var index = MergeTable.slot(key, shift)
            while slots[index].key != UInt64.max && slots[index].key != key { index = (index + 1) & mask }
            if slots[index].key == UInt64.max {
                stored += 1
            } else if duplicates == .first {
                continue
            }
            slots[index] = Slot(key: key, answer: UInt64(rank) << 32 | UInt64(UInt32(bitPattern: m.merged)))
        }
        count = stored
    }

    deinit {
        slots.deallocate()
    }

    @inline(__always)
    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// The rank in a packed answer.
    @inline(__always)
    static func rank(_ answer: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: answer >> 32) }

    @inline(__always)
    private static func slot(_ key: UInt64, _ shift: UInt64) -> Int {
        // Fibonacci hashing: the top bits of key × 2^64/φ spread packed pairs evenly.
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The packed (rank, merged id) for a pair, or `MergeTable.none`.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> UInt64 {
        let key = MergeTable.key(left, right)
        var index = MergeTable.slot(key, shift)
        while true {
            let slot = slots[index]
            if slot.key == key { return slot.answer }
            if slot.key == UInt64.max { return MergeTable.none }
            index = (index + 1) & mask
        }
    }
}
