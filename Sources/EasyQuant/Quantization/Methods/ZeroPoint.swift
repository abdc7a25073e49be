/// zeropoint: asymmetric signed 8-bit. scale = 255 / (max - min), zp = round(-scale · min - 128),
/// q = clamp(round(X · scale + zp), -128, 127), x ≈ (q - zp) / scale.
///
/// At other widths 255 becomes 2^b - 1 and 128 becomes 2^(b-1).
public struct ZeroPoint: QuantizationMethod {
    public static let name = "zeropoint"
    public let bits: Int
    public var isSigned: Bool { true }
    public var isSymmetric: Bool { false }
    public init(bits: Int = 8) { self.bits = bits }

    public func parameters(minimum: Float, maximum: Float) -> BlockParameters {
        let levels = Double((1 << bits) - 1)
        let half = Double(1 << (bits - 1))
        // A constant block has no range: use its magnitude (or 1 for zeros) as the range,
        // which maps the constant exactly onto the lowest code.
        var range = Double(maximum) - Double(minimum)
        if range == 0 { range = minimum == 0 ? 1 : abs(Double(minimum)) }
        let multiplier = levels / range
        let zp = (-multiplier * Double(minimum) - half).rounded(.toNearestOrEven)
        return BlockParameters(scale: Float(1 / multiplier), zeroPoint: Float(zp), factor: Float(multiplier))
    }

    @inline(__always) public func code(_ x: Float, _ p: BlockParameters) -> Int32 {
        clampCode(roundToCode(x * p.factor + p.zeroPoint), 0 &- (Int32(1) &<< (bits &- 1)), (Int32(1) &<< (bits &- 1)) &- 1)
    }
}
