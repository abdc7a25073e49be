import EasyQuant
import Foundation
import XCTest

/// zstd can do no better than the order-0 entropy of the codes; the fixture's .eqm must stay
/// within 4% of that bound (codes at their entropy plus scales, zero points and float
/// tensors as stored), for every weight-only method at 8 bits and simquant at 4.
final class EntropyBoundTests: XCTestCase {
    func testFixtureFilesStayWithinFourPercentOfTheEntropyBound() throws {
        let source = try SafetensorsModel(path: TestFiles.fixture("tiny-gpt2"))
        for (method, bits) in [("absmax", 8), ("zeropoint", 8), ("symquant", 8), ("simquant", 8), ("simquant", 4)] {
            let sink = MemorySink()
            let options = ConversionOptions(method: method, bits: bits, embedTokenizer: false)
            _ = try ModelConverter(options: options).convert(source, into: EQMWriter(sink: sink), named: method)
            let file = try EQMFile(file: MappedFile(bytes: sink.bytes, name: method))
            let report = try ModelInspector().inspect(.eqm(file), path: method)
            XCTAssertLessThan(report.actualOverBound, 1.04, "\(method) \(bits)-bit: \(report.actualOverBound)")
        }
    }
}
