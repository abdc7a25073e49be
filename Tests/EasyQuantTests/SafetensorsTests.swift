import EasyQuant
import Foundation
import XCTest

final class SafetensorsTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = try TestFiles.temporaryDirectory()
    }
    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Writes `8-byte length + header + data` and returns the path.
    func file(header: String, data: [UInt8], lengthOverride: UInt64? = nil) throws -> String {
        var bytes: [UInt8] = []
        let h = Array(header.utf8)
        withUnsafeBytes(of: (lengthOverride ?? UInt64(h.count)).littleEndian) { bytes += $0 }
        bytes += h + data
        let path = dir + "/t\(UInt32.random(in: 0...UInt32.max)).safetensors"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func problem(_ path: String) -> SafetensorsError.Problem? {
        do { _ = try SafetensorsFile(path: path); return nil } catch let e as SafetensorsError {
            XCTAssertTrue(e.description.hasPrefix(path + ": "), "error names the file: \(e)")
            XCTAssertFalse(e.description.contains("\n"), "one line: \(e)")
            return e.problem
        } catch { XCTFail("unexpected error \(error)"); return nil }
    }

    func testReadsEveryDTypeWrittenByPythonSafetensors() throws {
        let f = try SafetensorsFile(path: TestFiles.fixture("safetensors/all_dtypes.safetensors"))
        let expected = try JSONValue.parse(Array(Data(contentsOf: URL(fileURLWithPath: TestFiles.fixture("safetensors/all_dtypes.json")))))
        XCTAssertEqual(Set(f.tensors.map(\.dtype)), Set(DType.allCases))
        guard let entries = expected["tensors"]?.objectMembers ?? expected.objectMembers else { return XCTFail("bad expectations file") }
        var checked = 0
        for (name, e) in entries {
            guard let info = f.info(name) else { XCTFail("missing \(name)"); continue }
            XCTAssertEqual(info.dtype.rawValue, e["dtype"]?.stringValue, name)
            XCTAssertEqual(info.shape, e["shape"]?.arrayValue?.compactMap(\.intValue), name)
            let want = e["values"]?.arrayValue?.map { v -> Double in
                if let b = v.boolValue { return b ? 1 : 0 }
                return v.doubleValue ?? .nan
            } ?? []
            let got = f.floats(of: info).map(Double.init)
            XCTAssertEqual(got.count, want.count, name)
            for (g, w) in zip(got, want) {
                // I64/F64 go through Float: compare at Float precision.
                XCTAssertEqual(g, Double(Float(w)), accuracy: abs(w) * 1e-7, name)
            }
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 10)
        XCTAssertFalse(f.metadata.isEmpty)
    }

    func testWriterOutputReadsBackAndIsPadded() throws {
        let path = dir + "/w.safetensors"
        let w = try SafetensorsWriter(path: path, entries: [
            .init(name: "b", dtype: .f32, shape: [2, 3]),
            .init(name: "a", dtype: .bf16, shape: [3]),
            .init(name: "c", dtype: .f16, shape: [0, 4]),
        ], metadata: [("format", "pt")])
        try w.write(floats: [1, 2, 3, 4, 5, 6.5])
        try w.write(floats: [1, -2, 0.5])
        try w.write(floats: [])
        try w.finish()
        let f = try SafetensorsFile(path: path)
        XCTAssertEqual(f.dataStart % 8, 0, "header padded to 8 bytes")
        XCTAssertEqual(f.tensors.map(\.name), ["b", "a", "c"], "written in the declared order")
        XCTAssertEqual(f.floats(of: f.info("b")!), [1, 2, 3, 4, 5, 6.5])
        XCTAssertEqual(f.floats(of: f.info("a")!), [1, -2, 0.5])
        XCTAssertEqual(f.info("c")!.shape, [0, 4])
        XCTAssertEqual(f.metadata.first?.value, "pt")
    }

    func testMalformedHeadersEachGiveTheirOwnError() throws {
        let ok = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertNil(problem(try file(header: ok, data: [UInt8](repeating: 0, count: 8))))

        XCTAssertEqual(problem(try file(header: "", data: [])), .headerNotObject)
        let tiny = dir + "/tiny.safetensors"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: tiny))
        XCTAssertEqual(problem(tiny), .fileTooSmall(3))
        XCTAssertEqual(problem(try file(header: ok, data: [], lengthOverride: 1 << 40)), .headerTooLarge(1 << 40))
        XCTAssertEqual(problem(try file(header: ok, data: [], lengthOverride: 500)), .headerPastEnd(500, fileSize: 8 + ok.utf8.count))
        guard case .headerJSON(let e)? = problem(try file(header: #"{"x": {"dtype": "F32",}}"#, data: [])) else { return XCTFail() }
        XCTAssertEqual(e.offset, 8 + 22, "JSON errors give the file's byte offset: the } after the comma")
        XCTAssertEqual(problem(try file(header: #"{"x":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])),
                       .unknownDType(tensor: "x", dtype: "F33"))
        XCTAssertEqual(problem(try file(header: #"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))),
                       .sizeMismatch(tensor: "x", dtype: .f32, shape: [3], expected: 12, span: 8))
        XCTAssertEqual(problem(try file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0])),
                       .pastEndOfData(tensor: "x", end: 8, dataSize: 4))
        XCTAssertEqual(problem(try file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                                        data: [UInt8](repeating: 0, count: 8))),
                       .overlap(tensor: "y", other: "x"))
        XCTAssertEqual(problem(try file(header: #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: [UInt8](repeating: 0, count: 8))),
                       .gap(tensor: "x", from: 0, to: 4))
        let short = #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        XCTAssertEqual(problem(try file(header: short, data: [UInt8](repeating: 0, count: 8))),
                       .trailingBytes(unused: 4, at: 8 + short.utf8.count + 4))
        XCTAssertEqual(problem(try file(header: #"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])),
                       .badEntry(tensor: "x", reason: "shape [-1] has a dimension that is not a non-negative integer"))
        XCTAssertEqual(problem(try file(header: #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, data: [0, 0, 0, 0])),
                       .badEntry(tensor: "x", reason: "data_offsets [8, 4] end before they begin"))
        XCTAssertEqual(problem(try file(header: #"{"x":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0])),
                       .badEntry(tensor: "x", reason: "\"data_offsets\" must be two non-negative integers"))
        XCTAssertEqual(problem(try file(header: #"{"__metadata__":{"a":1}}"#, data: [])), .metadataNotStrings)
        guard case .headerJSON(let dup)? = problem(try file(header: #"{"x":{},"x":{}}"#, data: [])) else { return XCTFail() }
        XCTAssertTrue(dup.reason.contains("duplicate key"))
        XCTAssertEqual(problem(try file(header: #"{"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])),
                       .badEntry(tensor: "x", reason: "shape [4611686018427387904, 4] has dimension 0 = 4611686018427387904, more than the 2147483648 a dimension may have"))
    }

    func testTruncatedFilesNeverCrash() throws {
        let source = try Data(contentsOf: URL(fileURLWithPath: TestFiles.fixture("safetensors/all_dtypes.safetensors")))
        for cut in stride(from: 0, to: source.count, by: max(1, source.count / 200)) {
            let path = dir + "/cut.safetensors"
            try source.prefix(cut).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try SafetensorsFile(path: path), "truncated at \(cut)")
        }
    }

    func testModelFolderWithShards() throws {
        let m = try SafetensorsModel(path: TestFiles.fixture("gpt2-variants/sharded"))
        XCTAssertGreaterThan(m.shards.count, 1)
        XCTAssertNotNil(m.config)
        let single = try SafetensorsModel(path: TestFiles.fixture("gpt2-variants/hf-save-pretrained"))
        XCTAssertEqual(Set(m.tensors.map(\.name)), Set(single.tensors.map(\.name)))
    }

    func testMissingShardIsNamed() throws {
        let folder = dir + "/broken"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try #"{"weight_map":{"wte.weight":"model-00001-of-00002.safetensors"}}"#.write(toFile: folder + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SafetensorsModel(path: folder)) {
            XCTAssertTrue("\($0)".contains("model-00001-of-00002.safetensors"), "\($0)")
        }
    }
}

/// Paths of committed fixtures and scratch folders for tests.
enum TestFiles {
    /// The repository root, found from this source file's path.
    static var root: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
    static func fixture(_ relative: String) -> String { root + "/fixtures/" + relative }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "eqtest-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
