import Foundation

/// Rotary position embedding (Su et al., 2021) in Hugging Face's "rotate half" layout, as
/// Llama, Mistral, Qwen2 and SmolLM compute it.
///
/// Within each head of width d, element i < d/2 is paired with element i + d/2, and the pair
/// is rotated by the angle p·fᵢ for the token at position p, with fᵢ = θ^(−2i/d):
///
///     x'ᵢ       = xᵢ·cos(p·fᵢ) − x_{i+d/2}·sin(p·fᵢ)
///     x'_{i+d/2} = x_{i+d/2}·cos(p·fᵢ) + xᵢ·sin(p·fᵢ)
///
/// The frequencies and angles are rounded to float as PyTorch computes them (fᵢ in float32,
/// the angle as one float32 product), so the rotated q and k match transformers' to the
/// last bits; cos and sin themselves are evaluated in double and rounded once.
/// GGUF files store q and k rows interleaved instead (pairs (2i, 2i+1)); `GGUFWeightSource`
/// converts them to this layout at load, so only one layout exists past the reader.
public struct RotaryEmbedding: Sendable {
    public let headSize: Int
    /// fᵢ for i in 0..<d/2.
    public let frequencies: [Float]

    public init(headSize: Int, theta: Float) {
        precondition(headSize > 0 && headSize % 2 == 0, "rotary embeddings need an even head size")
        self.headSize = headSize
        let d = Float(headSize)
        frequencies = (0..<(headSize / 2)).map { i in
            1 / Float(Foundation.pow(Double(theta), Double(Float(2 * i) / d)))
        }
    }

    /// cos and sin of the angles of positions `first ..< first + count`, [count, d/2] each.
    public struct Table: Sendable {
        public let first: Int
        public let count: Int
        public let headSize: Int
        let cos: [Float]
        let sin: [Float]

        /// Rotates every head of `rows` rows of x in place: row t holds `heads` heads of
        /// `headSize` values at stride `ld`, for the position `first + t`.
        public func rotate(_ x: UnsafeMutablePointer<Float>, rows: Int, ld: Int, heads: Int) {
            precondition(rows <= count && heads * headSize <= ld, "rotary table too short for \(rows) rows")
            let half = headSize / 2
            cos.withUnsafeBufferPointer { cosines in
                sin.withUnsafeBufferPointer { sines in
                    for t in 0..<rows {
                        let c = cosines.baseAddress! + t * half, s = sines.baseAddress! + t * half
                        for h in 0..<heads {
                            let v = x + t * ld + h * headSize
                            for i in 0..<half {
                                let a = v[i], b = v[i + half]
                                v[i] = a * c[i] - b * s[i]
                                v[i + half] = b * c[i] + a * s[i]
                            }
                        }
                    }
                }
            }
        }
    }

    /// The angles of positions `first ..< first + count`.
    public func table(first: Int, count: Int) -> Table {
        let half = headSize / 2
        var c = [Float](repeating: 0, count: count * half), s = c
        for t in 0..<count {
            let p = Float(first + t)
            for i in 0..<half {
                let angle = Double(p * frequencies[i])
                c[t * half + i] = Float(Foundation.cos(angle))
                s[t * half + i] = Float(Foundation.sin(angle))
            }
        }
        return Table(first: first, count: count, headSize: headSize, cos: c, sin: s)
    }
}
