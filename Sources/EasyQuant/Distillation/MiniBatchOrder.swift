/// The order in which distillation visits the calibration windows: deterministic from a
/// seed, and simple enough to reproduce exactly in another language (scripts/lkd_reference.py).
///
/// Random numbers come from SplitMix64. Each epoch shuffles 0..<windows with Fisher–Yates
/// (for i from windows−1 down to 1: j = next() mod (i+1), swap i and j, starting from the
/// identity) and cuts the permutation into ⌊windows / b⌋ batches of b = min(batchSize,
/// windows) consecutive entries; a remainder is skipped for that epoch (it lands elsewhere
/// in the next shuffle). Then the next epoch shuffles again.
public struct MiniBatchOrder: Sendable {
    public let windows: Int
    public let batchSize: Int
    private var generator: SeededGenerator
    private var permutation: [Int] = []
    private var position = 0

    public init(windows: Int, batchSize: Int, seed: UInt64) {
        precondition(windows > 0 && batchSize > 0)
        self.windows = windows; self.batchSize = min(batchSize, windows); generator = SeededGenerator(seed: seed)
    }

    /// The window indices of the next mini-batch.
    public mutating func next() -> [Int] {
        if permutation.isEmpty || position + batchSize > windows {
            permutation = Array(0..<windows)
            for i in stride(from: windows - 1, through: 1, by: -1) {
                let j = Int(generator.next() % UInt64(i + 1))
                permutation.swapAt(i, j)
            }
            position = 0
        }
        defer { position += batchSize }
        return Array(permutation[position..<(position + batchSize)])
    }
}
