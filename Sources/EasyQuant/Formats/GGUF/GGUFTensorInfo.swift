/// One tensor as a GGUF file describes it, checked: its bytes lie inside the file, aligned,
/// and overlap no other tensor's.
///
/// `shape` is in PyTorch order, outermost dimension first. GGUF stores the dimensions the
/// other way round (ggml's `ne[0]` first, the contiguous row length), so a GGUF
/// `token_embd.weight` with dims `[576, 49152]` has `shape == [49152, 576]`: 49152 rows of
/// 576 elements, as the same tensor has in a safetensors file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// Name, as in the file.
    public let name: String
    /// Dimensions, outermost first (GGUF's dims reversed). Never empty; every entry >= 1.
    public let shape: [Int]
    /// Element type.
    public let type: GGMLType
    /// Absolute byte offset of the data in the file (the data section start plus the
    /// tensor's stored offset).
    public let offset: Int
    /// Bytes of data: rows × blocks per row × bytes per block.
    public let byteCount: Int
    /// Number of elements (the product of `shape`).
    public let elementCount: Int

    /// Dimensions as GGUF stores them: the contiguous row length first.
    public var dimensions: [Int] { shape.reversed() }
    /// Elements per row (GGUF's `ne[0]`, the last entry of `shape`); a multiple of the type's block size.
    public var rowLength: Int { shape.last ?? 1 }
    /// Rows: the product of every dimension but the row length.
    public var rowCount: Int { rowLength == 0 ? 0 : elementCount / rowLength }
    /// Bytes per row.
    public var rowBytes: Int { rowLength / type.blockSize * type.bytesPerBlock }
    /// Byte range in the file.
    public var fileRange: Range<Int> { offset..<(offset + byteCount) }
    /// Stored bits per element.
    public var bitsPerWeight: Double { elementCount == 0 ? 0 : Double(byteCount * 8) / Double(elementCount) }
}
