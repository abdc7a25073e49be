/// What GPT-2's checkpoint names mean (Hugging Face layout, see docs/ARCHITECTURE.md).
///
/// Real checkpoints name tensors with or without a `transformer.` prefix, may or may not
/// carry `lm_head.weight` (tied to `wte`), and old ones carry `h.N.attn.bias` /
/// `h.N.attn.masked_bias` causal-mask buffers that are not weights at all.
public enum GPT2Names {
    public static let prefix = "transformer."

    /// The name without the `transformer.` prefix.
    public static func canonical(_ name: String) -> String {
        name.hasPrefix(prefix) ? String(name.dropFirst(prefix.count)) : name
    }

    /// Whether `name` is an attention mask buffer (`h.N.attn.bias` or `h.N.attn.masked_bias`).
    public static func isMaskBuffer(_ name: String) -> Bool {
        let parts = canonical(name).split(separator: ".")
        return parts.count == 4 && parts[0] == "h" && Int(parts[1]) != nil && parts[2] == "attn"
            && (parts[3] == "bias" || parts[3] == "masked_bias")
    }

    /// Whether `name` is a GPT-2 Conv1D weight, stored [in, out] (c_attn, c_proj, c_fc).
    public static func isConv1DWeight(_ name: String) -> Bool {
        let c = canonical(name)
        return c.hasPrefix("h.") && (c.hasSuffix(".attn.c_attn.weight") || c.hasSuffix(".attn.c_proj.weight")
            || c.hasSuffix(".mlp.c_fc.weight") || c.hasSuffix(".mlp.c_proj.weight"))
    }

    /// The output-channel axis of a 2-D weight: the last axis for Conv1D ([in, out]);
    /// axis 0 for embeddings (one row per token or position), `lm_head` and any other
    /// matrix (PyTorch's Linear stores [out, in]).
    public static func outputAxis(of name: String) -> Int {
        isConv1DWeight(name) ? 1 : 0
    }
}
