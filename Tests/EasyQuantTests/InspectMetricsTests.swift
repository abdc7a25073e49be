import EasyQuant
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// Statistics, code entropy, error metrics and histograms on small tensors whose answers
/// are worked out by hand.
final class InspectMetricsTests: XCTestCase {
    // MARK: TensorStatistics

    func testStatisticsHandComputed() {
        // mean 0; squared deviations 1 + 1 + 9 + 9 + 0 + 0 = 20 over 6 values.
        let s = TensorStatistics([1, -1, 3, -3, 0, -0.0])
        XCTAssertEqual(s.count, 6)
        XCTAssertEqual(s.minimum, -3)
        XCTAssertEqual(s.maximum, 3)
        XCTAssertEqual(s.mean, 0)
        XCTAssertEqual(s.variance, 20.0 / 6)
        XCTAssertEqual(s.standardDeviation, (20.0 / 6).squareRoot())
        XCTAssertEqual(s.absMax, 3)
        XCTAssertEqual(s.zeros, 2, "+0 and -0 are both exact zeros")
        XCTAssertEqual(s.zeroShare, 2.0 / 6)
    }

    func testStatisticsMergeEqualsTheWholeAndSkipsNonFinite() {
        // Halves with means 1 and -1: Chan's update gives 8 + 6 + (-2)²·3·3/6 = 20, exactly.
        var merged = TensorStatistics([1, -1, 3])
        merged.merge(TensorStatistics([-3, 0, 0, .nan, .infinity]))
        let whole = TensorStatistics([1, -1, 3, -3, 0, 0])
        XCTAssertEqual(merged.count, whole.count)
        XCTAssertEqual(merged.mean, whole.mean)
        XCTAssertEqual(merged.variance, whole.variance)
        XCTAssertEqual(merged.minimum, -3)
        XCTAssertEqual(merged.maximum, 3, "infinity is not the maximum")
        XCTAssertEqual(merged.nonFinite, 2)
        XCTAssertEqual(merged.zeros, 2)
        // An asymmetric case: [2, 4, 4, 4, 5, 5, 7, 9] has mean 5 and variance 4.
        let t = TensorStatistics([2, 4, 4, 4, 5, 5, 7, 9])
        XCTAssertEqual(t.mean, 5)
        XCTAssertEqual(t.standardDeviation, 2)
        XCTAssertEqual(t.absMax, 9)
    }

    func testEmptyStatisticsAreZeroNotNaN() {
        let s = TensorStatistics([])
        XCTAssertEqual(s.count, 0)
        XCTAssertEqual(s.mean, 0)
        XCTAssertEqual(s.standardDeviation, 0)
        XCTAssertEqual(s.absMax, 0)
        XCTAssertEqual(s.zeroShare, 0)
    }

    // MARK: CodeEntropy

    func entropy(bits: Int, signed: Bool, _ codes: [Int]) -> CodeEntropy {
        var e = CodeEntropy(bits: bits, isSigned: signed)
        for c in codes { e.add(code: c) }
        return e
    }

    func testEntropyOfKnownDistributions() {
        XCTAssertEqual(entropy(bits: 8, signed: true, [3, 3, -4, -4]).bitsPerCode, 1)
        XCTAssertEqual(entropy(bits: 8, signed: true, [0, 1, 2, 3, 0, 1, 2, 3]).bitsPerCode, 2)
        XCTAssertEqual(entropy(bits: 8, signed: true, [0, 1, 2, 3, 0, 1, 2, 3]).boundBytes, 2, "8 codes × 2 bits = 2 bytes")
        XCTAssertEqual(entropy(bits: 4, signed: false, [5, 5, 5]).bitsPerCode, 0)
        // p = 1/2, 1/4, 1/4: H = 0.5 + 0.5 + 0.5 = 1.5 bits.
        XCTAssertEqual(entropy(bits: 8, signed: false, [200, 200, 7, 9]).bitsPerCode, 1.5)
        XCTAssertEqual(CodeEntropy(bits: 8, isSigned: true).bitsPerCode, 0, "no codes, no entropy")
    }

