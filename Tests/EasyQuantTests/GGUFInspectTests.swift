import EasyQuant
import Foundation
import XCTest

/// `eqinspect`'s view of a GGUF file, through `ModelInspector`.
final class GGUFInspectTests: XCTestCase {
    let path = TestFiles.fixture("gguf/all_types.gguf")

    func testReportHoldsHeaderMetadataTypesAndStatistics() throws {
        let report = try ModelInspector(options: InspectionOptions(statistics: true, threads: 2)).inspect(path: path)
        XCTAssertEqual(report.kind, .gguf)
        XCTAssertEqual(report.formatVersion, "3")
        XCTAssertEqual(report.architecture, "easyquant-test")
        XCTAssertEqual(report.gguf?.alignment, 32)
        XCTAssertEqual(report.gguf?.metadata.count, 33)
        XCTAssertEqual(report.tensors.count, 19)

        let expected = try SafetensorsFile(path: TestFiles.fixture("gguf/all_types.expected.safetensors"))
        for t in report.tensors {
            let want = TensorStatistics(expected.floats(of: try XCTUnwrap(expected.info(t.name))))
            let got = try XCTUnwrap(t.statistics, t.name)
            XCTAssertEqual(got.count, want.count, t.name)
            XCTAssertEqual(got.minimum, want.minimum, t.name)
            XCTAssertEqual(got.maximum, want.maximum, t.name)
            XCTAssertEqual(got.mean, want.mean, accuracy: abs(want.mean) * 1e-12, t.name)
            XCTAssertEqual(t.storage, t.ggmlType?.name)
        }
        let totals = report.totalsByType
        XCTAssertEqual(totals.map(\.type), ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
        XCTAssertEqual(totals.first { $0.type == "Q6_K" }?.elements, 3 * 512 + 2 * 2 * 256)
        XCTAssertEqual(totals.first { $0.type == "Q6_K" }?.bitsPerWeight, 6.5625)
        XCTAssertEqual(totals.reduce(0) { $0 + $1.bytes }, report.tensorBytes)

        let text = report.text()
        XCTAssertTrue(text.contains("GGUF v3, alignment 32"), text)
        XCTAssertTrue(text.contains("metadata (33 keys)"))
        XCTAssertTrue(text.contains("[i32 × 4] -2147483648, 2147483647, 0, 5"))
        XCTAssertTrue(text.contains("totals by type"))
        XCTAssertEqual(text.split(separator: "\n").filter { $0.hasPrefix("q6_k_2d ") }.count, 2, "storage and statistics rows")

        let json = report.json
        XCTAssertEqual(json["kind"]?.stringValue, "gguf")
        XCTAssertEqual(json["gguf"]?["metadata"]?.arrayValue?.first?["key"]?.stringValue, "general.architecture")
        let u64 = json["gguf"]?["metadata"]?.arrayValue?.first { $0["key"]?.stringValue == "test.u64" }
        XCTAssertEqual(u64?["value"]?.stringValue, "18446744073709551615", "a u64 past Int64.max stays exact")
        let tokens = json["gguf"]?["metadata"]?.arrayValue?.first { $0["key"]?.stringValue == "test.array_string" }
        XCTAssertEqual(tokens?["count"]?.intValue, 4)
        XCTAssertEqual(tokens?["element_type"]?.stringValue, "string")
        let tensors = json["tensors"]?.arrayValue ?? []
        XCTAssertEqual(tensors.first { $0["name"]?.stringValue == "q4_k_2d" }?["encoding"]?.stringValue, "quantized")
        XCTAssertEqual(tensors.first { $0["name"]?.stringValue == "bf16_2d" }?["encoding"]?.stringValue, "float")
        XCTAssertEqual(json["totals_by_type"]?.arrayValue?.count, 13)
    }

    func testStatisticsOfAnUnsupportedTypeAreRefusedByName() throws {
        var b = GGUFBuilder()
        b.tensor("iq", dims: [256], type: GGMLType.IQ2_XXS.rawValue, offset: 0)
        b.data = [UInt8](repeating: 0, count: GGMLType.IQ2_XXS.bytesPerBlock)
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/iq.gguf"
        try Data(b.bytes).write(to: URL(fileURLWithPath: file))
        XCTAssertEqual(try ModelInspector().inspect(path: file).tensors.first?.storage, "IQ2_XXS", "the table needs no values")
        XCTAssertThrowsError(try ModelInspector(options: InspectionOptions(statistics: true)).inspect(path: file)) {
            XCTAssertEqual(($0 as? GGUFError)?.problem, .unsupportedType(tensor: "iq", type: .IQ2_XXS))
        }
    }
}
