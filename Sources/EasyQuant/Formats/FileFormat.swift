/// The model file formats EasyQuant knows, told apart by their first bytes (never by their
/// names), so that a file given to the wrong reader gets "this is an .eqm file" instead of a
/// confusing complaint about a header length.
public enum ModelFileFormat: String, Sendable, CaseIterable {
    case eqm
    case safetensors
    case gguf

    /// How messages name the format.
    public var displayName: String {
        switch self {
        case .eqm: return ".eqm"
        case .safetensors: return "safetensors"
        case .gguf: return "GGUF"
        }
    }

    /// Bytes `sniff` looks at.
    public static let sniffLength = 9

    /// The format whose signature the bytes start with, or nil.
    ///
    /// `.eqm` and GGUF have magic numbers. Safetensors has none: a file counts as safetensors
    /// when its first 8 bytes are a little-endian header length that fits the file and the
    /// header starts with `{`.
    public static func sniff(_ bytes: UnsafeRawBufferPointer, fileSize: Int? = nil) -> ModelFileFormat? {
        if bytes.count >= 8, bytes.prefix(8).elementsEqual(EQMFormat.magic) { return .eqm }
        if bytes.count >= 4, bytes.prefix(4).elementsEqual(GGUFFile.magic) { return .gguf }
        if bytes.count >= 9, bytes[8] == UInt8(ascii: "{") {
            let length = bytes.loadUnaligned(as: UInt64.self).littleEndian
            let size = UInt64(fileSize ?? bytes.count)
            if length >= 2, length <= UInt64(SafetensorsFile.maxHeaderLength), size >= 8, length <= size - 8 { return .safetensors }
        }
        return nil
    }

    public static func sniff(_ bytes: [UInt8], fileSize: Int? = nil) -> ModelFileFormat? {
        bytes.withUnsafeBytes { sniff($0, fileSize: fileSize ?? bytes.count) }
    }

    /// The format of the file at `path`, or nil if it is not a readable regular file or has no
    /// known signature. Reads a few bytes; never blocks (a FIFO is not opened).
    public static func sniff(path: String) -> ModelFileFormat? {
        guard case .regular(let size) = InputFile.kind(of: path), let prefix = InputFile.prefix(path, count: sniffLength) else {
            return nil
        }
        return sniff(prefix, fileSize: size)
    }
}
