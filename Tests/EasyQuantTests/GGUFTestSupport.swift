import EasyQuant
import Foundation
import XCTest

/// Builds GGUF bytes field by field, so tests can write files the format forbids.
struct GGUFBuilder {
    var magic: [UInt8] = Array("GGUF".utf8)
    var version: UInt32 = 3
    /// Counts written in the header instead of the true ones.
    var tensorCountOverride: UInt64?
    var kvCountOverride: UInt64?
    /// The alignment the data section is padded to (set `general.alignment` separately).
    var alignment = 32
    private(set) var kvs: [[UInt8]] = []
    private(set) var infos: [[UInt8]] = []
    /// Bytes after the padded tensor infos.
    var data: [UInt8] = []

    static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    static func string(_ s: String) -> [UInt8] { string(Array(s.utf8)) }
    static func string(_ bytes: [UInt8]) -> [UInt8] { u64(UInt64(bytes.count)) + bytes }

    /// A key/value pair: key, type tag, then `payload` as given.
    mutating func kv(_ key: String, type: UInt32, _ payload: [UInt8]) { kv(rawKey: Array(key.utf8), type: type, payload) }
    mutating func kv(rawKey: [UInt8], type: UInt32, _ payload: [UInt8]) { kvs.append(Self.string(rawKey) + Self.u32(type) + payload) }

    /// A tensor info with the given dims (GGUF order), ggml type number and relative offset.
    mutating func tensor(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        tensor(rawName: Array(name.utf8), dims: dims, type: type, offset: offset)
    }
    mutating func tensor(rawName: [UInt8], dims: [UInt64], type: UInt32, offset: UInt64, dimCount: UInt32? = nil) {
        infos.append(Self.string(rawName) + Self.u32(dimCount ?? UInt32(dims.count)) + dims.flatMap(Self.u64) + Self.u32(type) + Self.u64(offset))
    }

    /// Header, metadata and tensor infos, without padding or data.
    var headerBytes: [UInt8] {
        magic + Self.u32(version) + Self.u64(tensorCountOverride ?? UInt64(infos.count))
            + Self.u64(kvCountOverride ?? UInt64(kvs.count)) + kvs.flatMap { $0 } + infos.flatMap { $0 }
    }

    /// The whole file: header, padding to `alignment`, data.
    var bytes: [UInt8] {
        var out = headerBytes
        while out.count % alignment != 0 { out.append(0) }
        return out + data
    }
}

enum GGUFTest {
    /// Opens `bytes` as a GGUF file named `name`, returning the error's problem (nil if it opened),
    /// and checks that the error is one line naming the file.
    static func problem(_ bytes: [UInt8], name: String = "crafted.gguf",
                        file: StaticString = #filePath, line: UInt = #line) -> GGUFError.Problem? {
        do {
            _ = try GGUFFile(file: MappedFile(bytes: bytes, name: name))
            return nil
        } catch let e as GGUFError {
            XCTAssertTrue(e.description.hasPrefix(name + ": "), "error names the file: \(e)", file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), "one line: \(e)", file: file, line: line)
            return e.problem
        } catch {
            XCTFail("unexpected error type \(error)", file: file, line: line)
            return nil
        }
    }

    /// The exact form scripts/make_gguf_fixtures.py writes for a value (integers as decimal
    /// strings, floats as hex bit patterns).
    static func canonical(_ v: GGUFValue) -> JSONValue {
        func hex(_ bits: UInt64, width: Int) -> String {
            let digits = String(bits, radix: 16)
            return "0x" + String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let type = JSONValue.string(v.type.name)
        switch v {
        case .array(let element, let values):
            return .makeObject([("type", type), ("element", .string(element.name)), ("values", .array(values.map(canonical)))])
        case .float32(let f): return .makeObject([("type", type), ("value", .string(hex(UInt64(f.bitPattern), width: 8)))])
        case .float64(let d): return .makeObject([("type", type), ("value", .string(hex(d.bitPattern, width: 16)))])
        case .bool(let b): return .makeObject([("type", type), ("value", .bool(b))])
        case .string(let s): return .makeObject([("type", type), ("value", .string(s))])
        case .uint8(let x): return .makeObject([("type", type), ("value", .string(String(x)))])
        case .int8(let x): return .makeObject([("type", type), ("value", .string(String(x)))])
        case .uint16(let x): return .makeObject([("type", type), ("value", .string(String(x)))])
        case .int16(let x): return .makeObject([("type", type), ("value", .string(String(x)))])
        case .uint32(let x): return .makeObject([("type", type), ("value", .string(String(x)))])
        case .int32(let x): return .makeObject([("type", type), ("value", .string(String(x)))])
        case .uint64(let x): return .makeObject([("type", type), ("value", .string(String(x)))])
        case .int64(let x): return .makeObject([("type", type), ("value", .string(String(x)))])
        }
    }

    static func json(_ relative: String) throws -> JSONValue {
        try JSONValue.parse(Array(Data(contentsOf: URL(fileURLWithPath: TestFiles.fixture(relative)))))
    }
}
