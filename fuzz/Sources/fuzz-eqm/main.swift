import EasyQuant
import FuzzSupport

/// Target (b): the `.eqm` reader — preamble, JSON header, records — then the decoding of
/// every tensor's frames (as floats, and as codes + scales when quantized) and of every
/// embedded tokenizer file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEQM(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let name = "fuzz.eqm"
    var opened: EQMFile?
    Fuzz.expectingErrors(named: name) {
        opened = try EQMFile(file: MappedFile(bytes: Fuzz.bytes(data, size), name: name), maxDecodedBytes: Fuzz.maxDecodedBytes)
    }
    guard let file = opened else { return 0 }
    _ = file.modelConfig
    _ = file.quantizationInfo
    for record in file.tensors {
        Fuzz.expectingErrors(named: name) {
            let values = try file.floats(record)
            Fuzz.require(values.count == record.elementCount)
            // Float tensors are refused unless finite; dequantized ones can overflow to
            // infinity (finite scale × large code) but never become NaN.
            Fuzz.require(values.allSatisfy { record.quantization == nil ? $0.isFinite : !$0.isNaN }, "\(record.name): a value the reader should have refused")
        }
        if record.quantization != nil {
            Fuzz.expectingErrors(named: name) {
                let q = try file.quantizedTensor(record)
                Fuzz.require(q.scales.count == q.layout.scaleCount)
                Fuzz.require(q.codes.count == CodePacking.storedSize(count: q.elementCount, bits: q.bits))
            }
        }
    }
    for tokenizerFile in file.tokenizerFileNames {
        Fuzz.expectingErrors(named: name) {
            let bytes = try file.tokenizerFile(tokenizerFile)
            Fuzz.require((bytes?.count ?? 0) <= EQMFile.maxTokenizerFileSize)
        }
    }
    return 0
}
