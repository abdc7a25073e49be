/// symquant: symmetric 8-bit with s = max|X| / 127.5, q = clamp(round(X / s), -128, 127), x ≈ q · s.
///
/// This is DeepSpeed's symmetric quantizer: s = max|X| / (2^b / 2 - 0.5), which spreads the
/// range over all 2^b codes (the most negative value rounds to -128, the most positive clamps to 127).
public struct SymQuant: QuantizationMethod {
    public static let name = "symquant"
    public let bits: Int
    public var isSigned: Bool { true }
    public var isSymmetric: Bool { true }
    public init(bits: Int = 8) { self.bits = bits }

    public func parameters(minimum: Float, maximum: Float) -> BlockParameters {
        let absMax = Swift.max(-minimum, maximum)
        let divisor = Float(1 << bits) / 2 - 0.5
        let s = absMax > 0 ? absMax / divisor : 1
        return BlockParameters(scale: s, zeroPoint: 0, factor: s)
    }

    @inline(__always) public func code(_ x: Float, _ p: BlockParameters) -> Int32 {
        clampCode(roundToCode(x / p.factor), 0 &- (Int32(1) &<< (bits &- 1)), (Int32(1) &<< (bits &- 1)) &- 1)
    }
}
