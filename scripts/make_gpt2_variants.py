#!/usr/bin/env python3
"""Write tiny GPT-2 checkpoints in each naming/layout variant the loader must accept.

Run by hand (takes a few seconds):

    /work/venv/bin/python scripts/make_gpt2_variants.py

Writes fixtures/gpt2-variants/<variant>/ (relative to the repository) for the variants
    hf-save-pretrained  exactly what GPT2LMHeadModel.save_pretrained writes today
    hub-style           the layout of the OpenAI GPT-2 checkpoints on the Hugging Face hub
    lm-head-untied      a separate lm_head.weight (tie_word_embeddings = false)
    f16, bf16           the same model stored in float16 / bfloat16
    sharded             save_pretrained with a small max_shard_size: 3 shards + index
plus fixtures/gpt2-variants/variants.log (this script's output). Each folder holds config.json, the weights, and
reference.json: the input ids, the logits at position 0 and at the last position, the
config summary and the stored tensor names.

All variants share one seeded random model (n_embd 32, 2 layers, 2 heads, 64 positions,
vocab 300), so hf-save-pretrained, hub-style and sharded must give identical logits, and
f16/bf16 differ from them only by the rounding of the weights. The weights are drawn
wider than GPT-2's own initialisation, and LayerNorm gains/biases and all biases are
random rather than 1/0, so that a loader or forward pass that drops a bias, misses a
LayerNorm gain or transposes a Conv1D weight produces visibly wrong logits.

The reference logits are computed by transformers after loading each folder back with
`from_pretrained(..., dtype=torch.float32)`, so they also show that the folder means what
it is meant to mean.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import sys

import numpy as np
import safetensors
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SIZES = dict(vocab_size=300, n_positions=64, n_embd=32, n_layer=2, n_head=2)
# Fixed input: the first and last ids and a spread of others.
VARIANT_NAMES = ["hf-save-pretrained", "hub-style", "lm-head-untied", "f16", "bf16", "sharded"]
INPUT_IDS = [299, 0, 17, 256, 1, 42, 298, 100, 7, 150, 255, 3, 64, 128, 200, 31]


def f32(v):
    """Shortest decimal that reads back as the same float32."""
    return float(np.format_float_positional(np.float32(v), unique=True, trim="-"))


def base_config(**overrides):
    return GPT2Config(**SIZES, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                      attn_pdrop=0.0, bos_token_id=SIZES["vocab_size"] - 1,
                      eos_token_id=SIZES["vocab_size"] - 1, **overrides)


def randomize(model, gen):
    """Give every parameter a distinctive random value (see the module docstring)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("wte.weight") or name == "lm_head.weight":
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith("wpe.weight"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:  # Conv1D weights, stored [in, out]
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[0] ** 0.5)


def stored_tensors(folder):
    """name -> (dtype, shape) over every .safetensors file in the folder."""
    out = {}
    for fn in sorted(os.listdir(folder)):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(folder, fn), "pt") as f:
                for k in f.keys():
                    sl = f.get_slice(k)
                    out[k] = (sl.get_dtype(), sl.get_shape())
    return out


