import EasyQuant
import Foundation
import XCTest

/// Dequantization of GGUF tensors against `gguf.quants.dequantize` (the expected values that
/// scripts/make_gguf_fixtures.py stored beside each fixture), bit for bit.
final class GGUFDequantizationTests: XCTestCase {
    typealias B = GGUFBuilder

    func expectations(_ name: String) throws -> (GGUFFile, SafetensorsFile) {
        (try GGUFFile(path: TestFiles.fixture("gguf/\(name).gguf")),
         try SafetensorsFile(path: TestFiles.fixture("gguf/\(name).expected.safetensors")))
    }

    /// Compares bit patterns, so -0.0 against 0.0 or a different NaN would fail too.
    func assertBitsEqual(_ got: [Float], _ want: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        guard let i = zip(got, want).enumerated().first(where: { $0.element.0.bitPattern != $0.element.1.bitPattern })?.offset else { return }
        XCTFail("\(what): element \(i) is \(got[i]) (0x\(String(got[i].bitPattern, radix: 16))), expected \(want[i]) (0x\(String(want[i].bitPattern, radix: 16)))",
                file: file, line: line)
    }

    func testEveryTensorEqualsTheGGUFPackageBitForBit() throws {
        var types = Set<GGMLType>()
        for name in ["all_types", "v2_empty_arrays"] {
            let (f, expected) = try expectations(name)
            for t in f.tensors {
                let want = expected.floats(of: try XCTUnwrap(expected.info(t.name)))
                for threads in [1, 3] {
                    assertBitsEqual(try f.floats(of: t, threads: threads), want, "\(name) \(t.name) (\(t.type.name)), \(threads) threads")
                }
                types.insert(t.type)
            }
        }
        XCTAssertEqual(types, Set(GGMLType.dequantizable), "every dequantizable type is checked")
    }

    func testDequantizeRowsStreamsAnyRowRange() throws {
        let (f, expected) = try expectations("all_types")
        for t in f.tensors {
            let want = expected.floats(of: expected.info(t.name)!)
            let n = t.rowLength
            for rows in [0..<t.rowCount, (t.rowCount - 1)..<t.rowCount, 0..<0, (t.rowCount / 2)..<t.rowCount] {
                var out = [Float](repeating: .nan, count: rows.count * n + 1)
                try out.withUnsafeMutableBufferPointer { try f.dequantizeRows(t, rows, into: $0.baseAddress!) }
                assertBitsEqual(Array(out[0..<(rows.count * n)]), Array(want[(rows.lowerBound * n)..<(rows.upperBound * n)]), "\(t.name) rows \(rows)")
                XCTAssertTrue(out.last!.isNaN, "\(t.name): wrote past the rows asked for")
            }
        }
        let t = f.tensor("q4_k_2d")!
        var out = [Float](repeating: 0, count: 4 * 512)
        for rows in [2..<4, -1..<1, 4..<4] {
            XCTAssertThrowsError(try out.withUnsafeMutableBufferPointer { try f.dequantizeRows(t, rows, into: $0.baseAddress!) }) {
                XCTAssertEqual(($0 as? GGUFError)?.problem, .rowsOutOfRange(tensor: "q4_k_2d", rows: rows, rowCount: 3))
            }
        }
    }

    /// A file with one tensor of `type` whose data is `data`.
    func single(_ type: GGMLType, dims: [UInt64], data: [UInt8]) throws -> GGUFFile {
        var b = B()
        b.tensor("w", dims: dims, type: type.rawValue, offset: 0)
        b.data = data
        return try GGUFFile(file: MappedFile(bytes: b.bytes, name: "crafted.gguf"))
    }

    func problem(_ f: GGUFFile, _ t: GGUFTensorInfo? = nil) -> GGUFError.Problem? {
        do { _ = try f.floats(of: t ?? f.tensors[0], threads: 2); return nil } catch let e as GGUFError {
            XCTAssertTrue(e.description.hasPrefix("crafted.gguf: "), e.description)
            XCTAssertFalse(e.description.contains("\n"))
            return e.problem
        } catch { XCTFail("\(error)"); return nil }
    }