    func testEntropyCountsUnpackedCodesOfAPackedTensor() throws {
        // AbsMax 4-bit codes [-7, -3, 0, 2, 7], stored as D9 20 07 (the last high nibble is padding).
        let q = try [Float](arrayLiteral: -7, -3, 0, 2, 7).withUnsafeBufferPointer {
            try AbsMax(bits: 4).quantize($0, layout: BlockLayout(shape: [1, 5], axis: 1, granularity: .tensor))
        }
        XCTAssertEqual(q.codes, [0xD9, 0x20, 0x07])
        let e = CodeEntropy(q)
        XCTAssertEqual(e.total, 5, "the padding nibble is not a code")
        XCTAssertEqual(e.count(of: 0), 1)
        XCTAssertEqual(e.count(of: -7), 1)
        XCTAssertEqual(e.count(of: 9), 0, "9 is not a signed 4-bit code")
        XCTAssertEqual(e.bitsPerCode, log2(5.0), accuracy: 1e-15)
        // absmax clamps to ±7 at 4 bits: two of the five codes sit at the limits.
        let limits = CodeEntropy.clampLimits(method: "absmax", bits: 4, isSigned: true)
        XCTAssertEqual(limits, -7...7)
        XCTAssertEqual(e.share(atEndsOf: limits), 0.4)
    }

    func testEntropyOfStoredBytesMatchesCountingOneByOne() {
        // Byte-wise counting (with its unrolled loop and packed nibbles) against add(code:).
        var rng = SeededGenerator(seed: 11)
        for (bits, signed) in [(8, true), (8, false), (4, false), (4, true), (6, true)] {
            let count = 1001
            let codes = (0..<count).map { _ -> Int in
                let r = Int(rng.next() % UInt64(1 << bits))
                return signed ? r - (1 << (bits - 1)) : r
            }
            let stored = CodePacking.pack(codes.map { UInt8(truncatingIfNeeded: $0) }, bits: bits)
            var fromBytes = CodeEntropy(bits: bits, isSigned: signed)
            stored.withUnsafeBufferPointer { fromBytes.addStored($0, count: count) }
            XCTAssertEqual(fromBytes, entropy(bits: bits, signed: signed, codes), "\(bits) bits signed \(signed)")
        }
    }

    func testClampLimitsFollowEachMethod() {
        XCTAssertEqual(CodeEntropy.clampLimits(method: "absmax", bits: 8, isSigned: true), -127...127)
        XCTAssertEqual(CodeEntropy.clampLimits(method: "symquant", bits: 8, isSigned: true), -128...127)
        XCTAssertEqual(CodeEntropy.clampLimits(method: "zeropoint", bits: 8, isSigned: true), -128...127)
        XCTAssertEqual(CodeEntropy.clampLimits(method: "simquant", bits: 4, isSigned: false), 0...15)
        XCTAssertEqual(CodeEntropy.clampLimits(method: "someday", bits: 6, isSigned: true), -32...31, "unknown: the stored range")
    }

    // MARK: ErrorMetrics

    func testErrorMetricsHandComputed() {
        // Errors 0, 0, 0, -1: MSE 1/4, Σx² = 30, Σx̂² = 39, Σx·x̂ = 34.
        let e = ErrorMetrics(original: [1, 2, 3, 4], reconstructed: [1, 2, 3, 5])
        XCTAssertEqual(e.count, 4)
        XCTAssertEqual(e.mse, 0.25)
        XCTAssertEqual(e.maxAbsError, 1)
        XCTAssertEqual(e.signalEnergy, 30)
        XCTAssertEqual(e.sqnrDB, 10 * log10(30.0))
        XCTAssertEqual(e.cosine, 34 / (30.0 * 39).squareRoot())
        // 10·log10(100/1) = 20 dB exactly.
        XCTAssertEqual(ErrorMetrics(original: [10, 0], reconstructed: [9, 0]).sqnrDB, 20)
    }

    func testExactAndDegenerateReconstructions() {
        let exact = ErrorMetrics(original: [1, -2], reconstructed: [1, -2])
        XCTAssertEqual(exact.mse, 0)
        XCTAssertEqual(exact.sqnrDB, .infinity)
        XCTAssertEqual(exact.cosine, 1)
        let zeros = ErrorMetrics(original: [0, 0], reconstructed: [0, 0])
        XCTAssertEqual(zeros.cosine, 1)
        XCTAssertEqual(ErrorMetrics(original: [0, 0], reconstructed: [1, 0]).cosine, 0)
        XCTAssertTrue(ErrorMetrics(original: [0, 0], reconstructed: [1, 0]).sqnrDB.isNaN)
        XCTAssertEqual(ErrorMetrics(original: [1, 1], reconstructed: [-1, -1]).cosine, -1)
    }

