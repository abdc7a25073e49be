import Foundation

/// Tells file formats apart by their first bytes, not their names.
public enum EQMSniffer {
    /// Whether the file at `path` starts with the `.eqm` magic.
    public static func isEQM(path: String) -> Bool {
        ModelFileFormat.sniff(path: path) == .eqm  // never opens a FIFO, which would block
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
