/// The rule every tensor shape read from a file must pass before anything is computed from
/// it, the same for safetensors, `.eqm` and GGUF.
///
/// Element counts alone are not enough: a zero-byte tensor of shape `[2^40, 0]` has no
/// elements, yet a loop over its rows would run for ever and a block count derived from its
/// first dimension could overflow. So each dimension is bounded on its own, and the product
/// of the non-zero dimensions is bounded too (which keeps every byte count derived from a
/// shape — elements × 8 bytes, scale counts × 4 — far from overflowing).
public enum ShapeRule {
    /// Most dimensions a tensor may have (PyTorch checkpoints use at most 4 or 5).
    public static let maxRank = 16
    /// Largest single dimension: 2^31 (a 2-billion-token vocabulary would still fit).
    public static let maxDimension = 1 << 31
    /// Largest product of the non-zero dimensions: 2^48 elements (a petabyte of F32).
    public static let maxElements = 1 << 48

    /// Why a shape breaks the rule, as a phrase that follows the tensor's name.
    public struct Violation: Error, Equatable, Sendable, CustomStringConvertible {
        public var shape: [Int]
        public var reason: String
        public var description: String { "shape \(shape) \(reason)" }
    }

    /// The element count of `shape` (0 if any dimension is 0), or the rule it breaks.
    public static func elementCount(_ shape: [Int]) -> Result<Int, Violation> {
        guard shape.count <= maxRank else {
            return .failure(Violation(shape: shape, reason: "has \(shape.count) dimensions; at most \(maxRank) are accepted"))
        }
        var nonZero = 1
        var anyZero = false
        for (i, d) in shape.enumerated() {
            guard d >= 0 else { return .failure(Violation(shape: shape, reason: "has a negative dimension (\(i))")) }
            guard d <= maxDimension else {
                return .failure(Violation(shape: shape, reason: "has dimension \(i) = \(d), more than the \(maxDimension) a dimension may have"))
            }
            if d == 0 { anyZero = true; continue }
            let (p, overflow) = nonZero.multipliedReportingOverflow(by: d)
            guard !overflow, p <= maxElements else {
                return .failure(Violation(shape: shape, reason: "has more than 2^48 elements (its non-zero dimensions multiply past \(maxElements))"))
            }
            nonZero = p
        }
        return .success(anyZero ? 0 : nonZero)
    }

    /// The element count of `shape`, or nil if it breaks the rule.
    public static func checkedElementCount(_ shape: [Int]) -> Int? {
        try? elementCount(shape).get()
    }
}