    func testUnsupportedTypesAreRefusedByName() throws {
        for type in GGMLType.allCases where !type.canDequantize {
            let f = try single(type, dims: [UInt64(type.blockSize)], data: [UInt8](repeating: 0, count: type.bytesPerBlock))
            XCTAssertEqual(f.tensors[0].byteCount, type.bytesPerBlock)
            XCTAssertEqual(problem(f), .unsupportedType(tensor: "w", type: type))
            let message = GGUFError(path: "m.gguf", problem: .unsupportedType(tensor: "w", type: type)).description
            XCTAssertTrue(message.contains("type \(type.name) cannot be dequantized"), message)
            XCTAssertEqual(f.bytes(of: f.tensors[0]).count, type.bytesPerBlock, "raw bytes are still served")
        }
    }

    func testNonFiniteScalesAreRefusedWithTheBlock() throws {
        let infinity: [UInt8] = [0x00, 0x7C], nan: [UInt8] = [0x00, 0x7E], one: [UInt8] = [0x00, 0x3C]
        // Q8_0, three blocks; the second has an infinite scale.
        var data = [UInt8]()
        for d in [one, infinity, one] { data += d + [UInt8](repeating: 1, count: 32) }
        XCTAssertEqual(problem(try single(.Q8_0, dims: [96], data: data)), .nonFinite(tensor: "w", block: 1, offset: 64 + 34))
        // Q4_1: a NaN minimum in the first block.
        data = one + nan + [UInt8](repeating: 0x11, count: 16)
        XCTAssertEqual(problem(try single(.Q4_1, dims: [32], data: data)), .nonFinite(tensor: "w", block: 0, offset: 64))
        // Q4_K, two rows of one block: dmin infinite in the second row's block.
        var block = one + one + [UInt8](repeating: 0x21, count: 140)
        data = block
        block.replaceSubrange(2..<4, with: infinity)
        data += block
        // Two dims make the info 8 bytes longer, so the data section starts at 96.
        XCTAssertEqual(problem(try single(.Q4_K, dims: [256, 2], data: data)), .nonFinite(tensor: "w", block: 1, offset: 96 + 144))
        // Q6_K's d sits at the end of its block.
        block = [UInt8](repeating: 0x5A, count: 208) + nan
        XCTAssertEqual(problem(try single(.Q6_K, dims: [256], data: block)), .nonFinite(tensor: "w", block: 0, offset: 64))
        // Plain floats: the value itself.
        data = B.u32(Float(1).bitPattern) + B.u32(Float(2).bitPattern) + B.u32(Float.infinity.bitPattern) + B.u32(0)
        XCTAssertEqual(problem(try single(.F32, dims: [4], data: data)), .nonFinite(tensor: "w", block: 2, offset: 64 + 8))
        data = one + one + one + nan
        XCTAssertEqual(problem(try single(.F16, dims: [2, 2], data: data)), .nonFinite(tensor: "w", block: 3, offset: 96 + 6))
        data = [0x80, 0x7F, 0, 0]  // BF16 +infinity, then 0
        XCTAssertEqual(problem(try single(.BF16, dims: [2], data: data)), .nonFinite(tensor: "w", block: 0, offset: 64))

        // With finite scales the extremes decode to finite values: 65504 × 127 for Q8_0.
        data = [0xFF, 0x7B] + [UInt8](repeating: 0x7F, count: 32)
        let values = try single(.Q8_0, dims: [32], data: data).floats(of: try single(.Q8_0, dims: [32], data: data).tensors[0], threads: 1)
        XCTAssertEqual(values, [Float](repeating: 65504 * 127, count: 32))
    }

    func testTensorInfosFromAnotherFileAreRefused() throws {
        let (f, _) = try expectations("all_types")
        let (other, _) = try expectations("v2_empty_arrays")
        let foreign = other.tensors[0]
        XCTAssertThrowsError(try f.floats(of: foreign, threads: 1)) {
            XCTAssertEqual(($0 as? GGUFError)?.problem, .noSuchTensor("v2.q8_0"))
        }
        XCTAssertEqual(f.bytes(of: foreign).count, 0)
        // Same name, different record: also refused, never read out of bounds.
        let mine = try XCTUnwrap(f.tensor("q8_0_2d"))
        let f2 = try single(.Q8_0, dims: [32], data: [0, 0x3C] + [UInt8](repeating: 0, count: 32))
        XCTAssertThrowsError(try f2.floats(of: mine, threads: 1))
    }
}
