import EasyQuant
import Foundation
import XCTest

/// The GGUF parser: metadata and tensor infos of files written by Python's `gguf` package
/// (scripts/make_gguf_fixtures.py), and crafted files that break every rule.
final class GGUFReaderTests: XCTestCase {
    typealias B = GGUFBuilder

    // MARK: Files written by the gguf package

    func checkMetadata(_ name: String) throws -> GGUFFile {
        let f = try GGUFFile(path: TestFiles.fixture("gguf/\(name).gguf"))
        let expected = try GGUFTest.json("gguf/\(name).metadata.json")
        XCTAssertEqual(Int(f.version), expected["version"]?.intValue)
        guard let entries = expected["metadata"]?.arrayValue else { throw XCTSkip("bad expectations file") }
        XCTAssertEqual(f.metadata.map(\.key), entries.compactMap { $0["key"]?.stringValue }, "keys in file order")
        for (got, want) in zip(f.metadata, entries) {
            let wantValue = JSONValue.object(want.objectMembers!.filter { $0.key != "key" })
            XCTAssertEqual(GGUFTest.canonical(got.value), wantValue, got.key)
            XCTAssertEqual(f.value(got.key), got.value, "lookup by key \(got.key)")
        }
        return f
    }

    func testMetadataOfEveryValueTypeRoundTripsExactly() throws {
        let f = try checkMetadata("all_types")
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.alignment, 32)
        XCTAssertEqual(Set(f.metadata.map(\.value.type)), Set(GGUFValueType.allCases), "every value type is exercised")
        XCTAssertEqual(f.value("test.string")?.stringValue, "h\u{e9}llo w\u{f6}rld \u{2713} \u{65e5}\u{672c}\u{8a9e} \u{1f999}")
        XCTAssertEqual(f.value("test.string_nul")?.stringValue, "a\u{0}b\nc\t\"quoted\"")
        XCTAssertEqual(f.value("test.string_empty")?.stringValue, "")
        XCTAssertNotNil(f.value("test.\u{fc}nicode_key"))
        XCTAssertNil(f.value("test.missing"))
    }

    func testVersion2WithEmptyArraysAndAlignment64() throws {
        let f = try checkMetadata("v2_empty_arrays")
        XCTAssertEqual(f.version, 2)
        XCTAssertEqual(f.alignment, 64)
        XCTAssertEqual(f.dataStart % 64, 0)
        XCTAssertEqual(f.value("test.empty_string"), .array(.string, []))
        XCTAssertEqual(f.value("test.empty_nested")?.elementType, .array)
        XCTAssertEqual(f.value("test.nested_with_empty"), .array(.array, [.array(.uint64, []), .array(.uint8, [.uint8(1), .uint8(2)])]))
        XCTAssertEqual(f.value("test.after_empty")?.stringValue, "still in step", "parsing stayed in step after empty arrays")
    }

    func testAccessorsConvertWhatFitsAndNothingElse() throws {
        let f = try GGUFFile(path: TestFiles.fixture("gguf/all_types.gguf"))
        XCTAssertEqual(f.value("test.u8")?.intValue, 255)
        XCTAssertEqual(f.value("test.i64")?.intValue, Int(Int64.min))
        XCTAssertNil(f.value("test.u64")?.intValue, "2^64-1 does not fit in Int")
        XCTAssertEqual(f.value("test.u64")?.doubleValue, 18446744073709551615.0)
        XCTAssertEqual(f.value("test.f32")?.doubleValue, Double(Float(-1.5e-3)))
        XCTAssertNil(f.value("test.f32")?.intValue)
        XCTAssertEqual(f.value("test.bool_true")?.boolValue, true)
        XCTAssertNil(f.value("test.bool_true")?.intValue)
        XCTAssertEqual(f.value("test.array_i16")?.intArray, [-32768, 32767, 7])
        XCTAssertNil(f.value("test.array_u64")?.intArray, "one element does not fit")
        XCTAssertEqual(f.value("test.array_u8")?.floatArray, [0, 1, 254, 255])
        XCTAssertEqual(f.value("test.array_string")?.stringArray?.first, "<|endoftext|>")
        XCTAssertNil(f.value("test.array_string")?.intArray)
        XCTAssertNil(f.value("test.string")?.arrayValue)
        XCTAssertEqual(f.value("test.array_nested")?.arrayValue?.map { $0.intArray ?? [] }, [[1, 2, 3], [-4], []])

        XCTAssertEqual(f.value("test.u32")?.summary, "u32 4294967295")
        XCTAssertEqual(f.value("test.bool_false")?.summary, "bool false")
        XCTAssertEqual(f.value("test.string_nul")?.summary, #"string "a\u{0}b\nc\t\"quoted\"""#)
        XCTAssertEqual(f.value("test.array_string")?.summary,
                       "[string × 4] \"<|endoftext|>\", \"\", \"h\u{e9}llo w\u{f6}rld \u{2713} \u{65e5}\u{672c}\u{8a9e} \u{1f999}\", \"\u{120}the\"")
        XCTAssertEqual(f.value("test.array_i32")?.summary, "[i32 × 4] -2147483648, 2147483647, 0, 5")
        XCTAssertEqual(f.value("test.array_f32")?.summary, "[f32 × 5] 0.0, -0.0, 1.0, -2.5e-07, …")
        XCTAssertEqual(f.value("test.array_nested")?.summary, "[array × 3] [i32 × 3], [i32 × 1], [string × 2]")
        XCTAssertEqual(GGUFValue.string(String(repeating: "x", count: 100)).summary, "string \"" + String(repeating: "x", count: 60) + "…\"")
    }

    func testTensorInfosMatchTheGGUFPackagesReader() throws {
        for name in ["all_types", "v2_empty_arrays"] {
            let f = try GGUFFile(path: TestFiles.fixture("gguf/\(name).gguf"))
            let expected = try SafetensorsFile(path: TestFiles.fixture("gguf/\(name).expected.safetensors"))
            let reported = try JSONValue.parse(expected.metadata.first { $0.key == "tensors" }!.value)
            XCTAssertEqual(f.tensors.map(\.name), reported.objectMembers!.map(\.key), "file order")
            for t in f.tensors {
                let want = try XCTUnwrap(reported[t.name])
                XCTAssertEqual(t.type.name, want["type"]?.stringValue, t.name)
                XCTAssertEqual(t.offset, want["offset"]?.intValue, t.name)
                XCTAssertEqual(t.byteCount, want["bytes"]?.intValue, t.name)
                XCTAssertEqual(t.shape, expected.info(t.name)?.shape, "PyTorch order: \(t.name)")
                XCTAssertEqual(t.dimensions, t.shape.reversed())
                XCTAssertEqual(t.elementCount, t.shape.reduce(1, *))
                XCTAssertEqual(t.rowCount * t.rowLength, t.elementCount)
                XCTAssertEqual(f.tensor(t.name), t)
                XCTAssertEqual(f.bytes(of: t).count, t.byteCount)
            }
        }
        let f = try GGUFFile(path: TestFiles.fixture("gguf/all_types.gguf"))
        let q6 = try XCTUnwrap(f.tensor("q6_k_2d"))
        XCTAssertEqual(q6.shape, [3, 512])
        XCTAssertEqual(q6.bitsPerWeight, 6.5625)
        XCTAssertEqual(q6.rowBytes, 420)
        XCTAssertNil(f.tensor("nope"))
    }

    func testSniffsTheMagic() {
        XCTAssertTrue(GGUFFile.isGGUF(path: TestFiles.fixture("gguf/all_types.gguf")))
        XCTAssertFalse(GGUFFile.isGGUF(path: TestFiles.fixture("safetensors/all_dtypes.safetensors")))
        XCTAssertFalse(GGUFFile.isGGUF(path: TestFiles.fixture("gguf")))
        XCTAssertFalse(GGUFFile.isGGUF(path: "/nonexistent.gguf"))
    }

    func testGGMLTypeSizesFollowGGML() {
        let sizes: [GGMLType: (Int, Int)] = [.F32: (1, 4), .F16: (1, 2), .BF16: (1, 2), .Q4_0: (32, 18), .Q4_1: (32, 20),
                                             .Q5_0: (32, 22), .Q5_1: (32, 24), .Q8_0: (32, 34), .Q8_1: (32, 36),
                                             .Q2_K: (256, 84), .Q3_K: (256, 110), .Q4_K: (256, 144), .Q5_K: (256, 176),
                                             .Q6_K: (256, 210), .Q8_K: (256, 292)]
        for (t, (block, bytes)) in sizes {
            XCTAssertEqual(t.blockSize, block, t.name)
            XCTAssertEqual(t.bytesPerBlock, bytes, t.name)
        }
        XCTAssertEqual(GGMLType.Q4_K.bitsPerWeight, 4.5)
        XCTAssertNil(GGMLType(rawValue: 4), "retired")
        XCTAssertEqual(GGMLType.dequantizable.map(\.name), ["F32", "F16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "BF16"])
    }

    // MARK: Hostile files

    func testTruncatedAtEveryHeaderByteFailsWithATypedError() throws {
        let full = Array(try Data(contentsOf: URL(fileURLWithPath: TestFiles.fixture("gguf/all_types.gguf"))))
        let f = try GGUFFile(path: TestFiles.fixture("gguf/all_types.gguf"))
        let lastTensorEnd = f.tensors.map { $0.offset + $0.byteCount }.max()!
        var kinds: [String: Int] = [:]
        for length in 0..<lastTensorEnd {
            let problem = GGUFTest.problem(Array(full[0..<length]))
            switch problem {
            case .truncated?: kinds["truncated", default: 0] += 1
            case .countTooLarge?: kinds["countTooLarge", default: 0] += 1
            case .pastEnd?: kinds["pastEnd", default: 0] += 1
                XCTAssertGreaterThan(length, f.dataStart - f.alignment, "past the infos: only the data is missing")
            default: XCTFail("length \(length): \(String(describing: problem))")
            }
        }
        XCTAssertEqual(kinds.values.reduce(0, +), lastTensorEnd)
        XCTAssertGreaterThan(kinds["truncated"] ?? 0, 1000)
        XCTAssertGreaterThan(kinds["pastEnd"] ?? 0, 6000)
        // A few bytes past the end of the last tensor (GGUFWriter pads the file) still open.
        XCTAssertNil(GGUFTest.problem(Array(full[0..<lastTensorEnd])))
    }

    func testHeaderRefusals() {
        var b = B()
        b.magic = Array("GGML".utf8)
        XCTAssertEqual(GGUFTest.problem(b.bytes), .notGGUF)
        XCTAssertEqual(GGUFTest.problem(Array("GG".utf8)), .truncated(field: "the magic", offset: 0, needed: 4, fileSize: 2))
        XCTAssertEqual(GGUFTest.problem(Array("{\"a\"".utf8)), .notGGUF)
        XCTAssertEqual(GGUFTest.problem([]), .truncated(field: "the magic", offset: 0, needed: 4, fileSize: 0))

        for v: UInt32 in [0, 1, 4, 0xFFFF_FFFF] {
            b = B()
            b.version = v
            XCTAssertEqual(GGUFTest.problem(b.bytes), .unsupportedVersion(v))
        }
        b = B()
        b.version = 3
        XCTAssertNil(GGUFTest.problem(b.bytes), "an empty v3 file is valid")
        b.version = UInt32(3).byteSwapped
        XCTAssertEqual(GGUFTest.problem(b.bytes), .bigEndian(version: UInt32(3).byteSwapped))
        let be = GGUFError(path: "m.gguf", problem: .bigEndian(version: UInt32(3).byteSwapped)).description
        XCTAssertTrue(be.contains("big-endian"), be)
        XCTAssertTrue(GGUFError(path: "m.gguf", problem: .unsupportedVersion(1)).description.contains("version 1 is obsolete"))
    }

    func testHugeCountsAndLengthsFailFastWithoutAllocating() {
        let huge: UInt64 = 1 << 60
        var b = B()
        b.tensorCountOverride = huge
        XCTAssertEqual(GGUFTest.problem(b.bytes), .countTooLarge(field: "the tensor count", offset: 8, count: huge, limit: 0))
        b = B()
        b.kvCountOverride = UInt64.max
        XCTAssertEqual(GGUFTest.problem(b.bytes), .countTooLarge(field: "the metadata count", offset: 16, count: UInt64.max, limit: 0))

        // A string length of 2^60.
        b = B()
        b.kv("k", type: 8, B.u64(huge) + Array("abc".utf8))
        guard case .truncated(let field, 45, huge, _)? = GGUFTest.problem(b.bytes) else { return XCTFail("string length") }
        XCTAssertEqual(field, "the string value of key k")
        // A key length of 2^64-1 (the needed-bytes arithmetic must not overflow).
        b = B()
        b.kv("", type: 4, B.u32(1))
        var bytes = b.headerBytes
        bytes.replaceSubrange(24..<32, with: B.u64(UInt64.max))
        XCTAssertEqual(GGUFTest.problem(bytes), .truncated(field: "metadata key 0", offset: 32, needed: UInt64.max, fileSize: bytes.count))

        // Array lengths of 2^60: of bytes, of strings, of arrays.
        for (elementType, name) in [(UInt32(0), "u8"), (8, "string"), (9, "array")] {
            b = B()
            b.kv("a", type: 9, B.u32(elementType) + B.u64(huge) + [1, 2, 3, 4])
            guard case .countTooLarge(let field, 41, huge, let limit)? = GGUFTest.problem(b.bytes) else {
                XCTFail("array of \(name)"); continue
            }
            XCTAssertEqual(field, "the array length of key a")
            XCTAssertLessThanOrEqual(limit, 15, "4 bytes and the padding remain")
        }
        // Length that fits the file only at 1 byte per element but the type needs 8.
        b = B()
        b.kv("a", type: 9, B.u32(10) + B.u64(16) + [UInt8](repeating: 0, count: 16))
        guard case .countTooLarge(_, _, 16, 2)? = GGUFTest.problem(b.headerBytes) else { return XCTFail("u64 array") }
    }

    func testMetadataRefusals() {
        var b = B()
        b.kv("t", type: 13, B.u32(0))
        XCTAssertEqual(GGUFTest.problem(b.bytes), .unknownValueType(key: "t", offset: 33, raw: 13))
        b = B()
        b.kv("a", type: 9, B.u32(99) + B.u64(0))
        XCTAssertEqual(GGUFTest.problem(b.bytes), .unknownValueType(key: "a", offset: 37, raw: 99))

        b = B()
        b.kv("x", type: 4, B.u32(1))
        b.kv("x", type: 4, B.u32(2))
        XCTAssertEqual(GGUFTest.problem(b.bytes), .duplicateKey(key: "x", offset: 41))

        b = B()
        b.kv(rawKey: [0x61, 0xFF], type: 4, B.u32(1))
        XCTAssertEqual(GGUFTest.problem(b.bytes), .invalidUTF8(field: "metadata key 0", offset: 24))
        b = B()
        b.kv("s", type: 8, B.string([0xED, 0xA0, 0x80]))  // a UTF-16 surrogate
        XCTAssertEqual(GGUFTest.problem(b.bytes), .invalidUTF8(field: "the string value of key s", offset: 37))
        b = B()
        b.kv("s", type: 9, B.u32(8) + B.u64(2) + B.string("ok") + B.string([0xC0, 0x80]))  // overlong NUL
        XCTAssertEqual(GGUFTest.problem(b.bytes), .invalidUTF8(field: "a string in the array of key s", offset: 59))

        b = B()
        b.kv("b", type: 7, [2])
        XCTAssertEqual(GGUFTest.problem(b.bytes), .badBool(key: "b", offset: 37, byte: 2))

        // Nesting: maxNesting arrays deep is fine, one more is refused.
        func nested(_ depth: Int) -> [UInt8] {
            depth == 1 ? B.u32(0) + B.u64(1) + [7] : B.u32(9) + B.u64(1) + nested(depth - 1)
        }
        b = B()
        b.kv("n", type: 9, nested(GGUFFile.maxNesting))
        XCTAssertNil(GGUFTest.problem(b.bytes))
        b = B()
        b.kv("n", type: 9, nested(GGUFFile.maxNesting + 1))
        guard case .nestingTooDeep(key: "n", _)? = GGUFTest.problem(b.bytes) else { return XCTFail("nesting") }
    }

    func testAlignmentRefusals() {
        for (type, payload) in [(UInt32(4), B.u32(0)), (4, B.u32(3)), (4, B.u32(48)), (4, B.u32(1 << 21)), (5, B.u32(UInt32(bitPattern: -32))),
                                (8, B.string("32")), (6, B.u32(Float(32).bitPattern))] {
            var b = B()
            b.kv("general.alignment", type: type, payload)
            guard case .badAlignment? = GGUFTest.problem(b.bytes) else { XCTFail("alignment \(payload)"); continue }
        }
        var b = B()
        b.kv("general.alignment", type: 10, B.u64(1))
        XCTAssertNil(GGUFTest.problem(b.bytes), "alignment 1 (any integer type) is allowed")
    }

    /// A file with one F32 tensor of `dims` elements per row at relative offset `offset`.
    func oneTensor(dims: [UInt64] = [8], type: UInt32 = 0, offset: UInt64 = 0, dataBytes: Int = 32) -> B {
        var b = B()
        b.tensor("w", dims: dims, type: type, offset: offset)
        b.data = [UInt8](repeating: 0, count: dataBytes)
        return b
    }

    func testTensorInfoRefusals() {
        XCTAssertNil(GGUFTest.problem(oneTensor().bytes))
        let infoAt = 24
        func bad(_ b: B, _ contains: String, line: UInt = #line) {
            guard case .badTensor("w", infoAt, let reason)? = GGUFTest.problem(b.bytes) else { return XCTFail("expected badTensor", line: line) }
            XCTAssertTrue(reason.contains(contains), reason, line: line)
        }
        bad(oneTensor(dims: []), "0 dimensions")
        bad(oneTensor(dims: [1, 1, 1, 1, 8]), "5 dimensions")
        bad(oneTensor(dims: [8, 0]), "dimension 1 is 0")
        bad(oneTensor(dims: [UInt64.max]), "dimension 0 is 18446744073709551615")
        bad(oneTensor(dims: [1 << 32, 1 << 32]), "multiply")
        bad(oneTensor(dims: [48], type: 2), "row length 48 is not a multiple of Q4_0's block size 32")
        bad(oneTensor(dims: [1 << 61, 4], type: 1), "dimensions")
        bad(oneTensor(dims: [1 << 62], type: 0), "take more bytes")

        var b = B()
        b.tensor(rawName: Array(String(repeating: "n", count: 65).utf8), dims: [8], type: 0, offset: 0)
        guard case .badTensor(_, 24, let reason)? = GGUFTest.problem(b.bytes) else { return XCTFail("long name") }
        XCTAssertTrue(reason.contains("65 bytes"), reason)
        b = B()
        b.tensor(rawName: [0x77, 0x80], dims: [8], type: 0, offset: 0)
        XCTAssertEqual(GGUFTest.problem(b.bytes), .invalidUTF8(field: "the name of tensor 0", offset: 24))

        for raw: UInt32 in [4, 5, 31, 36, 43, 1000] {
            XCTAssertEqual(GGUFTest.problem(oneTensor(type: raw).bytes), .unknownTensorType(tensor: "w", offset: 24 + 8 + 1 + 4 + 8, raw: raw))
        }

        b = B()
        b.tensor("w", dims: [8], type: 0, offset: 0)
        b.tensor("w", dims: [8], type: 0, offset: 32)
        b.data = [UInt8](repeating: 0, count: 64)
        XCTAssertEqual(GGUFTest.problem(b.bytes), .duplicateTensor(tensor: "w", offset: 24 + 33))
    }

    func testTensorPlacementRefusals() {
        // Header 24 + info 33 = 57 bytes, so the data section starts at 64.
        XCTAssertEqual(GGUFTest.problem(oneTensor(offset: 16).bytes), .misaligned(tensor: "w", offset: 16, alignment: 32))
        XCTAssertEqual(GGUFTest.problem(oneTensor(dataBytes: 31).bytes), .pastEnd(tensor: "w", start: 64, byteCount: 32, fileSize: 95))
        XCTAssertEqual(GGUFTest.problem(oneTensor(offset: 1 << 40).bytes), .pastEnd(tensor: "w", start: 64 + (1 << 40), byteCount: 32, fileSize: 96))
        let top = UInt64.max - 31
        XCTAssertEqual(GGUFTest.problem(oneTensor(offset: top).bytes), .pastEnd(tensor: "w", start: UInt64.max, byteCount: 32, fileSize: 96))

        var b = B()
        b.tensor("a", dims: [16], type: 0, offset: 0)    // data bytes 0..<64 (the section starts at 96)
        b.tensor("b", dims: [8], type: 0, offset: 32)    // data bytes 32..<64: inside a
        b.data = [UInt8](repeating: 0, count: 64)
        XCTAssertEqual(GGUFTest.problem(b.bytes), .overlap(tensor: "b", other: "a", offset: 96 + 32))
        b = B()
        b.tensor("late", dims: [8], type: 0, offset: 64)
        b.tensor("big", dims: [64], type: 0, offset: 0)  // 0..<256 covers late
        b.tensor("early", dims: [8], type: 0, offset: 256)
        b.data = [UInt8](repeating: 0, count: 288)
        XCTAssertEqual(GGUFTest.problem(b.bytes), .overlap(tensor: "late", other: "big", offset: 160 + 64))
        // Two tensors sharing an offset (a writer that forgot to advance).
        b = B()
        b.tensor("a", dims: [8], type: 0, offset: 0)
        b.tensor("b", dims: [8], type: 0, offset: 0)
        b.data = [UInt8](repeating: 0, count: 32)
        guard case .overlap? = GGUFTest.problem(b.bytes) else { return XCTFail("same offset") }

        // Alignment 64 from the metadata moves the data section and the offset rule.
        b = B()
        b.kv("general.alignment", type: 4, B.u32(64))
        b.tensor("w", dims: [8], type: 0, offset: 32)
        b.alignment = 64
        b.data = [UInt8](repeating: 0, count: 96)
        XCTAssertEqual(GGUFTest.problem(b.bytes), .misaligned(tensor: "w", offset: 32, alignment: 64))
    }
}