def write_hub_style(model, folder):
    """The OpenAI checkpoints on the hub: no `transformer.` prefix, no lm_head (tied), the
    causal-mask buffers h.N.attn.bias [1,1,n_pos,n_pos] and the scalar h.N.attn.masked_bias
    that old transformers versions kept in the state dict, and an old-style config.json
    (with n_ctx, without tie_word_embeddings or dtype)."""
    os.makedirs(folder, exist_ok=True)
    n = SIZES["n_positions"]
    sd = {k[len("transformer."):]: v.detach().clone().contiguous()
          for k, v in model.state_dict().items() if k.startswith("transformer.")}
    for i in range(SIZES["n_layer"]):
        sd[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
        sd[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(sd, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    config = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": SIZES["vocab_size"] - 1,
        "embd_pdrop": 0.1,
        "eos_token_id": SIZES["vocab_size"] - 1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": n,
        "n_embd": SIZES["n_embd"],
        "n_head": SIZES["n_head"],
        "n_layer": SIZES["n_layer"],
        "n_positions": n,
        "resid_pdrop": 0.1,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "vocab_size": SIZES["vocab_size"],
    }
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


class Tee:
    """Print to the terminal and to variants.log."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)

    def flush(self):
        for st in self.streams:
            st.flush()

    def isatty(self):  # libraries ask before colouring their output; keep the log plain
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "fixtures", "gpt2-variants"))
    ap.add_argument("--seed", type=int, default=20261129)
    args = ap.parse_args()
    if os.path.isdir(args.out):
        for name in VARIANT_NAMES:
            shutil.rmtree(os.path.join(args.out, name), ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "variants.log"), "w", encoding="utf-8")
    sys.stdout = Tee(sys.__stdout__, log)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}  transformers {transformers.__version__}  "
          f"safetensors {safetensors.__version__}  seed {args.seed}")

    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    tied = GPT2LMHeadModel(base_config()).eval()
    randomize(tied, gen)
    untied = GPT2LMHeadModel(base_config(tie_word_embeddings=False)).eval()
    untied.load_state_dict(tied.state_dict(), strict=False)
    with torch.no_grad():  # the one tensor that differs: a head of its own
        untied.lm_head.weight.copy_(0.3 * torch.randn(untied.lm_head.weight.shape, generator=gen))
    assert untied.lm_head.weight.data_ptr() != untied.transformer.wte.weight.data_ptr()
    print(f"model: {SIZES}, gelu_new; {sum(p.numel() for p in tied.parameters())} parameters "
          f"(+{untied.lm_head.weight.numel()} for the untied head); input ids {INPUT_IDS}")

    def save_cast(dtype):
        def write(folder):
            m = GPT2LMHeadModel(base_config()).eval()
            m.load_state_dict(tied.state_dict())
            m.to(dtype).save_pretrained(folder, safe_serialization=True)
        return write

    # name -> (description, writer)
    variants = {
        "hf-save-pretrained": ("GPT2LMHeadModel.save_pretrained(dir, safe_serialization=True), float32",
                               lambda d: tied.save_pretrained(d, safe_serialization=True)),
        "hub-style": ("layout of the OpenAI GPT-2 checkpoints on the Hugging Face hub: no "
                      "'transformer.' prefix, no lm_head.weight, h.N.attn.bias [1,1,n_pos,n_pos] "
                      "and h.N.attn.masked_bias [] buffers, old-style config.json (n_ctx)",
                      lambda d: write_hub_style(tied, d)),
        "lm-head-untied": ("save_pretrained of a model with tie_word_embeddings=false: "
                           "lm_head.weight stored and different from transformer.wte.weight",
                           lambda d: untied.save_pretrained(d, safe_serialization=True)),
        "f16": ("save_pretrained of the hf-save-pretrained model converted to torch.float16",
                save_cast(torch.float16)),
        "bf16": ("save_pretrained of the hf-save-pretrained model converted to torch.bfloat16",
                 save_cast(torch.bfloat16)),
        "sharded": ("save_pretrained with max_shard_size='60KB': model-0000N-of-00003.safetensors "
                    "+ model.safetensors.index.json",
                    lambda d: tied.save_pretrained(d, safe_serialization=True, max_shard_size="60KB")),
    }

    assert list(variants) == VARIANT_NAMES

    ids = torch.tensor([INPUT_IDS])
    summary = []
    for name, (description, write) in variants.items():
        folder = os.path.join(args.out, name)
        write(folder)
        tensors = stored_tensors(folder)
        model = GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
        # the folder must load back to exactly the intended weights
        source = untied if name == "lm-head-untied" else tied
        cast = {"f16": torch.float16, "bf16": torch.bfloat16}.get(name)
        for k, v in source.state_dict().items():
            want = v.to(cast).float() if cast else v
            assert torch.equal(model.state_dict()[k], want), (name, k)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0]
        cfg = model.config
        reference = {
            "variant": name,
            "description": description,
            "made_by": "scripts/make_gpt2_variants.py (seed %d, torch %s, transformers %s)"
                       % (args.seed, torch.__version__, transformers.__version__),
            "config": {"vocab_size": cfg.vocab_size, "n_positions": cfg.n_positions,
                       "n_embd": cfg.n_embd, "n_layer": cfg.n_layer, "n_head": cfg.n_head,
                       "layer_norm_epsilon": cfg.layer_norm_epsilon,
                       "activation_function": cfg.activation_function,
                       "tie_word_embeddings": cfg.tie_word_embeddings,
                       "stored_dtypes": sorted({str(dt) for dt, _ in tensors.values()})},
            "files": {fn: {"bytes": os.path.getsize(os.path.join(folder, fn)),
                           "sha256": hashlib.sha256(open(os.path.join(folder, fn), "rb").read()).hexdigest()}
                      for fn in sorted(os.listdir(folder))},
            "tensors": {k: {"dtype": dt, "shape": shape} for k, (dt, shape) in sorted(tensors.items())},
            "input_ids": INPUT_IDS,
            "logits_computed": "float32, by transformers, after from_pretrained(folder, dtype=float32)",
            "logits_position0": [f32(v) for v in logits[0]],
            "logits_last": [f32(v) for v in logits[-1]],
        }
        with open(os.path.join(folder, "reference.json"), "w", encoding="utf-8") as f:
            json.dump(reference, f, indent=1)
            f.write("\n")
        size = sum(os.path.getsize(os.path.join(folder, fn)) for fn in os.listdir(folder))
        names = sorted(tensors)
        def has(pattern):
            return "yes" if any(re.fullmatch(pattern, k) for k in tensors) else "no"
        head = has(r"lm_head\.weight")
        mask = has(r"(transformer\.)?h\.\d+\.attn\.bias")
        masked = has(r"(transformer\.)?h\.\d+\.attn\.masked_bias")
        flags = f"lm_head.weight {head}, h.N.attn.bias {mask}, h.N.attn.masked_bias {masked}"
        print(f"\n{name}: {size} bytes; files {sorted(os.listdir(folder))}")
        print(f"  {len(names)} tensors ({reference['config']['stored_dtypes']}); {flags}")
        print(f"  first names {names[:4]}")
        index = os.path.join(folder, "model.safetensors.index.json")
        if os.path.exists(index):
            print(f"  index metadata {json.load(open(index))['metadata']}")
        print(f"  logits[last] first 4 {[round(x, 5) for x in reference['logits_last'][:4]]}, "
              f"std {logits[-1].std().item():.3f}, argmax {int(logits[-1].argmax())}")
        summary.append((name, logits))

    base = dict(summary)["hf-save-pretrained"]
    print()
    for name, logits in summary:
        print(f"max |logits - hf-save-pretrained| for {name}: {(logits - base).abs().max().item():.3g}")
    total = sum(os.path.getsize(os.path.join(args.out, name, fn))
                for name in VARIANT_NAMES for fn in os.listdir(os.path.join(args.out, name)))
    print(f"\ntotal {total} bytes in the variant folders under {os.path.relpath(args.out, REPO)}")


if __name__ == "__main__":
    main()
