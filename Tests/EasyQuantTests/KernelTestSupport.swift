import EasyQuant

/// Deterministic SplitMix64 generator so failures reproduce.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A stored matrix of `rows × cols` with leading dimension `ld`; the padding columns
/// hold `pad` so that a backend reading them would be caught.
func paddedMatrix<T>(rows: Int, cols: Int, ld: Int, pad: T, _ value: (Int, Int) -> T) -> [T] {
    var out = [T](repeating: pad, count: max(1, rows * ld))
    for r in 0..<rows { for c in 0..<cols { out[r * ld + c] = value(r, c) } }
    return out
}

/// op(X)(i, p) of a stored row-major matrix.
@inline(__always)
func element<T>(_ x: [T], _ trans: Bool, _ ld: Int, _ i: Int, _ p: Int) -> T {
    trans ? x[p * ld + i] : x[i * ld + p]
}
