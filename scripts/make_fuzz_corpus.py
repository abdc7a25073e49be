#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (fuzz/corpus/TARGET/) from the fixtures.

Run by hand (takes a second; needs the `gguf` and `zstandard` packages):

    /work/venv/bin/python scripts/make_fuzz_corpus.py

Each target's folder is emptied and refilled, deterministically:
    safetensors  fixtures/safetensors/all_dtypes.safetensors, fixtures/golden/source, and the
                 tensor names of fixtures/gpt2-variants (each model's header with every tensor
                 shrunk to at most 2 elements, in F32, F16 and BF16), plus edge cases (no
                 tensors, metadata only, empty and 0-d tensors)
    eqm          fixtures/golden/*.eqm, and .eqm files written here from FORMAT.md alone: every
                 encoding (F32/F16/BF16 floats, 8-bit symmetric, 4-bit asymmetric groups,
                 per-tensor), empty and 0-d tensors, "requires", embedded tokenizer files
    json         every .json fixture up to 16 KB (one gpt2-variants reference.json), the headers of the safetensors and .eqm
                 seeds, and a few texts for escapes and numbers
    tokenizer    mode 0 (vocab.json NUL merges.txt) and 1 (tokenizer.json): a 300-token cut of
                 fixtures/tiny-gpt2's tokenizer (as tokenizer.json also under the pre-tokenizers
                 of fixtures/tiny-llama and tiny-qwen2); mode 2 (text for GPT-2's tokenizer):
                 slices of fixtures/calibration and fixtures/wikitext-2-raw, llama.cpp's tokenizer
                 test text (fixtures/vocab), and Unicode samples
    gguf         fixtures/gguf/*.gguf, fixtures/gguf-writer/written.gguf, and vocabulary-only files
                 (the 300-token cut, one per pre-tokenizer: gpt2, llama-bpe, qwen2, smollm) written
                 with the gguf package

The .eqm writer here is independent of the Swift one (scripts/eqm_reader.py reads both).
Total size stays well under 2 MB; each seed is at most the target's -max_len in scripts/fuzz.
"""

import glob
import hashlib
import json
import os
import shutil
import struct

import gguf
import zstandard

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "fuzz", "corpus")
EQM_MAGIC = b"\x89EQM\r\n\x1a\n"


def fixture(*parts):
    return os.path.join(REPO, "fixtures", *parts)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def put(target, name, data):
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------
# safetensors

def safetensors_bytes(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes), laid out in that order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_header(data):
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n])


def shrunk_model(path, dtype, size):
    """The model's tensor names and ranks, each tensor at most 2 elements of `dtype`."""
    header = safetensors_header(read(path))
    tensors = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = [min(d, 2) if i == 0 else min(d, 1) for i, d in enumerate(entry["shape"])]
        count = 1
        for d in shape:
            count *= d
        tensors.append((name, dtype, shape, bytes(range(count * size))))
    return safetensors_bytes(tensors, header.get("__metadata__"))


def make_safetensors():
    put("safetensors", "all_dtypes.safetensors", read(fixture("safetensors", "all_dtypes.safetensors")))
    put("safetensors", "golden-source.safetensors", read(fixture("golden", "source", "model.safetensors")))
    for variant, dtype, size in [("hf-save-pretrained", "F32", 4), ("hub-style", "F16", 2), ("lm-head-untied", "BF16", 2)]:
        put("safetensors", "shrunk-%s.safetensors" % variant,
            shrunk_model(fixture("gpt2-variants", variant, "model.safetensors"), dtype, size))
    put("safetensors", "shard-3-shrunk.safetensors",
        shrunk_model(fixture("gpt2-variants", "sharded", "model-00003-of-00003.safetensors"), "F32", 4))
    put("safetensors", "empty.safetensors", safetensors_bytes([]))
    put("safetensors", "metadata-only.safetensors", safetensors_bytes([], {"format": "pt", "note": "\u00e9\u4e2d"}))
    put("safetensors", "edge-shapes.safetensors", safetensors_bytes([
        ("scalar", "I32", [], struct.pack("<i", -7)),
        ("empty", "U8", [0, 3], b""),
        ("wide-empty", "F32", [2147483648, 0], b""),
        ("f64", "F64", [2], struct.pack("<2d", float("inf"), -0.0)),
        ("bool", "BOOL", [2, 2], bytes([1, 0, 0, 1])),
        ("i64", "I64", [1], struct.pack("<q", -(2 ** 63))),
    ]))


# ---------------------------------------------------------------------------------------------
# .eqm, written from docs/FORMAT.md

class EQMWriter:
    def __init__(self, alignment=64):
        self.alignment = alignment
        self.body = bytearray(32)
        self.tensors = []

    def blob(self, raw, checksum=True):
        self.body += b"\0" * (-len(self.body) % self.alignment)
        cctx = zstandard.ZstdCompressor(level=3, write_checksum=checksum, write_content_size=True)
        frame = cctx.compress(raw)
        offset = len(self.body)
        self.body += frame
        return {"offset": offset, "length": len(frame), "size": len(raw)}

    def float_tensor(self, name, shape, dtype, raw):
        self.tensors.append({"name": name, "shape": shape, "source_dtype": "F32", "encoding": "float",
                             "dtype": dtype, "data": self.blob(raw)})

    def quantized_tensor(self, name, shape, bits, signed, block, axis, group_size, codes, scales, zero_points=None):
        blocks = [-(-shape[0] // block[0]) if shape[0] else 0, -(-shape[1] // block[1]) if shape[1] else 0]
        record = {"name": name, "shape": shape, "source_dtype": "F16", "encoding": "quantized",
                  "quantization": {"method": "zeropoint" if zero_points else "absmax", "bits": bits, "signed": signed,
                                   "scheme": "asymmetric" if zero_points else "symmetric", "axis": axis,
                                   "group_size": group_size, "block": block},
                  "data": self.blob(codes),
                  "scales": {"dtype": "F32", "shape": blocks, "data": self.blob(struct.pack("<%df" % len(scales), *scales))}}
        if zero_points:
            record["zero_points"] = {"dtype": "F32", "shape": blocks,
                                     "data": self.blob(struct.pack("<%df" % len(zero_points), *zero_points))}
        self.tensors.append(record)

    def finish(self, metadata, requires=None, minor=0, extra=None):
        header = {"alignment": self.alignment}
        if requires:
            header["requires"] = requires
        header["metadata"] = metadata
        header["tensors"] = self.tensors
        header.update(extra or {})
        text = json.dumps(header, separators=(",", ":")).encode()
        out = bytearray(self.body)
        offset = len(out)
        out += text
        out[0:32] = EQM_MAGIC + struct.pack("<HHIQQ", 1, minor, 0, offset, len(text))
        return bytes(out)


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


def make_eqm():
    for path in sorted(glob.glob(fixture("golden", "*.eqm"))):
        put("eqm", os.path.basename(path), read(path))
    config = json.loads(read(fixture("golden", "source", "config.json")))

    w = EQMWriter()
    w.float_tensor("ln.weight", [4], "F32", f32(1, -0.5, 0.25, 3e38))
    w.float_tensor("ln.bias", [2, 2], "F16", struct.pack("<4e", 1.0, -2.0, 0.5, 65504.0))
    w.float_tensor("wpe.weight", [3], "BF16", bytes([0x80, 0x3F, 0x00, 0xC0, 0x49, 0x40]))
    w.float_tensor("scalar", [], "F32", f32(42))
    w.float_tensor("empty", [0, 4], "F32", b"")
    # 8-bit signed, per channel along axis 1: block [rows, 1].
    w.quantized_tensor("c_fc.weight", [3, 4], 8, True, [3, 1], 1, 0,
                       bytes([1, 2, 3, 0x80, 0x7F, 0xFF, 0, 5, 9, 10, 11, 12]), [0.1, 0.2, 0.3, 0.4])
    # 4-bit unsigned asymmetric, groups of 2 along axis 0: block [1, 2], odd element count.
    w.quantized_tensor("wte.weight", [3, 3], 4, False, [1, 2], 0, 2,
                       bytes([0x21, 0x43, 0x65, 0x87, 0x09]), [0.5] * 6, [8, 7, 8, 7, 8, 7])
    # Per tensor: one block covering everything.
    w.quantized_tensor("c_proj.weight", [2, 2], 3, True, [2, 2], None, 0, bytes([0x1F, 0x2E]), [0.25])
    vocab = json.dumps({"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}).encode()
    merges = b"#version: 0.2\na b\n"
    files = {"vocab.json": w.blob(vocab), "merges.txt": w.blob(merges)}
    metadata = {"model": {"architecture": "gpt2", "config": config},
                "tokenizer": {"files": files},
                "quantization": {"method": "mixed", "granularity": "channel", "bits": 8, "parameters": {"zstd_level": 3}}}
    put("eqm", "every-encoding.eqm", w.finish(metadata))

    w = EQMWriter(alignment=8)
    w.float_tensor("h.0.mlp.c_fc.weight", [2, 3], "F32", f32(1, 2, 3, 4, 5, 6))
    w.float_tensor("eqm.outliers.h.0.mlp.c_fc.index", [1], "F32", f32(1))
    w.float_tensor("eqm.outliers.h.0.mlp.c_fc.weight", [1, 3], "F32", f32(7, 8, 9))
    put("eqm", "outliers-minor-7.eqm", w.finish({}, requires=["outliers"], minor=7, extra={"future": {"x": [1, 2]}}))

    w = EQMWriter()
    w.float_tensor("no-checksum", [2], "F32", f32(1, 2))
    w.tensors[-1]["data"] = w.blob(f32(1, 2), checksum=False)
    put("eqm", "no-checksum.eqm", w.finish({"tokenizer": {"files": {"tokenizer.json": w.blob(b'{"model":{}}')}}}))


# ---------------------------------------------------------------------------------------------
# JSON

def make_json():
    for path in sorted(glob.glob(fixture("**", "*.json"), recursive=True)):
        # The five other variants' reference.json files differ only in their numbers.
        duplicate = path.endswith("reference.json") and "gpt2-variants" in path and "hf-save-pretrained" not in path
        if os.path.getsize(path) <= 16 << 10 and not duplicate:
            rel = os.path.relpath(path, fixture()).replace(os.sep, "_")
            put("json", rel, read(path))
    for name in sorted(os.listdir(os.path.join(OUT, "safetensors"))):
        data = read(os.path.join(OUT, "safetensors", name))
        (n,) = struct.unpack("<Q", data[:8])
        put("json", "header-" + name + ".json", data[8:8 + n])
    for name in sorted(os.listdir(os.path.join(OUT, "eqm"))):
        data = read(os.path.join(OUT, "eqm", name))
        offset, length = struct.unpack("<QQ", data[16:32])
        put("json", "header-" + name + ".json", data[offset:offset + length])
    texts = {
        "escapes.json": r'["\"\\\/\b\f\n\r\t", "\u00e9\ud83d\ude00\u0000", "", "\u2028"]',
        "numbers.json": "[0, -0, 1, -1, 9223372036854775807, -9223372036854775808, 9223372036854775808, "
                        "18446744073709551616, 1.5, -2.5e-3, 1E+2, 1e308, 4.9e-324, 0.1]",
        "nested.json": "[" * 40 + "{}" + "]" * 40,
        "literals.json": '{"t": true, "f": false, "n": null, "o": {}, "a": []}',
        "unicode-keys.json": '{"\u00e9": 1, "e\u0301x": 2, "\u4e2d\u6587": [3]}',
        "scalar.json": ' "just a string" ',
    }
    for name, text in texts.items():
        put("json", name, text.encode())


# ---------------------------------------------------------------------------------------------
# tokenizer

def tokenizer_json(vocab, merges):
    return json.dumps({"version": "1.0", "added_tokens": [{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>", "special": True}]
                       if "<|endoftext|>" in vocab else [],
                       "normalizer": None,
                       "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
                       "model": {"type": "BPE", "dropout": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                                 "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                                 "vocab": vocab, "merges": merges}},
                      ensure_ascii=False, separators=(",", ":")).encode()


def make_tokenizer():
    vocab_bytes = read(fixture("tiny-gpt2", "vocab.json"))
    merges_bytes = read(fixture("tiny-gpt2", "merges.txt"))
    vocab = json.loads(vocab_bytes)
    merge_lines = [l for l in merges_bytes.decode().split("\n") if l and not l.startswith("#version")]
    # The whole tiny tokenizer (45 KB) would make every execution slow; a cut of it is enough
    # to reach every branch of the loaders.
    small, kept = cut_vocabulary(vocab, merges_bytes)
    small_vocab = json.dumps(small, ensure_ascii=False).encode()
    put("tokenizer", "pair-cut", b"\x00" + small_vocab + b"\x00" + ("#version: 0.2\n" + "\n".join(kept) + "\n").encode())
    put("tokenizer", "json-cut-strings", b"\x01" + tokenizer_json(small, kept))
    put("tokenizer", "json-cut-arrays", b"\x01" + tokenizer_json(small, [k.split(" ") for k in kept]))
    put("tokenizer", "pair-crlf", b"\x00" + small_vocab + b"\x00" + "\r\n".join(kept[:5]).encode() + b"\r\n")

    # The same cut under the pre-tokenizers of fixtures/tiny-llama (SmolLM2's digits, then
    # byte level) and fixtures/tiny-qwen2 (Qwen2's split pattern).
    for family in ["tiny-llama", "tiny-qwen2"]:
        spec = json.loads(read(fixture(family, "tokenizer.json")))
        spec["model"]["vocab"] = small
        spec["model"]["merges"] = [k.split(" ") for k in kept]
        spec["added_tokens"] = [{"id": small["<|endoftext|>"], "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                                 "rstrip": False, "normalized": False, "special": True}]
        put("tokenizer", "json-cut-" + family, b"\x01" + json.dumps(spec, ensure_ascii=False, separators=(",", ":")).encode())

    calibration = read(fixture("calibration", "corpus-calib.txt"))
    wiki = read(fixture("wikitext-2-raw", "wiki.test.raw"))
    for i, start in enumerate([0, 40000, 120000]):
        put("tokenizer", "text-calibration-%d" % i, b"\x02" + cut_utf8(calibration[start:start + 2000]))
    for i, start in enumerate([0, 500000, 1000000]):
        put("tokenizer", "text-wiki-%d" % i, b"\x02" + cut_utf8(wiki[start:start + 2000]))
    put("tokenizer", "text-llamacpp-vocab-test", b"\x02" + read(fixture("vocab", "ggml-vocab-gpt-2.gguf.inp")))
    samples = {
        "text-unicode": "na\u00efve caf\u00e9 \u4e2d\u6587 \U0001F600 \u0645\u0631\u062d\u0628\u0627 \u2028 e\u0301\n",
        "text-specials": "a<|endoftext|>b <|endoftext|><|endoftext|> <|endof",
        "text-spaces": "  \t\n\n   x  \r\n\u00a0\u3000 'll 's 'S I'M it's 123456 1.5e3",
        "text-empty": "",
    }
    for name, text in samples.items():
        put("tokenizer", name, b"\x02" + text.encode())


def cut_vocabulary(vocab, merges_bytes):
    """A cut of a vocabulary: the 256 byte tokens, the first 44 merges whose parts are
    present (adding their results), and the end-of-text token last."""
    merge_lines = [l for l in merges_bytes.decode().split("\n") if l and not l.startswith("#version")]
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    small = {t: i for t, i in by_id[:256]}
    kept = []
    for line in merge_lines:
        left, right = line.split(" ")
        if left in small and right in small and len(kept) < 44:
            small.setdefault(left + right, len(small))
            kept.append(line)
    small["<|endoftext|>"] = len(small)
    return small, kept


def cut_utf8(data):
    """`data` without a partial UTF-8 sequence at either end."""
    return data.decode("utf-8", errors="ignore").encode()


def make_gguf():
    for path in sorted(glob.glob(fixture("gguf", "*.gguf"))) + [fixture("gguf-writer", "written.gguf")]:
        put("gguf", os.path.basename(path), read(path))
    # Vocabulary-only files as llama.cpp's converter writes them, from the tokenizer cut: one
    # per pre-tokenizer rule set, so the GGUF tokenizer loader and every scanner are reached.
    tokens, merges, types = tokenizer_cut()
    for pre, add_bos in [("gpt2", False), ("llama-bpe", True), ("qwen2", False), ("smollm", False)]:
        path = os.path.join(OUT, "gguf", "vocab-%s.gguf" % pre)
        w = gguf.GGUFWriter(path, "gpt2")
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_merges(merges)
        w.add_token_types(types)
        w.add_bos_token_id(len(tokens) - 1)
        w.add_eos_token_id(len(tokens) - 1)
        w.add_add_bos_token(add_bos)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


def tokenizer_cut():
    """The cut of make_tokenizer as GGUF lists: tokens by id, merges, token types (1 normal,
    3 control)."""
    vocab = json.loads(read(fixture("tiny-gpt2", "vocab.json")))
    small, kept = cut_vocabulary(vocab, read(fixture("tiny-gpt2", "merges.txt")))
    tokens = [t for t, _ in sorted(small.items(), key=lambda kv: kv[1])]
    types = [3 if t == "<|endoftext|>" else 1 for t in tokens]
    return tokens, kept, types


# ---------------------------------------------------------------------------------------------
# model: config.json, NUL, safetensors (tiny models of every family, with their HF names)

def tiny_tensors(names_shapes, seed, dtype="F32"):
    """Seeded small values (|x| < 0.5), so a seed model runs and its logits are finite."""
    import random
    rng = random.Random(seed)
    out = []
    for name, shape in names_shapes:
        count = 1
        for d in shape:
            count *= d
        values = [rng.uniform(-0.5, 0.5) for _ in range(count)]
        if dtype == "F32":
            raw = struct.pack("<%df" % count, *values)
        else:  # F16
            raw = struct.pack("<%de" % count, *values)
        out.append((name, dtype, shape, raw))
    return out


def gpt2_seed(vocab=16, positions=8, embd=8, layers=1, heads=2, inner=None):
    inner = inner or 4 * embd
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": vocab, "n_positions": positions,
              "n_embd": embd, "n_layer": layers, "n_head": heads, "n_inner": inner if inner != 4 * embd else None,
              "layer_norm_epsilon": 1e-5, "bos_token_id": vocab - 1, "eos_token_id": vocab - 1}
    t = [("transformer.wte.weight", [vocab, embd]), ("transformer.wpe.weight", [positions, embd])]
    for i in range(layers):
        h = "transformer.h.%d." % i
        t += [(h + "ln_1.weight", [embd]), (h + "ln_1.bias", [embd]),
              (h + "attn.c_attn.weight", [embd, 3 * embd]), (h + "attn.c_attn.bias", [3 * embd]),
              (h + "attn.c_proj.weight", [embd, embd]), (h + "attn.c_proj.bias", [embd]),
              (h + "ln_2.weight", [embd]), (h + "ln_2.bias", [embd]),
              (h + "mlp.c_fc.weight", [embd, inner]), (h + "mlp.c_fc.bias", [inner]),
              (h + "mlp.c_proj.weight", [inner, embd]), (h + "mlp.c_proj.bias", [embd])]
    t += [("transformer.ln_f.weight", [embd]), ("transformer.ln_f.bias", [embd])]
    return config, t


def llama_seed(arch="LlamaForCausalLM", model_type="llama", vocab=16, positions=8, hidden=8, layers=1, heads=2, kv=1,
               inner=12, tied=True, qkv_bias=False, head_dim=None, extra=None):
    head_dim = head_dim or hidden // heads
    config = {"architectures": [arch], "model_type": model_type, "vocab_size": vocab, "max_position_embeddings": positions,
              "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
              "intermediate_size": inner, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": tied,
              "bos_token_id": 0, "eos_token_id": vocab - 1}
    if head_dim != hidden // heads:
        config["head_dim"] = head_dim
    config.update(extra or {})
    t = [("model.embed_tokens.weight", [vocab, hidden])]
    for i in range(layers):
        p = "model.layers.%d." % i
        t += [(p + "input_layernorm.weight", [hidden]),
              (p + "self_attn.q_proj.weight", [heads * head_dim, hidden]),
              (p + "self_attn.k_proj.weight", [kv * head_dim, hidden]),
              (p + "self_attn.v_proj.weight", [kv * head_dim, hidden]),
              (p + "self_attn.o_proj.weight", [hidden, heads * head_dim]),
              (p + "post_attention_layernorm.weight", [hidden]),
              (p + "mlp.gate_proj.weight", [inner, hidden]), (p + "mlp.up_proj.weight", [inner, hidden]),
              (p + "mlp.down_proj.weight", [hidden, inner])]
        if qkv_bias:
            t += [(p + "self_attn.q_proj.bias", [heads * head_dim]), (p + "self_attn.k_proj.bias", [kv * head_dim]),
                  (p + "self_attn.v_proj.bias", [kv * head_dim])]
    t.append(("model.norm.weight", [hidden]))
    if not tied:
        t.append(("lm_head.weight", [vocab, hidden]))
    return config, t


def make_model():
    seeds = {
        "gpt2-1layer": gpt2_seed(),
        "gpt2-2layers-inner": gpt2_seed(vocab=12, positions=6, embd=8, layers=2, heads=4, inner=8),
        "llama-gqa-tied": llama_seed(),
        "llama-untied-2layers": llama_seed(layers=2, heads=4, kv=2, tied=False),
        "llama-head-dim": llama_seed(hidden=8, heads=2, kv=2, head_dim=6),
        "qwen2-biases": llama_seed("Qwen2ForCausalLM", "qwen2", tied=False, qkv_bias=True),
        "mistral-window": llama_seed("MistralForCausalLM", "mistral", extra={"sliding_window": 4}),
        "llama-rope-parameters": llama_seed(extra={"rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}}),
    }
    for i, (name, (config, shapes)) in enumerate(sorted(seeds.items())):
        dtype = "F16" if name == "llama-untied-2layers" else "F32"
        body = safetensors_bytes(tiny_tensors(shapes, seed=i, dtype=dtype), {"format": "pt"})
        put("model", name, json.dumps(config, indent=1).encode() + b"\x00" + body)
    # The tiny fixtures' own configs over a model of the wrong size: refused, by name.
    for fixture_name in ["tiny-gpt2", "tiny-llama", "tiny-qwen2"]:
        config = read(fixture(fixture_name, "config.json"))
        _, shapes = gpt2_seed() if fixture_name == "tiny-gpt2" else llama_seed()
        put("model", "config-" + fixture_name, config + b"\x00" + safetensors_bytes(tiny_tensors(shapes, seed=99)))


def main():
    for target in ["safetensors", "eqm", "json", "tokenizer", "gguf", "model"]:
        shutil.rmtree(os.path.join(OUT, target), ignore_errors=True)
        os.makedirs(os.path.join(OUT, target))
    make_safetensors()
    make_eqm()
    make_json()
    make_tokenizer()
    make_gguf()
    make_model()
    total = 0
    for target in sorted(os.listdir(OUT)):
        files = sorted(glob.glob(os.path.join(OUT, target, "*")))
        size = sum(os.path.getsize(f) for f in files)
        largest = max(os.path.getsize(f) for f in files)
        total += size
        digest = hashlib.sha256(b"".join(read(f) for f in files)).hexdigest()[:16]
        print("%-12s %3d files %8d bytes (largest %6d) sha256 %s" % (target, len(files), size, largest, digest))
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
