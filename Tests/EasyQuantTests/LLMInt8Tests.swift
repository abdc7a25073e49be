import EasyQuant
import XCTest

/// LLM.int8(): the mixed-precision decomposition in `Linear`, the outlier selection, the
/// stored form, and the method end to end on the tiny fixture.
final class LLMInt8Tests: XCTestCase {
    let (m, k, n) = (37, 48, 40)
    let outlierIndices = [3, 17, 30, 47]

    /// A weight [k, n] and its outlier part; the main matrix holds garbage in the outlier rows,
    /// which the decomposition must ignore.
    func decomposed(_ w: [Float]) -> (main: [Float], part: OutlierFeatures) {
        var main = w
        var rows: [Float] = []
        for j in outlierIndices {
            rows += w[(j * n)..<((j + 1) * n)]
            for c in 0..<n { main[j * n + c] = 1000 + Float(c) }
        }
        return (main, OutlierFeatures(indices: outlierIndices, weight: rows, outFeatures: n))
    }

    func testDecompositionIsExactInF32() {
        var rng = SeededFloats(seed: 1)
        let w = rng.normal(k * n, std: 0.2), x = rng.normal(m * k), bias = rng.normal(n)
        let dense = Linear(weight: .dense(DenseWeight(rows: k, columns: n, values: w)), outputIsRows: false, bias: bias)
        let (main, part) = decomposed(w)
        let split = Linear(weight: .dense(DenseWeight(rows: k, columns: n, values: main)), outputIsRows: false, bias: bias, outliers: part)
        let reference = apply(dense, x, rows: m, mode: .f32)
        let result = apply(split, x, rows: m, mode: .f32)
        XCTAssertLessThan(zip(result, reference).map { abs($0 - $1) }.max()!, 1e-5)

        // A quantized main weight: its outlier rows are replaced by the exact f32 rows.
        let zeroed = LLMInt8Tests.zeroRows(w, outlierIndices, columns: n)
        let q = try! zeroed.withUnsafeBufferPointer { try AbsMax().quantize($0, layout: BlockLayout(shape: [k, n], axis: 1, granularity: .channel)) }
        var expected = q.dequantized()
        for j in outlierIndices { for c in 0..<n { expected[j * n + c] = w[j * n + c] } }
        let quantized = Linear(weight: .quantized(QuantizedWeight(q)), outputIsRows: false, bias: bias, outliers: part)
        let reference2 = apply(Linear(weight: .dense(DenseWeight(rows: k, columns: n, values: expected)), outputIsRows: false, bias: bias), x, rows: m, mode: .f32)
        XCTAssertLessThan(zip(apply(quantized, x, rows: m, mode: .f32), reference2).map { abs($0 - $1) }.max()!, 1e-5)
    }

    /// In int8 mode the outlier columns do not set the per-token activation scale: with two
    /// features 40× larger than the rest, the decomposed layer stays close to the f32 product,
    /// while plain per-token int8 loses most of the small features' precision.
    func testInt8ModeComputesOutlierFeaturesInF32() throws {
        var rng = SeededFloats(seed: 2)
        let w = rng.normal(k * n, std: 0.2)
        var x = rng.normal(m * k)
        for i in 0..<m { x[i * k + 17] = 40 * (i % 2 == 0 ? 1 : -1); x[i * k + 30] = -35 }
        let reference = apply(Linear(weight: .dense(DenseWeight(rows: k, columns: n, values: w)), outputIsRows: false, bias: nil), x, rows: m, mode: .f32)
        let layout = BlockLayout(shape: [k, n], axis: 1, granularity: .channel)

        let plainQ = try w.withUnsafeBufferPointer { try AbsMax().quantize($0, layout: layout) }
        let plain = apply(Linear(weight: .quantized(QuantizedWeight(plainQ)), outputIsRows: false, bias: nil), x, rows: m, mode: .int8)

        let (_, part) = decomposed(w)
        let zeroed = LLMInt8Tests.zeroRows(w, outlierIndices, columns: n)
        let splitQ = try zeroed.withUnsafeBufferPointer { try AbsMax().quantize($0, layout: layout) }
        let split = apply(Linear(weight: .quantized(QuantizedWeight(splitQ)), outputIsRows: false, bias: nil, outliers: part), x, rows: m, mode: .int8)

        // The large features alone carry most of the output; measure the error on the rest.
        let small = apply(Linear(weight: .dense(DenseWeight(rows: k, columns: n, values: zeroed)), outputIsRows: false, bias: nil), x, rows: m, mode: .f32)
        let smallNorm = small.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        func error(_ y: [Float]) -> Double { zip(y, reference).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot() / smallNorm }
        let (splitError, plainError) = (error(split), error(plain))
        XCTAssertLessThan(splitError, 0.02, "decomposed int8 layer vs f32")
        XCTAssertGreaterThan(plainError, 3 * splitError, "plain int8 should lose far more (\(plainError) vs \(splitError))")
    }

