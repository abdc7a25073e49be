/// A family of decoder-only transformers (GPT-2, Llama, ...): how its checkpoints name
/// tensors, which way its matrices are stored, how its config reads, what feeds each linear
/// layer, and how to build the network.
///
/// Everything family-neutral (conversion, calibration, the methods, evaluation, generation,
/// the tools) works through this description and `CausalLanguageModel`; adding a family
/// means adding a folder under `Families/` with one type conforming to this protocol and
/// listing it in `ModelFamilies.all`.
public protocol ModelFamily: Sendable {
    /// The name used in messages and recorded in files ("gpt2", "llama").
    var name: String { get }
    /// `architectures` entries of a Hugging Face `config.json` this family runs.
    var huggingFaceArchitectures: [String] { get }
    /// `model_type` values of a Hugging Face `config.json`.
    var huggingFaceModelTypes: [String] { get }
    /// `general.architecture` values of GGUF files.
    var ggufArchitectures: [String] { get }

    /// The canonical name of a checkpoint tensor (prefixes normalised), or nil when the
    /// tensor is not a weight at all (a buffer such as GPT-2's causal mask).
    func canonicalName(_ fileName: String) -> String?
    /// Whether a checkpoint with these canonical names looks like this family (used when no
    /// config says which family it is).
    func recognises(_ canonicalNames: Set<String>) -> Bool
    /// The canonical name of tensor `name` of block `layer` (`name` as in `BlockStructure`).
    func blockTensorName(layer: Int, _ name: String) -> String
    /// The block's linear layers and what produces each of their inputs.
    func blockStructure(_ config: ModelConfig) -> BlockStructure
    /// The output-channel axis of canonical 2-D weight `name`: 1 for matrices stored
    /// [in, out] (GPT-2's Conv1D), 0 otherwise (PyTorch's Linear and embeddings, [out, in]).
    func outputAxis(of name: String) -> Int
    /// The hyperparameters, from `config.json` (nil when there is none) checked against the
    /// tensor shapes (canonical names). Validated (`ModelConfig.validate`).
    func config(json: JSONValue?, shapes: [String: [Int]], origin: String) throws -> ModelConfig
    /// Builds the network from `source`. Float matrices are quantized on load (absmax per
    /// output channel) when `quantizeDenseForInt8`, for running float checkpoints in int8.
    func makeModel(source: any WeightSource, config: ModelConfig, quantizeDenseForInt8: Bool) throws -> DecoderModel

    /// GGUF names: the llama.cpp name of each canonical tensor, both ways. Nil when the family
    /// has no GGUF naming.
    var ggufNames: GGUFNameTable? { get }
    /// A Hugging Face `config.json` equivalent of a GGUF file's metadata, which `config(json:shapes:)`
    /// then reads (and which an `.eqm` made from the file embeds). `shapes` are canonical.
    func huggingFaceConfig(gguf: GGUFFile, shapes: [String: [Int]]) throws -> JSONValue
    /// How canonical tensor `name` is laid out in GGUF files, relative to the canonical layout.
    func ggufLayout(of name: String, config: ModelConfig) -> GGUFLayoutChange
    /// The GGUF metadata that describes the architecture (`general.architecture` and the
    /// `<arch>.*` keys llama.cpp's loader reads) for a model of `config`. Throws when the
    /// family has no GGUF form.
    func ggufMetadata(config: ModelConfig) throws -> [(key: String, value: GGUFValue)]
}

extension ModelFamily {
    public func huggingFaceConfig(gguf: GGUFFile, shapes: [String: [Int]]) throws -> JSONValue {
        throw ModelError.unsupported(origin: gguf.path, reason: "reading \(name) models from GGUF is not supported; give the Hugging Face checkpoint")
    }
    public func ggufLayout(of name: String, config: ModelConfig) -> GGUFLayoutChange { .none }
    public func ggufMetadata(config: ModelConfig) throws -> [(key: String, value: GGUFValue)] {
        throw ModelError.unsupported(origin: name, reason: "the \(name) family has no GGUF architecture metadata; it cannot be written as GGUF")
    }
}

/// How a tensor's GGUF layout differs from the canonical (Hugging Face) one.
public enum GGUFLayoutChange: Sendable, Equatable {
    case none
    /// Stored [in, out] here, [out, in] in GGUF (GPT-2's Conv1D weights).
    case transposed
    /// Rows of each of `heads` heads reordered for llama.cpp's rotary layout: GGUF row
    /// h·d + 2i + j holds canonical row h·d + j·d/2 + i (pairs (i, i + d/2) made adjacent).
    case interleavedRotary(heads: Int)
}

