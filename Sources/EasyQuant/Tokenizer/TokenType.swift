/// What kind of token an id is, with GGUF's numbering (`tokenizer.ggml.token_type`).
///
/// The kind decides how text is matched and decoded:
/// * `normal` (and `byte`): made by BPE; decodes through the byte-level alphabet.
/// * `control` (and `unknown`): special tokens such as BOS, EOS or `<|im_end|>`. `encode`
///   matches their text only when asked (`allowSpecialTokens`); `decode` leaves them out unless
///   asked. Hugging Face's added tokens with `"special": true` are of this kind.
/// * `userDefined`: added tokens that are not special (HF `"special": false`, e.g. Qwen2's
///   `[PAD151646]`). As in llama.cpp and HF tokenizers, their text is always cut out of the
///   input and becomes the token, and they decode to their text.
/// * `unused`: never matched, decodes to nothing.
public enum TokenType: Int, Sendable, CaseIterable {
    case normal = 1
    case unknown = 2
    case control = 3
    case userDefined = 4
    case unused = 5
    case byte = 6

    /// Tokens whose text `encode` cuts out of the input even when special tokens are not allowed.
    var alwaysMatched: Bool { self == .userDefined }
    /// Tokens whose text `encode` cuts out of the input when special tokens are allowed.
    var matchedWhenAllowed: Bool { self == .control || self == .unknown || self == .userDefined }
    /// Tokens that decode to nothing unless special tokens are asked for.
    var hiddenInDecode: Bool { self == .control || self == .unknown }
    /// Tokens whose text is written with the byte-level alphabet.
    var isByteLevel: Bool { self == .normal || self == .byte }
}