    func testOutlierSelectionOnAHandMadeStatistic() throws {
        XCTAssertEqual(LLMInt8Decomposition.selectOutliers(absMax: [0.5, 7, 6, 6.01, -1, 12], threshold: 6), [1, 3, 5])
        XCTAssertEqual(LLMInt8Decomposition.selectOutliers(absMax: [1, 2, 3], threshold: 6), [])

        // One block, E = 8; statistics made by hand through the observer interface.
        let config = GPT2Family.config(vocabSize: 16, contextLength: 8, embeddingSize: 8, layerCount: 1, headCount: 2)
        let source = RandomGPT2Source(config: config, seed: 5)
        let stats = ActivationStatistics(layers: 1)
        let peaks: [InputSite: [Int: Float]] = [.attentionInput: [2: 9, 5: -6.5], .attentionOutput: [:],
                                                .mlpInput: [0: 6, 7: 100], .mlpHidden: [31: 7]]
        for site in InputSite.allCases {
            let width = site == .mlpHidden ? 32 : 8
            var x = [Float](repeating: 0.25, count: 3 * width)
            for (j, v) in peaks[site]! { x[width + j] = v }   // the peak in the second token only
            x.withUnsafeBufferPointer { stats.linearInput(layer: 0, site, $0, tokens: 3) }
        }
        let llm = try LLMInt8Decomposition(source: source, statistics: stats, config: config, threshold: 6)
        XCTAssertEqual(llm.outlierFeatures[0][.attentionInput], [2, 5])
        XCTAssertEqual(llm.outlierFeatures[0][.attentionOutput], [])
        XCTAssertEqual(llm.outlierFeatures[0][.mlpInput], [7], "6 itself does not exceed the threshold")
        XCTAssertEqual(llm.outlierFeatures[0][.mlpHidden], [31])

        // What is stored: outlier rows zeroed in the weight, cut out exactly into the extra tensors.
        let name = "h.0.attn.c_attn.weight"
        let w = try source.floats(name), cols = 3 * 8
        let transformed = llm.transform(name, w)
        XCTAssertFalse(llm.changes("h.0.attn.c_proj.weight"))
        for j in 0..<8 { for c in 0..<cols { XCTAssertEqual(transformed[j * cols + c], [2, 5].contains(j) ? 0 : w[j * cols + c]) } }
        let extras = Dictionary(uniqueKeysWithValues: llm.extraTensors.map { ($0.name, $0) })
        let names = OutlierFeatures.tensorNames(for: name)
        XCTAssertEqual(names.index, "eqm.outliers.h.0.attn.c_attn.index")
        XCTAssertEqual(extras[names.index]?.values, [2, 5])
        XCTAssertEqual(extras[names.weight]?.shape, [2, cols])
        XCTAssertEqual(extras[names.weight]?.values, Array(w[(2 * cols)..<(3 * cols)] + w[(5 * cols)..<(6 * cols)]))

        // In memory: the quantized weight has zero codes in the outlier rows and absmax scales
        // over the inlier rows only; the source hands the model the outlier part.
        var options = ConversionOptions(method: "absmax")
        options.preparation = llm
        options.compute = .int8
        let memory = try QuantizingWeightSource(base: source, options: options)
        XCTAssertTrue(memory.prefersInt8Compute)
        let q = try XCTUnwrap(try memory.quantized(name))
        for c in 0..<cols {
            let inlierMax = (0..<8).filter { ![2, 5].contains($0) }.map { abs(w[$0 * cols + c]) }.max()!
            XCTAssertEqual(q.scales[c], inlierMax / 127, accuracy: 1e-7)
            XCTAssertEqual(q.code(at: 2 * cols + c), 0)
            XCTAssertEqual(q.code(at: 5 * cols + c), 0)
        }
        let part = try XCTUnwrap(try memory.outliers(name))
        XCTAssertEqual(part.indices, [2, 5])
        XCTAssertEqual(part.weight, extras[names.weight]?.values)
        XCTAssertNil(try memory.outliers("h.0.attn.c_proj.weight"))
        XCTAssertNil(try source.outliers(name), "a plain source has no outlier part")
    }

