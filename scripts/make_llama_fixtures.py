#!/usr/bin/env python3
"""Tiny Llama-family fixtures with reference logits from transformers.

    /work/venv/bin/python scripts/make_llama_fixtures.py

Writes, from seeded random weights (no training):

  fixtures/tiny-llama/      LlamaForCausalLM saved with save_pretrained: hidden 64, 2 layers,
                            4 query heads sharing 2 kv heads (grouped-query attention),
                            intermediate 160, rope_theta 10000, tied embeddings; the tiny
                            GPT-2 fixture's 2048-token BPE as a tokenizer.json with SmolLM2's
                            pre-tokenizer (every digit alone, then GPT-2's byte-level split).
  fixtures/tiny-llama/tiny-llama-q4_1.gguf
                            the same model written with the `gguf` package as llama.cpp's
                            converter lays it out (q/k rows interleaved per head for its rotary
                            kernel, names from its llama table) in SmolLM2's mix of types:
                            token_embd Q8_0, block matrices Q4_1, norms F32; tokenizer metadata
                            with pre-tokenizer `smollm`.
  fixtures/tiny-qwen2/      Qwen2ForCausalLM: q/k/v biases, an untied lm_head, hidden 48,
                            6 heads over 2 kv heads; the same vocabulary with Qwen2's split.

and in each folder reference.json: fixed token ids, transformers' float32 logits at chosen
positions, and (for the GGUF) the logits transformers computes from the GGUF file itself,
which it loads by dequantizing and un-permuting with its own code. Norm weights are drawn
around 1 and matrices with std 0.15 so that the logits are far from uniform and a wrong
rotation, permutation or scale shows.
"""
import json
import os
import sys

import numpy as np
import torch

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fixtures = os.path.join(root, "fixtures")
gpt2_tok = os.path.join(fixtures, "tiny-gpt2")

IDS = [5, 1203, 77, 2046, 300, 9, 1500, 42, 17, 999, 640, 3, 2000, 128, 256, 511, 70, 1024, 8, 1999, 14, 600, 31, 12]
POSITIONS = [0, 5, 11, 23]
TEXT = "In 1998, the 42 ships sailed 3.5 miles; ½ of them returned. Don't panic!"


def tokenizer_json(pre):
    """A tokenizer.json over the tiny GPT-2 vocabulary with the given pre_tokenizer section."""
    from tokenizers import Tokenizer, decoders, models
    vocab = json.load(open(os.path.join(gpt2_tok, "vocab.json")))
    merges = [tuple(l.split(" ")) for l in open(os.path.join(gpt2_tok, "merges.txt"), encoding="utf-8").read().split("\n")[1:] if l]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.decoder = decoders.ByteLevel()
    data = json.loads(tok.to_str())
    data["pre_tokenizer"] = pre
    return data


def smollm_pre():
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}


def qwen2_pre():
    pattern = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and "norm" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def logits_at(model, ids):
    with torch.no_grad():
        out = model(torch.tensor([ids])).logits[0]
    return {str(p): [float(x) for x in out[p]] for p in POSITIONS}


def save_folder(model, folder, pre, bos_eos):
    from transformers import PreTrainedTokenizerFast
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tj = tokenizer_json(pre)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        json.dump(tj, f, ensure_ascii=False)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": False, "add_eos_token": False, "tokenizer_class": "PreTrainedTokenizerFast",
                   "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}, f, indent=2)
    for name in ["generation_config.json"]:
        p = os.path.join(folder, name)
        if os.path.exists(p):
            os.remove(p)
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"))
    return tok


