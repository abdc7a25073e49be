/// The families EasyQuant runs, and how a checkpoint's family is recognised.
public enum ModelFamilies {
    /// Every family, in the order detection tries them.
    public static let all: [any ModelFamily] = [GPT2Family(), LlamaFamily()]

    /// The family named `name` ("gpt2", "llama").
    public static func named(_ name: String) -> (any ModelFamily)? {
        all.first { $0.name == name }
    }

    /// The family of a Hugging Face checkpoint: from `config.json`'s `architectures` or
    /// `model_type` when present, else from the tensor names.
    public static func detect(config: JSONValue?, fileNames: [String], origin: String) throws -> any ModelFamily {
        if let config {
            let architectures = config["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? []
            for a in architectures {
                if let f = all.first(where: { $0.huggingFaceArchitectures.contains(a) }) { return f }
            }
            if let type = config["model_type"]?.stringValue {
                if let f = all.first(where: { $0.huggingFaceModelTypes.contains(type) }) { return f }
                throw ModelError.unknownFamily(origin: origin, reason: "config.json says model_type \"\(type)\"" +
                    (architectures.isEmpty ? "" : " (\(architectures.joined(separator: ", ")))") + ", which EasyQuant does not run")
            }
            if let a = architectures.first {
                throw ModelError.unknownFamily(origin: origin, reason: "config.json names architecture \(a), which EasyQuant does not run")
            }
        }
        for f in all {
            let names = Set(fileNames.compactMap { f.canonicalName($0) })
            if f.recognises(names) { return f }
        }
        throw ModelError.unknownFamily(origin: origin, reason: "neither config.json nor the tensor names say which model family this is")
    }

    /// A tensor name with the optional prefixes of every family removed (GPT-2's
    /// `transformer.`), for matching tensors of two files that spell names differently.
    public static func matchingName(_ name: String) -> String {
        name.hasPrefix(GPT2Family.prefix) ? String(name.dropFirst(GPT2Family.prefix.count)) : name
    }

    /// The family of a GGUF file, from `general.architecture`.
    public static func detect(ggufArchitecture: String?, origin: String) throws -> any ModelFamily {
        guard let ggufArchitecture else {
            throw ModelError.unknownFamily(origin: origin, reason: "the GGUF metadata has no general.architecture")
        }
        guard let f = all.first(where: { $0.ggufArchitectures.contains(ggufArchitecture) }) else {
            throw ModelError.unknownFamily(origin: origin, reason: "GGUF architecture \"\(ggufArchitecture)\" is not one EasyQuant runs")
        }
        return f
    }
}
