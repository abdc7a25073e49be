import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014, with the constants of Vigna's reference version):
/// small, fast and well mixed, so that a seed means the same numbers on every platform and
/// Swift version (the standard library's generator cannot be seeded) and a Python script can
/// reproduce them. Used for calibration windows, distillation batches, sampling and tests.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A double in [0, 1) from the top 53 bits.
    public mutating func nextUnit() -> Double { Double(next() >> 11) / Double(UInt64(1) << 53) }

    /// A standard normal number (Box–Muller).
    public mutating func nextGaussian() -> Double {
        let u = max(nextUnit(), .leastNormalMagnitude), v = nextUnit()
        return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * .pi * v)
    }
}
