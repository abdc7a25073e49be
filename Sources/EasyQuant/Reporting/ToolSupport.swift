import Foundation

/// Tells file formats apart by their first bytes, not their names.
public enum EQMSniffer {
    /// Whether the file at `path` starts with the `.eqm` magic.
    public static func isEQM(path: String) -> Bool {
        // O_NONBLOCK: opening a FIFO with no writer must not wait (regular files ignore the flag).
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return false }
        var prefix = [UInt8](repeating: 0, count: 8)
        return read(fd, &prefix, 8) == 8 && prefix == EQMFormat.magic
    }
}

extension ConversionReport {
    /// The summary as JSON, fields named plainly.
    public var json: JSONValue {
        .makeObject([
            ("source", .string(source)), ("output", .string(output)),
            ("method", .string(method)), ("granularity", .string(granularity)), ("bits", JSONValue(bits)),
            ("tensors_quantized", JSONValue(quantized)), ("tensors_kept", JSONValue(kept)),
            ("tensors_dropped", .array(dropped.map { .string($0) })),
            ("input_bytes", JSONValue(inputBytes)), ("output_bytes", JSONValue(outputBytes)),
            ("ratio", .double(ratio)), ("bits_per_weight", .double(bitsPerWeight)),
            ("bits_per_parameter", .double(bitsPerParameter)),
            ("seconds", .double(seconds)), ("mb_per_second", .double(megabytesPerSecond)),
        ])
    }
}
