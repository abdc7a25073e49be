/// Reading small input files (tokenizer files, configs) whole, through `MappedFile`'s checks
/// (regular files only, so a FIFO or a device never blocks a tool), with a size cap so that a
/// hostile "tokenizer" cannot make a tool copy gigabytes.
public enum InputFiles {
    /// Small companion files are refused above this size.
    public static let defaultLimit = 256 << 20

    /// The bytes of `path`; `what` names the file's role in the message.
    public static func read(_ path: String, what: String, limit: Int = defaultLimit) throws -> [UInt8] {
        let file = try MappedFile(path: path)
        guard file.count <= limit else {
            throw FileError.cannotOpen(path: path, reason: "\(what) of \(file.count) bytes exceeds the \(limit >> 20) MiB limit; this is not a \(what)")
        }
        return Array(file.bytes)
    }
}
