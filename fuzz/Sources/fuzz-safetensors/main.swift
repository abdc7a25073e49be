import EasyQuant
import FuzzSupport

/// Target (a): the safetensors header parser and validator, then every tensor's values.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let name = "fuzz.safetensors"
    Fuzz.expectingErrors(named: name) {
        let file = try SafetensorsFile(file: MappedFile(bytes: Fuzz.bytes(data, size), name: name))
        // What the validator promises: tensors tile the data area exactly, in order.
        var end = 0
        for info in file.tensors {
            Fuzz.require(info.dataOffsets.lowerBound == end, "tensor \(info.name) does not start where the previous ended")
            Fuzz.require(info.byteCount == info.elementCount * info.dtype.byteSize, "tensor \(info.name): size disagrees with shape")
            Fuzz.require(file.info(info.name) == info)
            end = info.dataOffsets.upperBound
            let values = file.floats(of: info)
            Fuzz.require(values.count == info.elementCount)
            Fuzz.require(file.fileRange(of: info).upperBound <= size)
        }
        Fuzz.require(file.dataStart + end == size, "tensors do not cover the data area")
    }
    return 0
}
