import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Opens the files EasyQuant reads, refusing anything that is not a regular file before it
/// can block or mislead.
///
/// `open()` on a FIFO without a writer waits for ever, and a character device such as
/// `/dev/zero` never ends; a directory given where a file is expected deserves its own
/// message. So every input is `stat`ed first, then opened with `O_NONBLOCK` (which cannot
/// wait on a FIFO that appeared in between), then `fstat`ed again, and anything but a regular
/// file is refused with a one-line error naming it and saying what it is. `MappedFile` opens
/// through here, and so does everything built on it (`InputFiles` for small files read whole).
public enum InputFile {
    /// What a path names, as far as opening it for reading is concerned.
    public enum Kind: Equatable, Sendable {
        case missing
        /// `stat` failed for another reason (permissions, a loop of links, ...), given in words.
        case unreachable(String)
        case regular(size: Int)
        case directory
        /// A FIFO, socket, device or other special file, described in words.
        case special(String)
    }

    /// What `path` names (symbolic links followed), without opening it.
    public static func kind(of path: String) -> Kind {
        var st = stat()
        guard stat(path, &st) == 0 else {
            return errno == ENOENT || errno == ENOTDIR ? .missing : .unreachable(String(cString: strerror(errno)))
        }
        return kind(mode: st.st_mode, size: st.st_size)
    }

    static func kind(mode: mode_t, size: off_t) -> Kind {
        switch mode & S_IFMT {
        case S_IFREG: return .regular(size: Int(size))
        case S_IFDIR: return .directory
        case S_IFIFO: return .special("a FIFO (named pipe)")
        case S_IFSOCK: return .special("a socket")
        case S_IFCHR: return .special("a character device")
        case S_IFBLK: return .special("a block device")
        default: return .special("not a regular file")
        }
    }

    /// Opens `path` read-only if it is a regular file; returns the descriptor (the caller
    /// closes it) and the file's size.
    public static func openRegular(_ path: String) throws -> (descriptor: Int32, size: Int) {
        try refuseIfNotRegular(path, kind(of: path))
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw FileError.cannotOpen(path: path, reason: reason)
        }
        // The path may have been replaced between stat and open.
        let opened = kind(mode: st.st_mode, size: st.st_size)
        guard case .regular(let size) = opened else {
            close(fd)
            try refuseIfNotRegular(path, opened)
            throw FileError.notRegular(path: path, what: "not a regular file")
        }
        return (fd, size)
    }

    /// Throws the error for a path that is not a regular file (does nothing for one that is).
    static func refuseIfNotRegular(_ path: String, _ kind: Kind) throws {
        switch kind {
        case .regular: return
        case .missing: throw FileError.cannotOpen(path: path, reason: "no such file")
        case .unreachable(let reason): throw FileError.cannotOpen(path: path, reason: reason)
        case .directory: throw FileError.notRegular(path: path, what: "a directory")
        case .special(let what): throw FileError.notRegular(path: path, what: what)
        }
    }

    /// Up to `count` bytes from the start of a regular file, or nil if `path` is not a
    /// readable regular file. For telling formats apart; never blocks.
    public static func prefix(_ path: String, count: Int) -> [UInt8]? {
        guard let (fd, _) = try? openRegular(path) else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, count) }
        guard n >= 0 else { return nil }
        return Array(bytes.prefix(n))
    }
}
