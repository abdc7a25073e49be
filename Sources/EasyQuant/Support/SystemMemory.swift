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

    /// Hands memory freed inside the allocator's heap back to the system (glibc's
    /// `malloc_trim`). Freed blocks of a few hundred KiB stay in the heap, counted in the
    /// process's resident memory, until something reuses them; when what replaces them lives
    /// elsewhere (a `PageArena`), this keeps them from being held twice. A no-op elsewhere.
    public static func returnFreedMemory() {
        _ = mallocTrim?(0)
    }

    /// glibc's `malloc_trim`, looked up at run time: the Glibc module does not declare
    /// <malloc.h>, and other C libraries do not have it.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()
}
