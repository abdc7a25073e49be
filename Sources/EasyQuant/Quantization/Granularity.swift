/// How many values share one scale.
public enum Granularity: Equatable, Sendable, CustomStringConvertible {
    /// One scale for the whole tensor (the original LLMEasyQuant behaviour).
    case tensor
    /// One scale per output channel.
    case channel
    /// One scale per `n` consecutive input elements of one output channel.
    case group(Int)

    /// The largest group size accepted (far above any matrix row; keeps block arithmetic small).
    public static let maximumGroupSize = 1 << 24

    /// Parses `tensor`, `channel` or `group:N` (1 ≤ N ≤ `maximumGroupSize`).
    public init?(_ text: String) {
        switch text {
        case "tensor": self = .tensor
        case "channel": self = .channel
        default:
            guard text.hasPrefix("group:"), let n = Int(text.dropFirst(6)), (1...Self.maximumGroupSize).contains(n) else { return nil }
            self = .group(n)
        }
    }

    public var description: String {
        switch self {
        case .tensor: return "tensor"
        case .channel: return "channel"
        case .group(let n): return "group:\(n)"
        }
    }
}

/// Which elements of a 2-D tensor share a scale: the "block" of docs/FORMAT.md §5.2.
///
/// Element (i, j) uses scale (i / block.rows, j / block.columns). Every granularity is a
/// block shape, so the quantizer and the readers need only this one rule.
public struct BlockLayout: Equatable, Sendable {
    public var rows: Int
    public var columns: Int
    /// The tensor's shape [rows, columns].
    public var shape: [Int]
    /// The output-channel axis, or nil for per-tensor.
    public var axis: Int?
    /// Input elements per scale along the non-channel axis; 0 for the whole axis.
    public var groupSize: Int

    /// The blocks for a tensor of `shape` (rank 2) quantized along output axis `axis`.
    public init(shape: [Int], axis: Int, granularity: Granularity) {
        precondition(shape.count == 2 && (axis == 0 || axis == 1))
        self.shape = shape
        let r = max(1, shape[0]), c = max(1, shape[1])
        switch granularity {
        case .tensor:
            (rows, columns, self.axis, groupSize) = (r, c, nil, 0)
        case .channel:
            (rows, columns) = axis == 1 ? (r, 1) : (1, c)
            (self.axis, groupSize) = (axis, 0)
        case .group(let g):
            (rows, columns) = axis == 1 ? (g, 1) : (1, g)
            (self.axis, groupSize) = (axis, g)
        }
    }

    /// A layout read back from a file's `block` and shape.
    public init(shape: [Int], block: [Int], axis: Int?, groupSize: Int) {
        self.shape = shape
        rows = block[0]; columns = block[1]
        self.axis = axis; self.groupSize = groupSize
    }

    /// Shape of the scale (and zero-point) tensor: ceil(shape / block), computed so that no
    /// dimension a file can declare makes it overflow.
    public var scaleShape: [Int] {
        [BlockLayout.blocks(shape[0], rows), BlockLayout.blocks(shape[1], columns)]
    }

    /// ceil(n / block) for n >= 0, block >= 1, without forming n + block - 1.
    static func blocks(_ n: Int, _ block: Int) -> Int { n <= 0 ? 0 : (n - 1) / block + 1 }
    public var scaleCount: Int { scaleShape[0] * scaleShape[1] }
    public var block: [Int] { [rows, columns] }
}