    /// The fixture has no feature above 6 in any block (max |x| ≤ 5.5 over the calibration
    /// windows), so at the default threshold LLM.int8 is plain vector-wise W8A8; at 3.5 many
    /// features are decomposed. Both run from the file and in memory with the same result,
    /// and stay within 0.5% of the f32 perplexity.
    func testFixtureEndToEnd() throws {
        guard let run = try CalibratedFixture.run() else { throw XCTSkip("tiny-gpt2 fixture or calibration text absent") }
        let tokens = try CalibratedFixture.evaluationText(run)
        let f32 = try CalibratedFixture.perplexity(run.weights, tokens, mode: .f32)
        for threshold: Float in [6, 3.5] {
            let options = try CalibratedMethods.llmInt8(run, threshold: threshold, base: ConversionOptions(threads: 2))
            let file = try CalibratedFixture.convert(options)
            XCTAssertTrue(file.prefersInt8Compute)
            let info = try XCTUnwrap(file.file.quantizationInfo)
            XCTAssertEqual(info["method"]?.stringValue, "llmint8")
            XCTAssertEqual(info["parameters"]?["threshold"]?.doubleValue, Double(threshold))
            let outlierTensors = file.shapes.keys.filter { $0.hasPrefix("eqm.outliers.") }
            if threshold == 6 { XCTAssertTrue(outlierTensors.isEmpty) } else { XCTAssertGreaterThan(outlierTensors.count, 4) }

            let fromFile = try CalibratedFixture.perplexity(file, tokens)
            let inMemory = try CalibratedFixture.perplexity(try QuantizingWeightSource(base: run.weights, options: options), tokens)
            XCTAssertTrue(fromFile.isFinite)
            XCTAssertEqual(fromFile, inMemory, accuracy: 1e-9 * fromFile, "file and in-memory source must compute the same model")
            XCTAssertLessThan(abs(fromFile / f32 - 1), 0.005, "threshold \(threshold): ppl \(fromFile) vs f32 \(f32)")

            // Written back as safetensors, the outlier rows return to their matrices: the
            // float model computes what the file computes in f32 mode.
            let exported = try TestFiles.temporaryDirectory()   // a folder: config.json goes beside the weights
            _ = try SafetensorsExporter().export(file.file, to: exported)
            let plainFloats = try SafetensorsWeightSource(model: SafetensorsModel(path: exported))
            if threshold != 6 {
                let structure = GPT2Family().blockStructure(run.config)
                let names = (0..<run.config.layerCount).flatMap { l in structure.linears.map { "h.\(l).\($0.weight)" } }
                let name = try XCTUnwrap(names.first { (try? file.outliers($0)) != nil })
                let part = try XCTUnwrap(try file.outliers(name))
                let original = try run.weights.floats(name), back = try plainFloats.floats(name)
                let n = part.outFeatures
                for j in part.indices { XCTAssertEqual(Array(back[(j * n)..<((j + 1) * n)]), Array(original[(j * n)..<((j + 1) * n)])) }
            }
            XCTAssertEqual(try CalibratedFixture.perplexity(plainFloats, tokens, mode: .f32), try CalibratedFixture.perplexity(file, tokens, mode: .f32),
                           accuracy: 1e-6 * f32)
        }
    }

    static func zeroRows(_ w: [Float], _ rows: [Int], columns n: Int) -> [Float] {
        var out = w
        for j in rows { for c in 0..<n { out[j * n + c] = 0 } }
        return out
    }
}
