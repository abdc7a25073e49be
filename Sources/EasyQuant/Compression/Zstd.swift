import CZstd

/// One zstd frame per blob, always with zstd's XXH64 content checksum, so that each tensor
/// of a file decodes on its own (in parallel, lazily) and corruption is caught per tensor.
public enum Zstd {
    /// Why a frame could not be decoded.
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case compressionFailed(String)
        case corrupt(String)
        /// The frame declares (or decodes to) `found` bytes where `expected` were asked for.
        case sizeMismatch(expected: Int, found: UInt64)
        /// A frame of `frameLength` bytes declares more content than the format lets it hold.
        case impossibleSize(declared: UInt64, frameLength: Int)

        public var description: String {
            switch self {
            case .compressionFailed(let m): return "zstd compression failed: \(m)"
            case .corrupt(let m): return "zstd frame is corrupt: \(m)"
            case .sizeMismatch(let e, let f): return "zstd frame holds \(f) bytes, expected \(e)"
            case .impossibleSize(let d, let n):
                return "zstd frame of \(n) bytes declares \(d) bytes of content, more than such a frame can hold (at most \(Zstd.maxContentSize(frameLength: n)))"
            }
        }
    }

    /// The most content one zstd block can produce per byte it occupies. A block regenerates at
    /// most 128 KiB (RFC 8878 §3.1.1.2.4) and takes at least 4 bytes (a 3-byte block header and
    /// an RLE byte), so no frame decodes to more than 32768 times its length.
    public static let maxExpansion = (128 << 10) / 4

    /// The largest content a frame of `frameLength` bytes can decode to.
    public static func maxContentSize(frameLength: Int) -> Int {
        let (n, overflow) = max(0, frameLength).multipliedReportingOverflow(by: maxExpansion)
        return overflow ? Int.max : n
    }

    public static var levelRange: ClosedRange<Int> { Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel()) }

    /// Compresses `input` into one frame that records its content size and checksum.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int) throws -> [UInt8] {
        guard let cctx = ZSTD_createCCtx() else { throw Failure.compressionFailed("out of memory") }
        defer { ZSTD_freeCCtx(cctx) }
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, Int32(level))
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = output.withUnsafeMutableBytes { out in
            ZSTD_compress2(cctx, out.baseAddress, bound, input.baseAddress, input.count)
        }
        if ZSTD_isError(written) != 0 { throw Failure.compressionFailed(String(cString: ZSTD_getErrorName(written))) }
        output.removeSubrange(written...)
        return output
    }

    /// Checks that `frame` is exactly one frame that declares `size` bytes of content, a size it
    /// can hold. Call before allocating the output: nothing here allocates.
    public static func checkFrame(_ frame: UnsafeRawBufferPointer, size: Int) throws {
        let frameSize = ZSTD_findFrameCompressedSize(frame.baseAddress, frame.count)
        if ZSTD_isError(frameSize) != 0 { throw Failure.corrupt(String(cString: ZSTD_getErrorName(frameSize))) }
        if frameSize != frame.count { throw Failure.corrupt("frame is \(frameSize) bytes but its blob is \(frame.count)") }
        let declared = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        if declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN {
            throw Failure.corrupt("frame does not declare its content size")
        }
        if declared > UInt64(maxContentSize(frameLength: frame.count)) {
            throw Failure.impossibleSize(declared: declared, frameLength: frame.count)
        }
        if declared != UInt64(max(0, size)) { throw Failure.sizeMismatch(expected: size, found: declared) }
    }

    /// Decodes one whole frame into `output`, which must be exactly the frame's content size.
    /// Checks that the blob is exactly one frame, its declared size, and its checksum.
    public static func decompress(_ frame: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        try checkFrame(frame, size: output.count)
        guard let dctx = ZSTD_createDCtx() else { throw Failure.corrupt("out of memory") }
        defer { ZSTD_freeDCtx(dctx) }
        let n = ZSTD_decompressDCtx(dctx, output.baseAddress, output.count, frame.baseAddress, frame.count)
        if ZSTD_isError(n) != 0 { throw Failure.corrupt(String(cString: ZSTD_getErrorName(n))) }
        if n != output.count { throw Failure.sizeMismatch(expected: output.count, found: UInt64(n)) }
    }

    /// Decodes one whole frame into a new array of `size` bytes.
    public static func decompress(_ frame: UnsafeRawBufferPointer, size: Int) throws -> [UInt8] {
        // Check the declared size before allocating, so a damaged header cannot ask for terabytes.
        try checkFrame(frame, size: size)
        return try [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            try decompress(frame, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = size
        }
    }
}