/// The four places in a decoder block where linear layers read their input. Activation
/// statistics, LLM.int8's outlier features, SmoothQuant and AWQ all work per site: linears
/// that share a site read the same activations.
public enum InputSite: String, CaseIterable, Sendable, Comparable {
    /// The normalised residual entering attention (→ q, k, v).
    case attentionInput = "attn_in"
    /// Attention's output (→ the output projection).
    case attentionOutput = "attn_out"
    /// The normalised residual entering the MLP (→ up, and gate).
    case mlpInput = "mlp_in"
    /// The MLP's hidden activation (→ the down projection).
    case mlpHidden = "mlp_hidden"

    public static func < (a: InputSite, b: InputSite) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// One linear layer of a block.
public struct BlockLinear: Hashable, Sendable, CustomStringConvertible {
    /// The name inside the block, without `.weight` ("attn.c_attn", "self_attn.q_proj").
    public let name: String
    /// Where its input comes from.
    public let site: InputSite
    /// True when stored [in, out] (GPT-2's Conv1D); PyTorch's Linear stores [out, in].
    public let inputMajor: Bool
    /// Whether the layer has a bias.
    public let hasBias: Bool

    public init(_ name: String, site: InputSite, inputMajor: Bool, hasBias: Bool) {
        self.name = name; self.site = site; self.inputMajor = inputMajor; self.hasBias = hasBias
    }

    public var weight: String { name + ".weight" }
    public var bias: String? { hasBias ? name + ".bias" : nil }
    public var description: String { name }
}

/// What computed an input site's activations, and so where a per-input-channel scale s can
/// be folded (x/s computed upstream, W·diag(s) in the consumers) without changing the function.
public enum SiteProducer: Sendable, Equatable {
    /// A normalisation's per-channel weight (and bias): dividing them by s divides its output by s.
    case norm(weight: String, bias: String?)
    /// Output channels `offset ..< offset + width` of another linear layer (its weight rows
    /// or columns and its bias): GPT-2's value columns of c_attn, Llama's up_proj.
    case linear(BlockLinear, offset: Int)
    /// Nothing linear to fold into (GELU's output; value heads shared by query groups).
    case none(reason: String)
}

/// The linear layers of one block and what produces each of their inputs.
public struct BlockStructure: Sendable {
    /// Every linear layer, in the order the forward pass runs them.
    public var linears: [BlockLinear]
    /// What produces each site's input.
    public var producers: [InputSite: SiteProducer]
    /// The normalisation tensors of the block (names inside the block), for tables.
    public var norms: [String]

    public init(linears: [BlockLinear], producers: [InputSite: SiteProducer], norms: [String]) {
        self.linears = linears; self.producers = producers; self.norms = norms
    }

    /// The linears that read `site`, in forward order.
    public func consumers(of site: InputSite) -> [BlockLinear] { linears.filter { $0.site == site } }
    /// The linear named `name`.
    public func linear(_ name: String) -> BlockLinear? { linears.first { $0.name == name } }
    /// The sites that have at least one consumer, in order.
    public var sites: [InputSite] { InputSite.allCases.filter { !consumers(of: $0).isEmpty } }
}

/// Canonical tensor names and llama.cpp's GGUF names, one row per tensor role, as
/// llama.cpp's own table (`llama-arch.cpp`) pairs them. `{L}` stands for the block number.
public struct GGUFNameTable: Sendable {
    public struct Row: Sendable {
        public var canonical: String
        public var gguf: String
        public init(_ canonical: String, _ gguf: String) { self.canonical = canonical; self.gguf = gguf }
    }
    public var rows: [Row]
    public init(_ rows: [Row]) { self.rows = rows }

    /// The canonical name of GGUF tensor `name`, or nil when no row matches.
    public func canonical(gguf name: String) -> String? { translate(name, from: \.gguf, to: \.canonical) }
    /// The GGUF name of canonical tensor `name`, or nil when no row matches.
    public func gguf(canonical name: String) -> String? { translate(name, from: \.canonical, to: \.gguf) }

    private func translate(_ name: String, from: KeyPath<Row, String>, to: KeyPath<Row, String>) -> String? {
        for row in rows {
            let pattern = row[keyPath: from]
            guard let marker = pattern.range(of: "{L}") else {
                if pattern == name { return row[keyPath: to] }
                continue
            }
            let head = pattern[..<marker.lowerBound], tail = pattern[marker.upperBound...]
            guard name.hasPrefix(head), name.hasSuffix(tail), name.count > head.count + tail.count else { continue }
            let digits = name.dropFirst(head.count).dropLast(tail.count)
            // Plain decimal block numbers only: "01", "+1" or "1e3" name no block.
            guard digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), digits == "0" || digits.first != "0",
                  digits.count <= 6 else { continue }
            return row[keyPath: to].replacingOccurrences(of: "{L}", with: String(digits))
        }
        return nil
    }
}
