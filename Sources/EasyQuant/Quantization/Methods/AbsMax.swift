/// absmax: symmetric, step = max|X| / 127, q = round(X / step) in [-127, 127], x ≈ q · step.
///
/// At other widths the 127 becomes 2^(b-1) - 1, so the code range stays symmetric.
public struct AbsMax: QuantizationMethod {
    public static let name = "absmax"
    public let bits: Int
    public var isSigned: Bool { true }
    public var isSymmetric: Bool { true }
    public init(bits: Int = 8) { self.bits = bits }

    public func parameters(minimum: Float, maximum: Float) -> BlockParameters {
        let absMax = Swift.max(-minimum, maximum)
        let qmax = Float((1 << (bits - 1)) - 1)
        // An all-zero block has no range; any positive step reproduces its zeros exactly.
        let step = absMax > 0 ? absMax / qmax : 1
        return BlockParameters(scale: step, zeroPoint: 0, factor: step)
    }

    @inline(__always) public func code(_ x: Float, _ p: BlockParameters) -> Int32 {
        let qmax = (Int32(1) &<< (bits &- 1)) &- 1
        return clampCode(roundToCode(x / p.factor), -qmax, qmax)
    }
}
