/// The text `eqconvert` prints after a GGUF export: sizes, what each tensor became (counts
/// per route and type), the tensors with the largest errors, and the error against the
/// `.eqm`'s own values over the whole model.
public enum GGUFExportSummary {
    /// How many of the largest errors are listed.
    public static let listed = 5

    public static func text(_ r: GGUFExportReport, source: String) -> String {
        var byRoute: [String] = []
        for route in GGUFTensorPlan.Route.allCases {
            let tensors = r.tensors.filter { $0.route == route }
            guard !tensors.isEmpty else { continue }
            let types = Dictionary(grouping: tensors, by: \.type.name).map { "\($0.value.count) \($0.key)" }.sorted()
            byRoute.append("\(route.rawValue) \(tensors.count) (\(types.joined(separator: ", ")))")
        }
        var out = TextTable.keyValue([
            ("source", source),
            ("output", r.output + "  (GGUF v3, \(r.family), \(r.fileType.name))"),
            ("method", r.method),
            ("tensors", byRoute.joined(separator: "; ")),
            ("size", "\(Format.bytes(r.eqmBytes)) .eqm -> \(Format.bytes(r.ggufBytes)) .gguf"),
            ("bits per weight", r.tensors.contains(where: \.wasQuantized)
                ? Format.fixed(r.bitsPerQuantizedWeight, 3) + " (GGUF data of the tensors the .eqm quantized)" : "- (nothing was quantized)"),
            ("error vs .eqm", "max abs \(Format.scientific(r.maxAbsError)), RMS \(Format.scientific(r.rmsError)) (all weights)"),
        ])
        var largest = TextTable([.init("largest errors", .left), .init("type", .left), .init("max abs"), .init("RMS"), .init("how", .left)])
        for t in r.largestErrors(listed) {
            largest.add([t.name, t.type.name, Format.scientific(t.maxAbsError), Format.scientific(t.rmsError), t.summary])
        }
        out += largest.render()
        let changed = r.tensors.filter { $0.route == .requantized || $0.route == .dequantized }
        for t in changed.prefix(listed) { out += "changed: \(t.name): \(t.summary)\n" }
        if changed.count > listed { out += "changed: ... and \(changed.count - listed) more (--json lists every tensor)\n" }
        for note in r.notes { out += "note: \(note)\n" }
        return out
    }
}
