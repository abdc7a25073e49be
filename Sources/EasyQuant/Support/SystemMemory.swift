#if canImport(Glibc)
import Glibc
#endif

/// The machine's memory, for refusing an allocation that cannot succeed before Swift's
/// allocator aborts the process on it.
public enum SystemMemory {
    /// Bytes of physical memory (`_SC_PHYS_PAGES` × page size); Int.max if unknown.
    public static let physicalBytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? Int.max : bytes
    }()
}
