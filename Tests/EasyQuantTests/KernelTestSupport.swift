import EasyQuant

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
