/// simquant: asymmetric unsigned with b bits. s = (2^b - 1) / (max - min), z = round(-min · s),
/// q = clamp(round(X · s + z), 0, 2^b - 1), x ≈ (q - z) / s.
///
/// The seed credits this to KVQuant (Hooper et al., 2024); here it is applied to weights.
public struct SimQuant: QuantizationMethod {
    public static let name = "simquant"
    public let bits: Int
    public var isSigned: Bool { false }
    public var isSymmetric: Bool { false }
    public init(bits: Int = 8) { self.bits = bits }

    public func parameters(minimum: Float, maximum: Float) -> BlockParameters {
        let levels = Double((1 << bits) - 1)
        // A constant block: its magnitude (or 1) as the range maps it exactly onto a code.
        var range = Double(maximum) - Double(minimum)
        if range == 0 { range = minimum == 0 ? 1 : abs(Double(minimum)) }
        let s = levels / range
        let z = (-Double(minimum) * s).rounded(.toNearestOrEven)
        return BlockParameters(scale: Float(1 / s), zeroPoint: Float(z), factor: Float(s))
    }

    @inline(__always) public func code(_ x: Float, _ p: BlockParameters) -> Int32 {
        clampCode(roundToCode(x * p.factor + p.zeroPoint), 0, (Int32(1) &<< bits) &- 1)
    }
}
