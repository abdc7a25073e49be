import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The checks every tool makes on the paths it is given, before it opens anything:
/// inputs must be regular files (or folders where a model folder is expected), so a FIFO or a
/// device never blocks or feeds a tool; and no output may be one of the inputs, so a slip of
/// the fingers (`eqconvert m m/model.safetensors`) cannot destroy what the user had.
public enum ToolPaths {
    /// Why a path cannot be used.
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case missing(path: String, role: String)
        case notRegular(path: String, role: String, kind: String)
        case directoryNotAllowed(path: String, role: String)
        case overwritesInput(output: String, input: String)
        case folderNotEmpty(path: String)

        public var description: String {
            switch self {
            case let .missing(p, role): return "\(p): not found; give an existing \(role)"
            case let .notRegular(p, role, kind): return "\(p): is a \(kind), not a regular file; give a regular file as the \(role)"
            case let .directoryNotAllowed(p, role): return "\(p): is a folder; give a file as the \(role)"
            case let .overwritesInput(o, i): return "\(o): is the same file as the input \(i); choose another output name (inputs are never modified)"
            case .folderNotEmpty(let p): return "\(p): the output folder exists and is not empty; give a new or empty folder (nothing in it is overwritten)"
            }
        }
    }

    /// Companion files a model folder (or the folder of a model file) may hold, which the
    /// readers open: config, tokenizer and shard index.
    public static let companionFiles = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                                        "encoder.json", "vocab.bpe", "model.safetensors.index.json", "generation_config.json"]

    /// Refuses a missing input, and anything but a regular file (or a folder, when
    /// `directoryAllowed`). `role` says what the path should be ("model", "text file").
    public static func checkInput(_ path: String, role: String, directoryAllowed: Bool = false) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw Failure.missing(path: path, role: role) }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR:
            guard directoryAllowed else { throw Failure.directoryNotAllowed(path: path, role: role) }
        case S_IFIFO: throw Failure.notRegular(path: path, role: role, kind: "FIFO (named pipe)")
        case S_IFCHR, S_IFBLK: throw Failure.notRegular(path: path, role: role, kind: "device")
        case S_IFSOCK: throw Failure.notRegular(path: path, role: role, kind: "socket")
        default: throw Failure.notRegular(path: path, role: role, kind: "special file")
        }
    }

    /// Every file a model given as `path` may be read from: the regular files of a folder,
    /// or a file and the companion files beside it.
    public static func modelFiles(_ path: String) -> [String] {
        var st = stat()
        guard stat(path, &st) == 0 else { return [path] }
        if st.st_mode & S_IFMT == S_IFDIR {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            return names.map { (path as NSString).appendingPathComponent($0) }
        }
        let dir = (path as NSString).deletingLastPathComponent
        return [path] + companionFiles.map { ((dir.isEmpty ? "." : dir) as NSString).appendingPathComponent($0) }
    }

    /// Refuses to write `output` when it names the same file as one of `inputs` (same device
    /// and inode; links are followed, so a link to an input is refused too). Outputs are
    /// written under a temporary name and renamed, which would replace such an input.
    public static func refuseOverwriting(_ output: String, inputs: [String]) throws {
        var out = stat()
        guard stat(output, &out) == 0 else { return }
        for input in inputs {
            var st = stat()
            if stat(input, &st) == 0, st.st_dev == out.st_dev, st.st_ino == out.st_ino {
                throw Failure.overwritesInput(output: output, input: input)
            }
        }
    }

    /// Whether `path` names a folder output: an existing folder, or a path ending in "/".
    public static func isFolderOutput(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return path.hasSuffix("/") || (FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue)
    }
}
