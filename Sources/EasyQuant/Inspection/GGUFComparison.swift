import Foundation

/// How far a GGUF file's weights are from an `.eqm`'s, tensor by tensor (`eqinspect
/// file.gguf --compare model.eqm`): GGUF tensors are renamed to the family's canonical names
/// and brought back to the canonical layout (`GGUFWeightSource`), the `.eqm`'s are
/// dequantized with LLM.int8's outlier features restored, and the two are compared element
/// by element in Double.
public struct GGUFComparison: Sendable {
    /// One tensor of the `.eqm` and its GGUF counterpart.
    public struct Row: Sendable {
        /// The `.eqm`'s (canonical) name, and llama.cpp's.
        public var name: String
        public var ggufName: String
        public var type: GGMLType
        public var shape: [Int]
        public var maxAbsError: Double
        public var rmsError: Double
        /// RMS of the `.eqm`'s values, to read the error against.
        public var referenceRMS: Double
        /// Whether the GGUF values equal the `.eqm`'s bit for bit.
        public var identical: Bool { maxAbsError == 0 }
    }

    public var gguf: String
    public var eqm: String
    public var rows: [Row]
    /// `.eqm` weights the GGUF file lacks, and GGUF tensors no `.eqm` weight matches.
    public var missingInGGUF: [String]
    public var extraInGGUF: [String]

    /// Compares every weight of `eqm` with its counterpart in `gguf`.
    public init(gguf file: GGUFFile, eqm: EQMFile, threads: Int = Parallel.defaultThreads) throws {
        let ggufWeights = try GGUFWeightSource(file: file, threads: threads)
        let eqmWeights = try EQMWeightSource(file: eqm)
        guard ggufWeights.family.name == eqmWeights.family.name else {
            throw ModelError.unsupported(origin: file.path, reason: "it holds a \(ggufWeights.family.name) model but \(eqm.path) a \(eqmWeights.family.name) one; compare files of the same model")
        }
        let family = eqmWeights.family
        let table = family.ggufNames!
        gguf = file.path
        self.eqm = eqm.path
        var rows: [Row] = [], missing: [String] = [], matched = Set<String>()
        for record in eqm.tensors where !record.name.hasPrefix(ExtraTensor.prefix) {
            guard let canonical = family.canonicalName(record.name) else { continue }
            guard let ggufName = table.gguf(canonical: canonical), let info = file.tensor(ggufName) else {
                missing.append(record.name)
                continue
            }
            matched.insert(ggufName)
            var want = try eqm.floats(record)
            if let outliers = try eqmWeights.outliers(canonical), record.shape.count == 2 {
                let outputIsRows = family.outputAxis(of: canonical) == 0
                try outliers.check(inFeatures: record.shape[outputIsRows ? 1 : 0], outFeatures: record.shape[outputIsRows ? 0 : 1],
                                   origin: eqm.path, name: canonical)
                want = outliers.restored(into: want, outputIsRows: outputIsRows)
            }
            let got = try ggufWeights.floats(canonical)
            guard got.count == want.count, ggufWeights.shapes[canonical] == record.shape else {
                throw ModelError.badShape(origin: file.path, name: ggufName, shape: ggufWeights.shapes[canonical] ?? info.shape, expected: record.shape)
            }
            var maxAbs = 0.0, squares = 0.0, reference = 0.0
            for i in 0..<got.count {
                let e = abs(Double(got[i]) - Double(want[i]))
                maxAbs = max(maxAbs, e)
                squares += e * e
                reference += Double(want[i]) * Double(want[i])
            }
            let n = Double(max(1, got.count))
            rows.append(Row(name: record.name, ggufName: ggufName, type: info.type, shape: record.shape, maxAbsError: maxAbs,
                            rmsError: (squares / n).squareRoot(), referenceRMS: (reference / n).squareRoot()))
        }
        self.rows = rows
        missingInGGUF = missing
        extraInGGUF = file.tensors.map(\.name).filter { !matched.contains($0) }
    }

    public var maxAbsError: Double { rows.map(\.maxAbsError).max() ?? 0 }

    public var text: String {
        var table = TextTable([.init("tensor", .left), .init("gguf name", .left), .init("type", .left), .init("max abs"),
                               .init("RMS"), .init("RMS / RMS(w)")])
        for r in rows {
            table.add([r.name, r.ggufName, r.type.name, Format.scientific(r.maxAbsError), Format.scientific(r.rmsError),
                       r.referenceRMS == 0 ? "-" : Format.scientific(r.rmsError / r.referenceRMS)])
        }
        let identical = rows.filter(\.identical).count
        var out = "\(gguf) against \(eqm) (canonical layout, LLM.int8 outliers restored)\n" + table.render()
        out += "\(rows.count) tensors compared: \(identical) identical, largest difference \(Format.scientific(maxAbsError))\n"
        if !missingInGGUF.isEmpty { out += "missing in the GGUF file: \(missingInGGUF.joined(separator: ", "))\n" }
        if !extraInGGUF.isEmpty { out += "in the GGUF file only: \(extraInGGUF.joined(separator: ", "))\n" }
        return out
    }

    public var json: JSONValue {
        .makeObject([
            ("gguf", .string(gguf)), ("eqm", .string(eqm)), ("max_abs_error", .double(maxAbsError)),
            ("tensors", .array(rows.map { r in
                .makeObject([("name", .string(r.name)), ("gguf_name", .string(r.ggufName)), ("type", .string(r.type.name)),
                             ("shape", JSONValue(r.shape)), ("max_abs_error", .double(r.maxAbsError)), ("rms_error", .double(r.rmsError)),
                             ("reference_rms", .double(r.referenceRMS))])
            })),
            ("missing_in_gguf", .array(missingInGGUF.map { .string($0) })), ("extra_in_gguf", .array(extraInGGUF.map { .string($0) })),
        ])
    }
}
