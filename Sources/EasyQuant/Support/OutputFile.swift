import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a writer puts bytes: appended at the end, or patched at an offset already written.
public protocol ByteSink: AnyObject {
    /// Bytes written so far (the current end).
    var position: UInt64 { get }
    func write(_ data: UnsafeRawBufferPointer) throws
    func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws
    /// Makes the bytes final (a file appears under its name).
    func commit() throws
}

extension ByteSink {
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Appends zero bytes until the end is a multiple of `alignment`.
    public func pad(to alignment: Int) throws {
        let rem = Int(position % UInt64(alignment))
        if rem != 0 { try write([UInt8](repeating: 0, count: alignment - rem)) }
    }
}

/// Bytes kept in memory: what a file would hold, without the file (for comparing methods
/// without temporary files).
public final class MemorySink: ByteSink {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public var position: UInt64 { UInt64(bytes.count) }
    public func write(_ data: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: data) }
    public func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws {
        let o = Int(offset)
        precondition(o + data.count <= bytes.count, "patching past the end")
        bytes.withUnsafeMutableBytes { (UnsafeMutableRawBufferPointer(rebasing: $0[o..<(o + data.count)])).copyMemory(from: data) }
    }
    public func commit() throws {}
}

/// A file written under a temporary name in the destination's folder and renamed into place
/// by `commit()`; if it is dropped without a commit the temporary file is removed.
///
/// This is how every tool writes: on any error the destination either keeps its old
/// content or does not exist, never half a model.
public final class OutputFile: ByteSink {
    public let finalPath: String
    public let temporaryPath: String
    private var fd: Int32
    private var committed = false
    /// Bytes written so far (the current end of the file).
    public private(set) var position: UInt64 = 0

    public init(path: String) throws {
        finalPath = path
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw FileError.cannotWrite(path: path, reason: "folder \(dir) does not exist")
        }
        var template = Array((dir + "/." + url.lastPathComponent + ".tmp-XXXXXX").utf8CString)
        fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FileError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        fchmod(fd, 0o644)
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(temporaryPath) }
    }

    /// Appends bytes at the end.
    public func write(_ data: UnsafeRawBufferPointer) throws {
        try write(data, at: position)
        position += UInt64(data.count)
    }

    /// Writes bytes at an absolute offset without moving the end.
    public func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < data.count {
            let n = pwrite(fd, data.baseAddress! + done, data.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError.cannotWrite(path: finalPath, reason: String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// Renames the temporary file onto the destination.
    ///
    /// No fsync: the rename protects readers from a half-written file whatever happens to
    /// this process; surviving a power cut is left to the file system (ext4 and xfs flush a
    /// file renamed over another), as other model tools do. Syncing a 100 MB model cost more
    /// than the conversion itself.
    public func commit() throws {
        guard close(fd) == 0 else {
            fd = -1
            throw FileError.cannotWrite(path: finalPath, reason: String(cString: strerror(errno)))
        }
        fd = -1
        guard rename(temporaryPath, finalPath) == 0 else {
            throw FileError.cannotWrite(path: finalPath, reason: String(cString: strerror(errno)))
        }
        committed = true
    }
}

/// A folder written under a temporary name beside its destination and renamed into place by
/// `commit()`; dropped without a commit, it is removed with everything in it. A failed
/// export therefore leaves no half model behind, and no existing file is ever overwritten:
/// the destination must not exist or be an empty folder.
public final class OutputFolder {
    public let finalPath: String
    public let temporaryPath: String
    private var committed = false

    public init(path: String) throws {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        finalPath = trimmed
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: trimmed, isDirectory: &isDir) {
            guard isDir.boolValue else { throw FileError.cannotWrite(path: trimmed, reason: "it exists and is not a folder") }
            guard ((try? FileManager.default.contentsOfDirectory(atPath: trimmed)) ?? ["?"]).isEmpty else {
                throw ToolPaths.Failure.folderNotEmpty(path: trimmed)
            }
        }
        let url = URL(fileURLWithPath: trimmed)
        let parent = url.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDir), isDir.boolValue else {
            throw FileError.cannotWrite(path: trimmed, reason: "folder \(parent) does not exist")
        }
        var template = Array((parent + "/." + url.lastPathComponent + ".tmp-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw FileError.cannotWrite(path: trimmed, reason: String(cString: strerror(errno)))
        }
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        chmod(temporaryPath, 0o755)
    }

    /// Where file `name` of the folder is written until the commit.
    public func path(for name: String) -> String { (temporaryPath as NSString).appendingPathComponent(name) }

    /// Renames the finished folder onto the destination (replacing it if it is an empty folder).
    public func commit() throws {
        guard rename(temporaryPath, finalPath) == 0 else {
            throw FileError.cannotWrite(path: finalPath, reason: String(cString: strerror(errno)))
        }
        committed = true
    }

    deinit {
        if !committed { try? FileManager.default.removeItem(atPath: temporaryPath) }
    }
}