    func testModelWideSummaryWeightsByElementCount() {
        // Tensor a: 2 elements, errors 1 and 1, cosine 1 (same direction); tensor b: 6 exact elements.
        let a = ErrorMetrics(original: [1, 1], reconstructed: [2, 2])
        let b = ErrorMetrics(original: [1, 2, 3, 4, 5, 6], reconstructed: [1, 2, 3, 4, 5, 6])
        var s = ErrorSummary()
        s.add(a); s.add(b)
        XCTAssertEqual(s.tensors, 2)
        XCTAssertEqual(s.pooled.count, 8)
        XCTAssertEqual(s.pooled.mse, 2.0 / 8, "Σ squared errors / Σ elements = (2·1 + 6·0) / 8")
        XCTAssertEqual(s.pooled.maxAbsError, 1)
        XCTAssertEqual(s.pooled.sqnrDB, 10 * log10((2.0 + 91) / 2))
        XCTAssertEqual(a.cosine, 1, accuracy: 1e-15)
        XCTAssertEqual(s.cosine, (2 * a.cosine + 6 * 1) / 8)
    }

    // MARK: Histogram

    func testHistogramBinsAndOutliers() {
        var h = Histogram(lower: 0, upper: 4, bins: 4)
        h.add([0, 0.5, 1, 3.99, 4, -1, 5, .nan])
        XCTAssertEqual(h.counts, [2, 1, 0, 2], "upper bound goes into the last bin")
        XCTAssertEqual(h.below, 1)
        XCTAssertEqual(h.above, 1)
        XCTAssertEqual(h.nonFinite, 1)
        XCTAssertEqual(h.total, 8)
        XCTAssertEqual(h.share(ofBin: 0), 0.25)
        XCTAssertEqual(h.range(ofBin: 1).lower, 1)
        XCTAssertEqual(h.range(ofBin: 1).upper, 2)
        XCTAssertEqual(h.bin(of: 2.5), 2)
        XCTAssertNil(h.bin(of: 4.5))
    }

    func testConstantTensorGetsAWidenedRange() {
        var h = Histogram(lower: 2, upper: 2, bins: 3)
        XCTAssertEqual(h.lower, 1)
        XCTAssertEqual(h.upper, 3)
        h.add([2, 2])
        XCTAssertEqual(h.counts, [0, 2, 0])
        let zero = Histogram(lower: 0, upper: 0, bins: 2)
        XCTAssertEqual([zero.lower, zero.upper], [-0.5, 0.5])
    }

