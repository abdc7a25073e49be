/// The checks a tensor passes before anything is sized, allocated or encoded for GGUF: the
/// same rules `GGUFFile` applies when it reads one, so whatever EasyQuant writes it can read.
enum GGUFShapeCheck {
    /// Why a shape cannot be written, as a phrase for the caller's message.
    struct Failure: Error, Equatable {
        let reason: String
    }

    /// The element count of `shape` (PyTorch order) as a GGUF tensor of `type`: 1 to 4
    /// dimensions, each at least 1, a product that does not overflow, a row length (the last
    /// dimension) that is a multiple of the type's block size, and a byte count that does not
    /// overflow. Returns (elements, bytes).
    static func sizes(_ shape: [Int], _ type: GGMLType) -> Result<(elements: Int, bytes: Int), Failure> {
        guard (1...GGUFFile.maxDimensions).contains(shape.count) else {
            return .failure(Failure(reason: "GGUF tensors have 1 to \(GGUFFile.maxDimensions) dimensions, not \(shape.count)"))
        }
        guard shape.allSatisfy({ $0 >= 1 }) else { return .failure(Failure(reason: "every dimension must be at least 1")) }
        var elements = 1
        for d in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { return .failure(Failure(reason: "its dimensions multiply to more elements than can be counted")) }
            elements = product
        }
        let rowLength = shape[shape.count - 1]
        guard rowLength % type.blockSize == 0 else {
            return .failure(Failure(reason: "the row length \(rowLength) (the last dimension) is not a multiple of \(type.name)'s block size \(type.blockSize)"))
        }
        let (bytes, overflow) = (elements / type.blockSize).multipliedReportingOverflow(by: type.bytesPerBlock)
        guard !overflow else { return .failure(Failure(reason: "\(elements) elements of \(type.name) take more bytes than can be counted")) }
        return .success((elements, bytes))
    }
}

extension QuantizedTensor {
    /// Throws unless this tensor's parts agree: a 2-D shape with dimensions of at least 1, a
    /// layout for that shape, as many scales (and zero points, exactly when asymmetric) as it
    /// has blocks, all finite, and codes stored for every element at `bits`. After this,
    /// `dequantizeRows` and `GGUFCodeMapping.encodeRow` index within bounds.
    func checkForGGUF(name: String) throws {
        func bad(_ reason: String) -> GGUFConversionError { GGUFConversionError(tensor: name, problem: .malformed(reason: reason)) }
        guard shape.count == 2, shape[0] >= 1, shape[1] >= 1 else {
            throw GGUFConversionError(tensor: name, problem: .badShape(shape: shape, type: nil,
                reason: "a quantized tensor must be a matrix with at least one row and one column"))
        }
        let (elements, overflow) = shape[0].multipliedReportingOverflow(by: shape[1])
        guard !overflow else { throw GGUFConversionError(tensor: name, problem: .badShape(shape: shape, type: nil, reason: "too many elements")) }
        guard (2...8).contains(bits) else { throw bad("\(bits) bits; codes have 2 to 8") }
        guard layout.shape == shape, layout.rows >= 1, layout.columns >= 1 else {
            throw bad("its block layout \(layout.block) over \(layout.shape) does not describe shape \(shape)")
        }
        // scaleShape divides by blocks of at least 1, so its product is at most the element count.
        let blocks = layout.scaleCount
        guard scales.count == blocks else { throw bad("\(scales.count) scales for \(blocks) blocks") }
        guard codes.count == CodePacking.storedSize(count: elements, bits: bits) else {
            throw bad("\(codes.count) bytes of codes for \(elements) \(bits)-bit codes")
        }
        if let i = scales.firstIndex(where: { !$0.isFinite }) { throw bad("scale \(i) is \(scales[i])") }
        switch (isSymmetric, zeroPoints) {
        case (true, nil): break
        case (true, .some): throw bad("symmetric, yet it has zero points")
        case (false, nil): throw bad("asymmetric, yet it has no zero points")
        case (false, .some(let z)):
            guard z.count == blocks else { throw bad("\(z.count) zero points for \(blocks) blocks") }
            if let i = z.firstIndex(where: { !$0.isFinite }) { throw bad("zero point \(i) is \(z[i])") }
        }
    }

    /// How the codes were made, for messages: `simquant 4-bit group:128`.
    var ggufSummary: String {
        let granularity: String
        if let axis = layout.axis {
            let base = layout.groupSize == 0 ? "channel" : "group:\(layout.groupSize)"
            granularity = axis == 0 ? base : base + " along axis 1"
        } else {
            granularity = "tensor"
        }
        return "\(method) \(bits)-bit \(granularity)"
    }
}
