/// The f32 part of a linear layer with LLM.int8()'s mixed-precision decomposition
/// (Dettmers et al., 2022): a few input features, the "outlier features" whose activations
/// are large, are multiplied in f32 with their own weight rows, and the quantized weight
/// handles the rest:
///
///     y = X[:, inliers] · W[inliers, :]  (quantized product)  +  X[:, outliers] · O  (f32)
///
/// `Linear` zeroes the outlier columns of X before its quantized product (so in int8 mode
/// they no longer set the per-token activation scale, which is the point of the method)
/// and then adds `X[:, outliers] · O`. What the main weight holds in the outlier rows is
/// therefore never used; LLM.int8 files store zeros there.
public struct OutlierFeatures: Sendable, Equatable {
    /// Input feature indices, ascending and distinct.
    public let indices: [Int]
    /// Their weight rows, [indices.count, outFeatures] row-major: one row per input feature,
    /// whatever the orientation of the layer's main matrix.
    public let weight: [Float]
    public let outFeatures: Int

    public init(indices: [Int], weight: [Float], outFeatures: Int) {
        precondition(weight.count == indices.count * outFeatures, "outlier weight must be [indices, outFeatures]")
        precondition(zip(indices, indices.dropFirst()).allSatisfy { $0 < $1 }, "outlier indices must be ascending and distinct")
        self.indices = indices; self.weight = weight; self.outFeatures = outFeatures
    }

    public var count: Int { indices.count }

    /// Where the reserved outlier tensors live (docs/FORMAT.md §5.3).
    public static let prefix = ExtraTensor.prefix + "outliers."

    /// The reserved tensors that carry the outlier part of matrix `name` in a file or an
    /// in-memory source: `eqm.outliers.<layer>.index` ([k], feature indices as F32 integers,
    /// exact below 2^24; format 1.0 has no integer float-encoded tensors) and
    /// `eqm.outliers.<layer>.weight` ([k, out] f32). `<layer>` is `name` without `.weight`.
    public static func tensorNames(for name: String) -> (index: String, weight: String) {
        let layer = name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : name
        return (prefix + "\(layer).index", prefix + "\(layer).weight")
    }

    /// Refuses an outlier part that does not fit a layer with `inFeatures` inputs and `outFeatures` outputs.
    func check(inFeatures: Int, outFeatures expected: Int, origin: String, name: String) throws {
        guard outFeatures == expected else {
            throw ModelError.badShape(origin: origin, name: Self.tensorNames(for: name).weight, shape: [count, outFeatures], expected: [count, expected])
        }
        if let bad = indices.first(where: { $0 < 0 || $0 >= inFeatures }) {
            throw ModelError.unsupported(origin: origin, reason: "outlier feature \(bad) of \(name) is outside its \(inFeatures) inputs")
        }
    }

    /// The full matrix: `values` (the main weight, as stored) with the outlier features'
    /// weights put back, for writing the model out as plain floats. `outputIsRows` is the
    /// orientation of the stored matrix ([out, in] if true, else [in, out]).
    public func restored(into values: [Float], outputIsRows: Bool) -> [Float] {
        var out = values
        let n = outFeatures
        let k = values.count / max(1, n)
        for (r, j) in indices.enumerated() {
            for c in 0..<n {
                if outputIsRows { out[c * k + j] = weight[r * n + c] } else { out[j * n + c] = weight[r * n + c] }
            }
        }
        return out
    }

    /// Calls `body` with a copy of x [m, k] whose outlier columns are zero.
    func withInliers<R>(of x: UnsafePointer<Float>, rows m: Int, columns k: Int, _ body: (UnsafePointer<Float>) -> R) -> R {
        let copy = UnsafeMutablePointer<Float>.allocate(capacity: max(1, m * k))
        defer { copy.deallocate() }
        copy.update(from: x, count: m * k)
        for i in 0..<m { for j in indices { copy[i * k + j] = 0 } }
        return body(copy)
    }

    /// y [m, out] += X[:, outliers] · O, split by output channels over the context's threads.
    func accumulate(_ x: UnsafePointer<Float>, rows m: Int, columns k: Int, into y: UnsafeMutablePointer<Float>, context: ComputeContext) {
        guard count > 0, m > 0 else { return }
        let n = outFeatures, kOut = count
        let gathered = UnsafeMutablePointer<Float>.allocate(capacity: m * kOut)
        defer { gathered.deallocate() }
        for i in 0..<m { for (c, j) in indices.enumerated() { gathered[i * kOut + c] = x[i * k + j] } }
        let threads = max(1, min(context.threads, n / 64))
        let width = (n + threads - 1) / threads
        let yAddress = UnsafeMutableRawPointer(y)
        let xo = UnsafePointer(gathered)
        weight.withUnsafeBufferPointer { o in
            Parallel.forEach(threads, threads: threads) { t in
                let n0 = t * width, n1 = min(n, n0 + width)
                guard n0 < n1 else { return }
                let out = yAddress.assumingMemoryBound(to: Float.self)
                context.backend.sgemm(transA: false, transB: false, m: m, n: n1 - n0, k: kOut, alpha: 1,
                                      a: xo, lda: kOut, b: o.baseAddress! + n0, ldb: n, beta: 1, c: out + n0, ldc: n)
            }
        }
    }
}

extension WeightSource {
    /// The default: the outlier part of matrix `name` from the reserved `eqm.outliers.`
    /// tensors the source lists (an `.eqm` file, or an in-memory source showing a
    /// preparation's extra tensors), or nil when there is none.
    public func outliers(_ name: String) throws -> OutlierFeatures? {
        let names = OutlierFeatures.tensorNames(for: name)
        guard let indexShape = shapes[names.index] else { return nil }
        guard let weightShape = shapes[names.weight], indexShape.count == 1, weightShape.count == 2, weightShape[0] == indexShape[0] else {
            throw ModelError.unsupported(origin: origin, reason: "\(names.index) needs a matching \(names.weight) of shape [\(indexShape.first ?? 0), out]")
        }
        let raw = try floats(names.index)
        let indices = raw.map { Int(exactly: $0) ?? -1 }
        guard indices.allSatisfy({ $0 >= 0 }), zip(indices, indices.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw ModelError.unsupported(origin: origin, reason: "\(names.index) must hold ascending, distinct non-negative integers")
        }
        return OutlierFeatures(indices: indices, weight: try floats(names.weight), outFeatures: weightShape[1])
    }
}
