import CKernels

/// An int8 weight rearranged once for batch-1 products (one token at a time, as decoding
/// runs): tiles of 16 output channels, each a run of 64-byte blocks (16 channels × 4
/// inputs) that the product reads front to back, with the scales (and zero points) of
/// every input group gathered per group and channel, and the code sums per group and
/// channel that the VNNI kernel needs (eqk_gemv_s8_pack, eqk_gemv_s8).
///
/// The product is the same number, bit for bit, as `Linear`'s batch int8 product of one
/// row: the same int32 sums per group, rescaled by the same float steps.
public final class StreamingInt8Weight: @unchecked Sendable {
    /// Output channels (n) and inputs (k).
    public let outputs: Int
    public let inputs: Int
    /// Blocks of 4 inputs (k rounded up), blocks per scale group, and scale groups.
    let quads: Int
    let groupQuads: Int
    let groups: Int
    /// Tiles of 16 channels, and the padded channel count (16 · tiles), the stride of the
    /// per-group arrays.
    let tiles: Int
    let ldg: Int
    private let blocks: UnsafeMutableRawPointer
    private let weightSums: UnsafeMutablePointer<Int32>
    private let scales: UnsafeMutablePointer<Float>
    private let zeros: UnsafeMutablePointer<Float>?

    /// Rearranges `w` (stored [out, in] when `outputIsRows`, else [in, out]); nil when its
    /// scale groups along the input cannot be cut into blocks of 4 inputs (a group size
    /// that is not a multiple of 4 and smaller than the whole input).
    public init?(_ w: QuantizedWeight, outputIsRows: Bool) {
        let n = outputIsRows ? w.rows : w.columns, k = outputIsRows ? w.columns : w.rows
        guard n > 0, k > 0 else { return nil }
        let kb = min(k, outputIsRows ? w.blockColumns : w.blockRows)
        guard kb == k || kb % 4 == 0 else { return nil }
        outputs = n; inputs = k
        quads = (k + 3) / 4
        groupQuads = kb == k ? quads : kb / 4
        groups = (quads + groupQuads - 1) / groupQuads
        precondition(groups == (k + kb - 1) / kb)
        tiles = (n + 15) / 16
        ldg = tiles * 16
        blocks = .allocate(byteCount: tiles * quads * 64, alignment: 64)
        weightSums = .allocate(capacity: groups * ldg)
        scales = .allocate(capacity: groups * ldg)
        scales.initialize(repeating: 0, count: groups * ldg)
        zeros = w.zeroPoints == nil ? nil : .allocate(capacity: groups * ldg)
        zeros?.initialize(repeating: 0, count: groups * ldg)
        w.codes.withUnsafeBufferPointer { codes in
            eqk_gemv_s8_pack(codes.baseAddress!, outputIsRows ? k : 1, outputIsRows ? 1 : n, n, k, groupQuads,
                             blocks.assumingMemoryBound(to: Int8.self), weightSums)
        }
        // The scale of (channel o, group g) is the one the batch product uses for the
        // group's first input.
        for g in 0..<groups {
            let k0 = g * kb
            for o in 0..<n {
                let s = outputIsRows ? (o / w.blockRows) * w.scaleColumns + k0 / w.blockColumns
                                     : (k0 / w.blockRows) * w.scaleColumns + o / w.blockColumns
                scales[g * ldg + o] = w.scales[s]
                zeros?[g * ldg + o] = w.zeroPoints![s]
            }
        }
    }

    deinit {
        blocks.deallocate(); weightSums.deallocate(); scales.deallocate(); zeros?.deallocate()
    }

    /// Bytes held: the blocks, and the per-group sums, scales and zero points.
    public var memoryBytes: Int { tiles * quads * 64 + groups * ldg * (zeros == nil ? 8 : 12) }

    /// The instruction set the product runs with ("avx512-vnni", "avx2" or "baseline").
    public static var instructionSet: String { String(cString: eqk_gemv_isa()) }

    /// y = x·Wᵀ (+ bias) for the one row of `x` (quantized with groups of this weight's
    /// group size, with code sums when the weight has zero points), the output channels
    /// split over `threads` threads in runs of whole tiles. y holds `outputs` floats.
    public func multiply(_ x: QuantizedActivations, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, threads: Int) {
        precondition(x.rows == 1 && x.columns == inputs, "a batch-1 product takes one row of \(inputs) inputs")
        precondition(zeros == nil || (x.sums != nil && x.groups == groups), "activation code sums do not fit the weight's groups")
        let padded = UnsafeMutablePointer<Int8>.allocate(capacity: quads * 4)
        defer { padded.deallocate() }
        padded.update(from: x.codes, count: inputs)
        (padded + inputs).initialize(repeating: 0, count: quads * 4 - inputs)
        let sums = zeros == nil ? nil : UnsafePointer(x.sums!)
        let xscale = x.scales[0]
        let (blocks, weightSums, scales, zeros) = (UnsafePointer(self.blocks.assumingMemoryBound(to: Int8.self)),
                                                  UnsafePointer(self.weightSums), UnsafePointer(self.scales),
                                                  self.zeros.map { UnsafePointer($0) })
        let (quads, groupQuads, ldg, outputs) = (self.quads, self.groupQuads, self.ldg, self.outputs)
        let yAddress = UnsafeMutableRawPointer(y)
        // At least 4 tiles (64 channels) per piece: smaller pieces cost more to hand out than to compute.
        Parallel.forRanges(tiles, threads: threads, minimumChunk: 4) { r in
            eqk_gemv_s8(blocks, quads, groupQuads, weightSums, scales, zeros, ldg, padded, xscale, sums, bias,
                        r.lowerBound, r.upperBound, yAddress.assumingMemoryBound(to: Float.self), outputs)
        }
    }
}
