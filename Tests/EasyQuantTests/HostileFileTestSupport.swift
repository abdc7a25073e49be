import EasyQuant
import Foundation
import XCTest

/// Assembles `.eqm` bytes piece by piece, so tests can write files the format forbids:
/// frames placed at 64-byte aligned offsets after the preamble, then a header built from
/// where they went.
struct EQMBuilder {
    var major: UInt16 = 1
    var minor: UInt16 = 0
    /// Frames and the decoded size each blob declares.
    private(set) var frames: [(frame: [UInt8], size: Int)] = []

    /// Adds a frame; returns its index, for `blob(_:in:)`.
    @discardableResult
    mutating func add(frame: [UInt8], size: Int) -> Int {
        frames.append((frame, size))
        return frames.count - 1
    }

    /// Adds `bytes` compressed as EasyQuant writes them.
    @discardableResult
    mutating func add(compressing bytes: [UInt8]) -> Int {
        let frame = try! bytes.withUnsafeBytes { try Zstd.compress($0, level: 3) }
        return add(frame: frame, size: bytes.count)
    }

    @discardableResult
    mutating func add(floats: [Float]) -> Int {
        add(compressing: floats.withUnsafeBytes { Array($0) })
    }

    /// Blob offsets: each frame at the next multiple of 64 after the 32-byte preamble.
    var offsets: [Int] {
        var at = 64, out: [Int] = []
        for f in frames {
            out.append(at)
            at = (at + f.frame.count + 63) / 64 * 64
        }
        return out
    }

    /// The BLOB object of frame `i`.
    func blob(_ i: Int) -> JSONValue {
        .makeObject([("offset", JSONValue(offsets[i])), ("length", JSONValue(frames[i].frame.count)), ("size", JSONValue(frames[i].size))])
    }

    /// The whole file with `header` (serialized) after the blobs; `headerLength` overrides
    /// the preamble's length field.
    func bytes(header: JSONValue, headerLength: UInt64? = nil) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        for (f, at) in zip(frames, offsets) {
            out += [UInt8](repeating: 0, count: at - out.count)
            out += f.frame
        }
        let headerOffset = out.count
        let text = Array(header.serialized().utf8)
        out += text
        var preamble: [UInt8] = [0x89, 0x45, 0x51, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A]
        withUnsafeBytes(of: major.littleEndian) { preamble += $0 }
        withUnsafeBytes(of: minor.littleEndian) { preamble += $0 }
        preamble += [0, 0, 0, 0]
        withUnsafeBytes(of: UInt64(headerOffset).littleEndian) { preamble += $0 }
        withUnsafeBytes(of: (headerLength ?? UInt64(text.count)).littleEndian) { preamble += $0 }
        out.replaceSubrange(0..<32, with: preamble)
        return out
    }

    /// A header with `tensors` and optional tokenizer files.
    static func header(tensors: [JSONValue], tokenizer: [(String, JSONValue)] = [], alignment: Int = 64) -> JSONValue {
        var metadata: [(String, JSONValue)] = [("model", .makeObject([("architecture", "gpt2")]))]
        if !tokenizer.isEmpty { metadata.append(("tokenizer", .makeObject([("files", .makeObject(tokenizer))]))) }
        return .makeObject([("alignment", JSONValue(alignment)), ("metadata", .makeObject(metadata)), ("tensors", .array(tensors))])
    }

    /// A float tensor record.
    static func floatRecord(_ name: String, shape: [JSONValue], dtype: String = "F32", data: JSONValue) -> JSONValue {
        .makeObject([("name", .string(name)), ("shape", .array(shape)), ("source_dtype", "F32"),
                     ("encoding", "float"), ("dtype", .string(dtype)), ("data", data)])
    }

    /// A quantized tensor record (symmetric unless `zeroPoints` is given).
    static func quantizedRecord(_ name: String, shape: [JSONValue], bits: Int = 8, block: [JSONValue], axis: JSONValue = 1,
                                groupSize: JSONValue = 0, data: JSONValue, scales: JSONValue, zeroPoints: JSONValue? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("name", .string(name)), ("shape", .array(shape)), ("source_dtype", "F32"), ("encoding", "quantized"),
            ("quantization", .makeObject([("method", "absmax"), ("bits", JSONValue(bits)), ("signed", true),
                                          ("scheme", zeroPoints == nil ? "symmetric" : "asymmetric"), ("axis", axis),
                                          ("group_size", groupSize), ("block", .array(block))])),
            ("data", data), ("scales", .makeObject([("dtype", "F32"), ("data", scales)])),
        ]
        if let zeroPoints { members.append(("zero_points", .makeObject([("dtype", "F32"), ("data", zeroPoints)]))) }
        return .makeObject(members)
    }
}

/// A hand-made zstd frame that declares `contentSize` bytes but holds one 4-byte RLE block:
/// structurally a valid single frame, so only the size checks can refuse it.
func lyingZstdFrame(contentSize: UInt64) -> [UInt8] {
    var frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
    frame.append(0xE0)  // frame header descriptor: 8-byte content size, single segment, no checksum
    withUnsafeBytes(of: contentSize.littleEndian) { frame += $0 }
    let blockHeader = UInt32(1) | (UInt32(1) << 1) | (UInt32(4) << 3)  // last block, RLE, 4 bytes regenerated
    frame += [UInt8(blockHeader & 0xFF), UInt8((blockHeader >> 8) & 0xFF), UInt8(blockHeader >> 16)]
    frame.append(0x2A)
    return frame
}

/// Opening or decoding hostile bytes: the error, checked to be one line naming the file.
func hostileError(_ name: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        let text = "\(error)"
        XCTAssertTrue(text.hasPrefix(name), "names \(name): \(text)", file: file, line: line)
        XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
        return text
    }
}
