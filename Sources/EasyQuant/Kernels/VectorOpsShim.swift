import Foundation

/// TEMPORARY: straightforward vector operations until the kernels branch lands.
enum VectorOps {
    static func add(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] += src[i] }
    }
    static func geluNew(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
        let c = Float((2 / Double.pi).squareRoot())
        Parallel.forRanges(count, threads: threads, minimumChunk: 4096) { r in
            for i in r { let v = x[i]; x[i] = 0.5 * v * (1 + tanh(c * (v + 0.044715 * v * v * v))) }
        }
    }
    static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, columns: Int, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                          epsilon: Float, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let src = x + r * columns, dst = out + r * columns
            var mean: Float = 0
            for j in 0..<columns { mean += src[j] }
            mean /= Float(columns)
            var v: Float = 0
            for j in 0..<columns { let d = src[j] - mean; v += d * d }
            v /= Float(columns)
            let inv = 1 / (v + epsilon).squareRoot()
            for j in 0..<columns { dst[j] = (src[j] - mean) * inv * gamma[j] + beta[j] }
        }
    }
    static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var m = -Float.infinity
        for i in 0..<count { m = max(m, x[i]) }
        var s: Float = 0
        for i in 0..<count { x[i] = exp(x[i] - m); s += x[i] }
        let inv = 1 / s
        for i in 0..<count { x[i] *= inv }
    }
    static func logSumExp(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var m = -Float.infinity
        for i in 0..<count { m = max(m, x[i]) }
        var s: Double = 0
        for i in 0..<count { s += Double(exp(x[i] - m)) }
        return m + Float(log(s))
    }
}
