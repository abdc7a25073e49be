import Foundation

/// One large anonymous mapping, handed out front to back, for memory that is read in full for
/// every decoded token: the batch-1 layouts of a model's weights (`DecoderModel.prepareForDecoding`).
///
/// Why: decoding streams every weight of the model for each token (around a hundred MB for
/// a model of 125M parameters at 8 bits). Through 4 KiB pages that is a TLB
/// miss every 4 KiB, and on a virtual machine every miss walks two levels of page tables.
/// The arena asks the kernel for 2 MiB pages (`madvise(MADV_HUGEPAGE)`; Linux grants them
/// where transparent huge pages are "madvise" or "always"), and the weights of a model sit
/// side by side in it instead of in many separate allocations. Elsewhere, or when refused,
/// it is ordinary memory.
///
/// The mapping reserves address space only (`MAP_NORESERVE`): pages count once written, so a
/// generous capacity costs nothing. Memory handed out is never freed on its own; the mapping
/// goes when the arena does, and whatever took memory from it keeps a reference to it.
public final class PageArena: @unchecked Sendable {
    /// The page size asked for.
    static let hugePage = 2 << 20

    private let mapping: UnsafeMutableRawPointer
    private let mappingBytes: Int
    /// The first 2 MiB boundary inside the mapping, where handing out starts.
    private let base: UnsafeMutableRawPointer
    /// Bytes that can be handed out, and bytes handed out so far.
    public let capacity: Int
    private var used = 0
    private let lock = Lock()

    /// Reserves `capacity` bytes (rounded up to whole 2 MiB pages); nil when the system
    /// refuses the mapping.
    public init?(capacity: Int) {
        let page = Self.hugePage
        let (pages, overflow) = capacity.addingReportingOverflow(page - 1)
        guard capacity > 0, !overflow else { return nil }
        let rounded = pages / page * page
        // One page more than asked, so that a 2 MiB boundary falls inside.
        let (bytes, overflow2) = rounded.addingReportingOverflow(page)
        guard !overflow2 else { return nil }
        guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              p != MAP_FAILED else { return nil }
        mapping = p; mappingBytes = bytes
        let address = Int(bitPattern: p)
        base = p + ((page - address % page) % page)
        self.capacity = rounded
        // Advice only: a kernel without transparent huge pages leaves 4 KiB pages.
        _ = madvise(base, rounded, MADV_HUGEPAGE)
    }

    deinit { munmap(mapping, mappingBytes) }

    /// `byteCount` bytes aligned to `alignment` (a power of two up to 4096), zero-filled as
    /// never used before; nil when the arena has no room left (take ordinary memory then).
    public func allocate(byteCount: Int, alignment: Int = 64) -> UnsafeMutableRawPointer? {
        precondition(byteCount >= 0 && alignment > 0 && alignment <= 4096 && alignment & (alignment - 1) == 0,
                     "PageArena.allocate: \(byteCount) bytes aligned to \(alignment)")
        return lock.withLock {
            let start = (used + alignment - 1) & ~(alignment - 1)
            guard start <= capacity, byteCount <= capacity - start else { return nil }
            used = start + byteCount
            return base + start
        }
    }

    /// Bytes handed out so far.
    public var bytesUsed: Int { lock.withLock { used } }
}
