import EasyQuant
import FuzzSupport

/// Target (e): the GGUF reader (header, metadata, tensor infos, placement), then the
/// dequantization of every tensor whose type EasyQuant decodes, and the tokenizer its metadata
/// describes (which must encode reversibly, `Fuzz.checkRoundTrips`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let name = "fuzz.gguf"
    var opened: GGUFFile?
    Fuzz.expectingErrors(named: name) {
        opened = try GGUFFile(file: MappedFile(bytes: Fuzz.bytes(data, size), name: name))
    }
    guard let file = opened else { return 0 }
    for (key, _) in file.metadata { Fuzz.require(file.value(key) != nil) }
    for tensor in file.tensors {
        Fuzz.require(file.tensor(tensor.name) == tensor)
        Fuzz.require(tensor.fileRange.upperBound <= size, "tensor \(tensor.name) lies past the end")
        Fuzz.require(file.bytes(of: tensor).count == tensor.byteCount)
        // Within the budget every seed needs; the decoded size is elements × 4 bytes.
        guard tensor.type.canDequantize, tensor.elementCount <= Fuzz.maxDecodedBytes / 4 else { continue }
        Fuzz.expectingErrors(named: name) {
            let values = try file.floats(of: tensor, threads: 1)
            Fuzz.require(values.count == tensor.elementCount)
        }
    }
    if file.value("tokenizer.ggml.model") != nil {
        Fuzz.expectingErrors(named: name) {
            Fuzz.checkRoundTrips(try BPETokenizer(description: TokenizerDescription(gguf: file)), sample: [])
        }
    }
    return 0
}
