import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a whole file.
///
/// Models are far larger than what we want to copy: readers look at the bytes in place and
/// the kernel pages them in on demand. `release(_:)` tells the kernel that a range is no
/// longer needed, which keeps the resident size of a streaming conversion bounded.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    public var count: Int { bytes.count }

    /// Maps `path` read-only. An empty file maps to an empty buffer. Anything but a regular
    /// file (a directory, a FIFO, a device) is refused before it is opened (`InputFile`).
    public init(path: String) throws {
        self.path = path
        owned = nil
        let (fd, size) = try InputFile.openRegular(path)
        defer { close(fd) }
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw FileError.cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    /// Memory that holds a file's bytes without a file (freed, not unmapped, at the end).
    private let owned: UnsafeMutableRawBufferPointer?

    /// A "file" made of bytes in memory, named `name` in messages.
    public init(bytes source: [UInt8], name: String) {
        path = name
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, source.count), alignment: 64)
        source.withUnsafeBytes { if let b = $0.baseAddress { copy.baseAddress!.copyMemory(from: b, byteCount: source.count) } }
        owned = copy
        bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(copy)[0..<source.count])
    }

    deinit {
        if let owned { owned.deallocate(); return }
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// Hints that `range` will be read front to back soon.
    public func willNeed(_ range: Range<Int>) { advise(range, MADV_WILLNEED) }

    /// Drops the pages of `range` from this process's resident set (they stay in the page cache).
    public func release(_ range: Range<Int>) { advise(range, MADV_DONTNEED) }

    private func advise(_ range: Range<Int>, _ advice: Int32) {
        // Only for real maps: on memory we own, MADV_DONTNEED would zero the bytes.
        guard owned == nil, let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        let end = min(bytes.count, range.upperBound)
        guard end > start else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, advice)
    }
}

/// Errors of plain file access, each naming the file.
public enum FileError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case notFound(path: String, hint: String)
    /// A directory, FIFO, socket or device where a regular file is expected; `what` says which.
    case notRegular(path: String, what: String)

    /// The description without the leading path, for errors that name the file themselves.
    public var detail: String {
        let full = description, prefix = path + ": "
        return full.hasPrefix(prefix) ? String(full.dropFirst(prefix.count)) : full
    }

    public var path: String {
        switch self {
        case let .cannotOpen(path, _), let .cannotWrite(path, _), let .notFound(path, _), let .notRegular(path, _):
            return path
        }
    }

    public var description: String { MessageText.oneLine(text) }

    /// The message before the one-line guarantee.
    private var text: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .cannotWrite(path, reason): return "\(path): cannot write: \(reason)"
        case let .notFound(path, hint): return "\(path): not found; \(hint)"
        case let .notRegular(path, what):
            return what == "a directory"
                ? "\(path): is a directory where a file is expected; give the file itself"
                : "\(path): is \(what), not a regular file; EasyQuant reads only regular files (copy the data into a file first)"
        }
    }
}