def interleave_rotary(w, heads):
    """llama.cpp's layout of q/k rows: within each head, rows (i, i + d/2) become (2i, 2i+1)."""
    rows = w.shape[0]
    d = rows // heads
    return w.reshape(heads, 2, d // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, config, path, tok_folder):
    import gguf
    from gguf import GGMLQuantizationType as T
    vocab = json.load(open(os.path.join(gpt2_tok, "vocab.json")))
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    merges = [l for l in open(os.path.join(gpt2_tok, "merges.txt"), encoding="utf-8").read().split("\n")[1:] if l]
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-llama")
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(config.num_hidden_layers)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_head_count(config.num_attention_heads)
    w.add_head_count_kv(config.num_key_value_heads)
    w.add_rope_freq_base(getattr(config, "rope_parameters", None)["rope_theta"] if getattr(config, "rope_parameters", None) else config.rope_theta)
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    w.add_vocab_size(len(tokens))
    w.add_file_type(3)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3 if t == "<|endoftext|>" else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab["<|endoftext|>"])
    w.add_eos_token_id(vocab["<|endoftext|>"])
    w.add_add_bos_token(False)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    per_layer = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
                 "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
                 "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
                 "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
                 "mlp.down_proj.weight": "ffn_down.weight"}
    for l in range(config.num_hidden_layers):
        for k, v in per_layer.items():
            names[f"model.layers.{l}.{k}"] = f"blk.{l}.{v}"
    for name, p in model.state_dict().items():
        if name not in names:
            continue
        data = p.detach().float().numpy()
        if name.endswith("q_proj.weight"):
            data = interleave_rotary(data, config.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            data = interleave_rotary(data, config.num_key_value_heads)
        if data.ndim == 1:
            w.add_tensor(names[name], data.astype(np.float32))
            continue
        qtype = T.Q8_0 if name == "model.embed_tokens.weight" else T.Q4_1
        q = gguf.quants.quantize(data.astype(np.float32), qtype)
        w.add_tensor(names[name], q, raw_shape=q.shape, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    out = {}

    # Llama with grouped-query attention and tied embeddings.
    folder = os.path.join(fixtures, "tiny-llama")
    config = LlamaConfig(vocab_size=2048, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                         bos_token_id=2047, eos_token_id=2047)
    model = LlamaForCausalLM(config).eval()
    randomise(model, 1)
    tok = save_folder(model, folder, smollm_pre(), 2047)
    ref = {"ids": IDS, "positions": POSITIONS, "logits": logits_at(model, IDS),
           "text": TEXT, "text_ids": tok(TEXT)["input_ids"]}
    gguf_path = os.path.join(folder, "tiny-llama-q4_1.gguf")
    write_gguf(model, config, gguf_path, folder)
    g = AutoModelForCausalLM.from_pretrained(folder, gguf_file=os.path.basename(gguf_path), torch_dtype=torch.float32).eval()
    ref["gguf_logits"] = logits_at(g, IDS)
    # How far the quantized GGUF is from the f32 model (so the test's tolerance means something).
    a = np.array(ref["logits"]["23"]); b = np.array(ref["gguf_logits"]["23"])
    print(f"tiny-llama: GGUF Q4_1 vs f32 logits at position 23: max |diff| {np.abs(a - b).max():.4f}")
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(ref, f)

    # Qwen2: q/k/v biases, untied output layer.
    folder = os.path.join(fixtures, "tiny-qwen2")
    config = Qwen2Config(vocab_size=2048, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64,
                         rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=False,
                         bos_token_id=2047, eos_token_id=2047)
    model = Qwen2ForCausalLM(config).eval()
    randomise(model, 2)
    tok = save_folder(model, folder, qwen2_pre(), 2047)
    ref = {"ids": IDS, "positions": POSITIONS, "logits": logits_at(model, IDS),
           "text": TEXT, "text_ids": tok(TEXT)["input_ids"]}
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(ref, f)
    import transformers
    print(f"torch {torch.__version__}  transformers {transformers.__version__}")
    for f in ["tiny-llama", "tiny-qwen2"]:
        d = os.path.join(fixtures, f)
        print(f, sorted(os.listdir(d)), sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d)), "bytes")


if __name__ == "__main__":
    main()
