import Foundation

/// A hash table from byte strings to short lists of token ids, for the hot path.
///
/// Encoding looks up every pre-token: once in the vocabulary (most words are one token) and,
/// if that fails, in the cache of pieces already merged. A Swift `Dictionary<[UInt8], [Int32]>`
/// would allocate an array per key and per lookup; this table hashes the bytes in place, keeps
/// keys and values in two growing arenas, and probes linearly in a power-of-two slot array.
/// Keys are never empty, so a zero-length slot is free.
///
/// Not thread-safe for writes; a table that is only read after it is built can be shared.
final class ByteStringTable: @unchecked Sendable {
    /// 16 bytes, four to a cache line: a lookup that misses the cache costs one line. The hash
    /// kept is its high half (the low bits pick the slot, so those would say little).
    private struct Slot {
        var hashTag: UInt32 = 0
        var keyLength: UInt16 = 0  // 0 = free
        var valueCount: UInt16 = 0
        var keyOffset: UInt32 = 0
        var valueOffset: UInt32 = 0
    }

    private var slots: UnsafeMutablePointer<Slot>
    private var mask: Int
    private(set) var count = 0
    private var keys: UnsafeMutablePointer<UInt8>
    private var keysUsed = 0
    private var keysCapacity: Int
    private(set) var values: UnsafeMutablePointer<Int32>
    private var valuesUsed = 0
    private var valuesCapacity: Int

    /// Bytes of keys held; callers that cache without bound clear the table past a limit.
    var keyBytes: Int { keysUsed }
    /// Values held, summed over the keys.
    var valueCount: Int { valuesUsed }
    /// Bytes allocated for slots, keys and values.
    var allocatedBytes: Int { (mask + 1) * MemoryLayout<Slot>.stride + keysCapacity + valuesCapacity * 4 }

    init(expectedCount: Int = 1024) {
        var capacity = 16
        while capacity < expectedCount * 2 { capacity <<= 1 }
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: Slot(), count: capacity)
        mask = capacity - 1
        keysCapacity = max(64, expectedCount * 8)
        keys = .allocate(capacity: keysCapacity)
        valuesCapacity = max(64, expectedCount * 2)
        values = .allocate(capacity: valuesCapacity)
    }

    deinit {
        slots.deallocate()
        keys.deallocate()
        values.deallocate()
    }

    /// Forgets every entry, keeping the memory.
    func removeAll() {
        slots.update(repeating: Slot(), count: mask + 1)
        count = 0
        keysUsed = 0
        valuesUsed = 0
    }

    /// A 64-bit hash of `count` bytes (count ≥ 1): whole 8-byte words, then the tail read as two
    /// overlapping loads, then a final avalanche so that the low bits index slots well.
    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ count: Int) -> UInt64 {
        let raw = UnsafeRawPointer(p)
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(truncatingIfNeeded: count &+ 1)
        var i = 0
        while i + 8 <= count {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 29
            i += 8
        }
        let rest = count - i
        if rest > 0 {
            var w: UInt64
            if count >= 8 {
                w = raw.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
            } else if rest >= 4 {
                w = UInt64(raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
                    | UInt64(raw.loadUnaligned(fromByteOffset: rest - 4, as: UInt32.self)) << 32
            } else {
                w = UInt64(p[0]) | UInt64(p[rest >> 1]) << 8 | UInt64(p[rest - 1]) << 16
            }
            h = (h ^ w) &* 0xFF51_AFD7_ED55_8CCD
        }
        h ^= h >> 33
        h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return h
    }

    /// Whether two byte strings of `length` ≥ 1 bytes are equal. Keys are short (a word), where
    /// a call to memcmp costs more than the comparison: compare 8-byte words, the last one
    /// overlapping, or two overlapping 4-byte words, or bytes.
    @inline(__always)
    static func equal(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ length: Int) -> Bool {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        if length >= 8 {
            var i = 0
            while i + 8 < length {
                if ra.loadUnaligned(fromByteOffset: i, as: UInt64.self) != rb.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
                i += 8
            }
            return ra.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self) == rb.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
        }
        if length >= 4 {
            return ra.loadUnaligned(fromByteOffset: 0, as: UInt32.self) == rb.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
                && ra.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self) == rb.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self)
        }
        return a[0] == b[0] && a[length >> 1] == b[length >> 1] && a[length - 1] == b[length - 1]
    }

    /// The values stored for a key, as (offset into `values`, count), or nil.
    @inline(__always)
    func find(_ p: UnsafePointer<UInt8>, _ length: Int, hash: UInt64) -> (offset: Int, count: Int)? {
        var index = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[index]
            if slot.keyLength == 0 { return nil }
            if slot.hashTag == UInt32(truncatingIfNeeded: hash >> 32), Int(slot.keyLength) == length,
               ByteStringTable.equal(keys + Int(slot.keyOffset), p, length) {
                return (Int(slot.valueOffset), Int(slot.valueCount))
            }
            index = (index + 1) & mask
        }
    }

    /// Adds a key that is not in the table yet.
    func insert(_ p: UnsafePointer<UInt8>, _ length: Int, hash: UInt64, values newValues: UnsafePointer<Int32>, count valueCount: Int) {
        precondition(length > 0 && length <= Int(UInt16.max) && valueCount <= Int(UInt16.max),
                     "ByteStringTable keys are 1…65535 bytes with at most 65535 values")
        precondition(keysUsed + length <= Int(UInt32.max) && valuesUsed + valueCount <= Int(UInt32.max))
        if (count + 1) * 2 > mask + 1 { grow() }
        reserve(&keys, &keysCapacity, used: keysUsed, extra: length)
        reserve(&values, &valuesCapacity, used: valuesUsed, extra: valueCount)
        (keys + keysUsed).update(from: p, count: length)
        (values + valuesUsed).update(from: newValues, count: valueCount)
        var index = Int(truncatingIfNeeded: hash) & mask
        while slots[index].keyLength != 0 { index = (index + 1) & mask }
        slots[index] = Slot(hashTag: UInt32(truncatingIfNeeded: hash >> 32), keyLength: UInt16(length),
                            valueCount: UInt16(valueCount), keyOffset: UInt32(keysUsed), valueOffset: UInt32(valuesUsed))
        keysUsed += length
        valuesUsed += valueCount
        count += 1
    }

    private func reserve<T>(_ buffer: inout UnsafeMutablePointer<T>, _ capacity: inout Int, used: Int, extra: Int) {
        guard used + extra > capacity else { return }
        var newCapacity = capacity * 2
        while newCapacity < used + extra { newCapacity *= 2 }
        let bigger = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
        bigger.moveInitialize(from: buffer, count: used)
        buffer.deallocate()
        buffer = bigger
        capacity = newCapacity
    }

    private func grow() {
        let oldSlots = slots
        let oldCapacity = mask + 1
        let capacity = oldCapacity * 2
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: Slot(), count: capacity)
        mask = capacity - 1
        for i in 0..<oldCapacity where oldSlots[i].keyLength != 0 {
            let key = keys + Int(oldSlots[i].keyOffset)
            var index = Int(truncatingIfNeeded: ByteStringTable.hash(key, Int(oldSlots[i].keyLength))) & mask
            while slots[index].keyLength != 0 { index = (index + 1) & mask }
            slots[index] = oldSlots[i]
        }
        oldSlots.deallocate()
    }
}