    func testTextHistogramIsAligned() {
        var h = Histogram(lower: -1, upper: 1, bins: 4)
        h.add([-0.9, -0.1, 0.1, 0.2, 0.3, 0.4, 0.9, 0.95])
        let lines = h.renderText(width: 20).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4)
        // Every bar starts and ends at the same column.
        let starts = lines.map { $0.distance(from: $0.startIndex, to: $0.firstIndex(of: "│")!) }
        let ends = lines.map { $0.distance(from: $0.startIndex, to: $0.lastIndex(of: "│")!) }
        XCTAssertEqual(Set(starts).count, 1)
        XCTAssertEqual(Set(ends).count, 1)
        XCTAssertEqual(ends[0] - starts[0], 21, "20 bar characters between the rules")
        // Counts 1, 1, 4, 2: the fullest bin fills the bar, the others in proportion (eighths).
        XCTAssertTrue(lines[2].contains("│" + String(repeating: "█", count: 20) + "│"), lines[2])
        XCTAssertTrue(lines[0].contains("│█████ "), lines[0])
        XCTAssertTrue(lines[2].hasSuffix(" 4   50.00%"), lines[2])
    }

    // MARK: SVG

    func testSVGIsWellFormedWithOnePathPerHistogram() throws {
        var a = Histogram(lower: -1, upper: 1, bins: 10), b = Histogram(lower: -1, upper: 1, bins: 10)
        a.add([-0.5, 0, 0.1, 0.7]); b.add([-0.5, 0, 0, 0.75])
        let panels = [
            SVGPlot.Panel(title: "wte.weight <&> \"q\"", series: [.init(label: "original", histogram: a), .init(label: "quantized", histogram: b)]),
            SVGPlot.Panel(title: "h.0.mlp.c_fc.weight", series: [.init(label: "original", histogram: b), .init(label: "quantized", histogram: a)]),
            SVGPlot.Panel(title: "empty", series: [.init(label: "original", histogram: Histogram(lower: 0, upper: 0, bins: 10)),
                                                   .init(label: "quantized", histogram: Histogram(lower: 0, upper: 0, bins: 10))]),
        ]
        let svg = SVGPlot(title: "Weights Comparison", panels: panels).render()
        let root = try XMLElementTree(svg)
        XCTAssertEqual(root.name, "svg")
        XCTAssertEqual(root.attributes["xmlns"], "http://www.w3.org/2000/svg")
        let paths = root.all("path")
        XCTAssertEqual(paths.filter { $0.attributes["class"] == "histogram" }.count, 6, "3 panels × 2 series")
        XCTAssertEqual(paths.filter { $0.attributes["data-series"] == "quantized" }.count, 3)
        let texts = root.all("text").map(\.text)
        XCTAssertTrue(texts.contains("Weights Comparison"))
        XCTAssertTrue(texts.contains("wte.weight <&> \"q\""), "titles are escaped and read back intact")
        XCTAssertTrue(texts.contains("original") && texts.contains("quantized"), "legend")
        XCTAssertTrue(texts.contains("weight value"), "x axis label")
        XCTAssertTrue(texts.contains("-0.5") && texts.contains("0.5"), "x ticks: \(texts)")
        // Every step outline starts and ends on the baseline: M x,y ... L x,y Z.
        for p in paths where p.attributes["class"] == "histogram" {
            let d = p.attributes["d"] ?? ""
            XCTAssertTrue(d.hasPrefix("M") && d.hasSuffix(" Z"), d)
            XCTAssertEqual(d.components(separatedBy: " L").count - 1, 2 * 10 + 1, "two points per bin and one back to the baseline")
        }
    }

    func testExtremeRangesStillRender() throws {
        // Values a damaged-but-valid file can decode to: huge, and tiny.
        for (lo, hi) in [(-3e30, 5e30), (1e-12, 3e-12), (-1.0, 1e25)] {
            var h = Histogram(lower: lo, upper: hi, bins: 8)
            h.add([Float(lo), Float(hi), Float((lo + hi) / 2)])
            let svg = SVGPlot(title: "t", panels: [.init(title: "x", series: [.init(label: "a", histogram: h)])]).render()
            let root = try XMLElementTree(svg)
            let ticks = root.all("text").map(\.text).filter { $0.contains("e+") || $0.contains("e-") }
            XCTAssertFalse(ticks.isEmpty, "extreme ticks in scientific notation: \(lo)...\(hi)")
        }
    }

    func testNiceTicks() {
        XCTAssertEqual(SVGPlot.ticks(-0.083, 0.076), [-0.05, 0, 0.05])
        let t = SVGPlot.ticks(0, 1)
        XCTAssertEqual(t.count, 6)
        for (x, want) in zip(t, [0, 0.2, 0.4, 0.6, 0.8, 1.0]) { XCTAssertEqual(x, want, accuracy: 1e-12) }
        XCTAssertEqual(SVGPlot.ticks(0, 27), [0, 5, 10, 15, 20, 25])
    }
}

/// A minimal XML tree from Foundation's XMLParser (XMLDocument is not in every Linux
/// Foundation build; the SAX parser is), which throws on any well-formedness error.
final class XMLElementTree: NSObject, XMLParserDelegate {
    let name: String
    let attributes: [String: String]
    var children: [XMLElementTree] = []
    var text = ""

    init(name: String, attributes: [String: String]) { self.name = name; self.attributes = attributes }

    struct ParseFailure: Error, CustomStringConvertible { var description: String }

    /// Parses a whole document and returns its root element.
    convenience init(_ xml: String) throws {
        let builder = Builder()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else {
            throw ParseFailure(description: "not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "no root") at line \(parser.lineNumber)")
        }
        self.init(name: root.name, attributes: root.attributes)
        children = root.children
        text = root.text
    }

    /// Every descendant element named `name`.
    func all(_ name: String) -> [XMLElementTree] {
        children.flatMap { ($0.name == name ? [$0] : []) + $0.all(name) }
    }

    final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLElementTree] = []
        var root: XMLElementTree?
        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            let e = XMLElementTree(name: elementName, attributes: attributeDict)
            stack.last?.children.append(e)
            if stack.isEmpty { root = e }
            stack.append(e)
        }
        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
            stack.removeLast()
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { stack.last?.text += string }
    }
}
