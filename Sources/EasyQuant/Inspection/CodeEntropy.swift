/// How often each stored code occurs in a quantized tensor, and the order-0 entropy of
/// that distribution: the fewest bits per code any coder that looks at codes one at a time
/// (ignoring their neighbours) could reach.
///
/// Counting is by stored bit pattern (a byte for 5-8 bits, a nibble for 2-4 bits), so any
/// byte a file holds is counted somewhere and a code outside the declared width cannot
/// index out of bounds.
public struct CodeEntropy: Equatable, Sendable {
    /// Code width in bits.
    public let bits: Int
    /// Whether codes are two's complement.
    public let isSigned: Bool
    /// `patternCounts[p]` is how many codes had the stored bit pattern `p`.
    public private(set) var patternCounts: [Int]

    /// An empty count for codes of `bits` bits (1 to 8), signed or not.
    public init(bits: Int, isSigned: Bool) {
        precondition((1...8).contains(bits), "code width must be 1 to 8 bits")
        self.bits = bits
        self.isSigned = isSigned
        patternCounts = [Int](repeating: 0, count: CodePacking.isPacked(bits: bits) ? 16 : 256)
    }

    /// The code distribution of a quantized tensor, counted on its unpacked codes.
    public init(_ tensor: QuantizedTensor) {
        self.init(bits: tensor.bits, isSigned: tensor.isSigned)
        tensor.codes.withUnsafeBufferPointer { addStored($0, count: tensor.elementCount) }
    }

    /// Counts `count` codes held in the stored form `stored` (packed two per byte, low nibble
    /// first, when `bits` <= 4).
    public mutating func addStored(_ stored: UnsafeBufferPointer<UInt8>, count: Int) {
        let packed = CodePacking.isPacked(bits: bits)
        precondition(stored.count >= CodePacking.storedSize(count: count, bits: bits), "fewer stored bytes than codes")
        // Four partial tables break the dependency between consecutive increments of one slot.
        var tables = [Int](repeating: 0, count: 4 * 256)
        tables.withUnsafeMutableBufferPointer { t in
            let fullBytes = packed ? count / 2 : count
            var i = 0
            while i + 4 <= fullBytes {
                t[Int(stored[i])] += 1
                t[256 + Int(stored[i + 1])] += 1
                t[512 + Int(stored[i + 2])] += 1
                t[768 + Int(stored[i + 3])] += 1
                i += 4
            }
            while i < fullBytes { t[Int(stored[i])] += 1; i += 1 }
        }
        var bytes = [Int](repeating: 0, count: 256)
        for b in 0..<256 { bytes[b] = tables[b] + tables[256 + b] + tables[512 + b] + tables[768 + b] }
        if packed {
            for b in 0..<256 where bytes[b] > 0 {
                patternCounts[b & 0x0F] += bytes[b]
                patternCounts[b >> 4] += bytes[b]
            }
            // An odd count leaves one code alone in the low nibble of the last byte.
            if count % 2 == 1 { patternCounts[Int(stored[count / 2] & 0x0F)] += 1 }
        } else {
            for b in 0..<256 { patternCounts[b] += bytes[b] }
        }
    }

    /// Counts one code given as an integer (two's complement low bits for signed codes).
    public mutating func add(code: Int) {
        patternCounts[code & (patternCounts.count - 1)] += 1
    }

    /// Adds another tensor's (or piece's) counts; both must have the same width and signedness.
    public mutating func merge(_ other: CodeEntropy) {
        precondition(bits == other.bits && isSigned == other.isSigned, "merging code counts of different kinds")
        for i in patternCounts.indices { patternCounts[i] += other.patternCounts[i] }
    }

    /// The code a stored bit pattern stands for.
    public func code(ofPattern p: Int) -> Int {
        let width = patternCounts.count == 16 ? 4 : 8
        return isSigned && p >= 1 << (width - 1) ? p - (1 << width) : p
    }

    /// How many times `code` occurs.
    public func count(of code: Int) -> Int {
        let mask = patternCounts.count - 1
        guard self.code(ofPattern: code & mask) == code else { return 0 }
        return patternCounts[code & mask]
    }

    /// Number of codes counted.
    public var total: Int { patternCounts.reduce(0, +) }

    /// Order-0 entropy in bits per code: -Σ p·log2 p over the observed codes (0 when empty).
    public var bitsPerCode: Double {
        let n = Double(total)
        guard n > 0 else { return 0 }
        var h = 0.0
        for c in patternCounts where c > 0 {
            let p = Double(c) / n
            h -= p * log2(p)
        }
        // Rounding can leave -0 or a hair below 0 for a single-valued tensor.
        return Swift.max(0, h)
    }

    /// Bytes the codes would take at their order-0 entropy.
    public var boundBytes: Double { bitsPerCode * Double(total) / 8 }

    /// Share of the codes equal to either end of `limits` (0 when empty).
    public func share(atEndsOf limits: ClosedRange<Int>) -> Double {
        let n = total
        guard n > 0 else { return 0 }
        let atEnds = count(of: limits.lowerBound) + (limits.upperBound != limits.lowerBound ? count(of: limits.upperBound) : 0)
        return Double(atEnds) / Double(n)
    }

    /// The lowest and highest code a quantizer clamps to.
    ///
    /// For a method this EasyQuant knows, the limits are found by asking the method itself to
    /// code two enormous values, so they follow its real clamp (absmax stops at ±127, not at
    /// -128); for an unknown method they are the ends of the stored code range.
    public static func clampLimits(method: String, bits: Int, isSigned: Bool) -> ClosedRange<Int> {
        let representable = isSigned ? -(1 << (bits - 1))...((1 << (bits - 1)) - 1) : 0...((1 << bits) - 1)
        guard let m = try? QuantizationMethods.make(method, bits: bits), m.isSigned == isSigned else { return representable }
        let p = m.parameters(minimum: -1, maximum: 1)
        let lo = Int(m.code(-1e30, p)), hi = Int(m.code(1e30, p))
        guard lo <= hi, representable.contains(lo), representable.contains(hi) else { return representable }
        return lo...hi
    }
}

import Foundation
