#!/usr/bin/env python3
"""Recompute the fixtures' reference logits with a from-scratch NumPy GPT-2 forward pass.

Run by hand after making the fixtures:

    /work/venv/bin/python scripts/check_fixture_logits.py

The reference logits in fixtures/gpt2-variants/*/reference.json and
fixtures/tiny-gpt2/reference.json were computed by transformers. This script reads the
stored tensors directly (any layout: with or without the `transformer.` prefix, sharded,
F16/BF16, tied or untied head) and runs GPT-2 as written in REFERENCES.md, in float64:
x = wte[ids] + wpe; per block, pre-LayerNorm attention (c_attn splits into q, k, v; heads
of n_embd/n_head; scores scaled by 1/sqrt(head_dim); causal) and MLP with gelu_new, both
residual; final LayerNorm; logits = x . lm_headᵀ (wte when tied). Agreement shows that the
references mean what the Swift model must compute, independently of transformers'
internals. It writes nothing; it exits non-zero if any difference exceeds --tolerance.
"""

import argparse
import glob
import json
import os
import sys

import numpy as np
from safetensors import safe_open

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_tensors(folder):
    """Every tensor of every .safetensors file in the folder, as float64, prefix removed.
    The causal-mask buffers of hub-style checkpoints are loaded too but never used."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        with safe_open(path, "pt") as f:  # "pt" because NumPy has no bfloat16
            for name in f.keys():
                out[name.removeprefix("transformer.")] = f.get_tensor(name).double().numpy()
    return out


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def gpt2_logits(t, ids, n_layer, n_head, eps):
    n = len(ids)
    d = t["wte.weight"].shape[1]
    hd = d // n_head
    causal = np.tril(np.ones((n, n), dtype=bool))
    x = t["wte.weight"][ids] + t["wpe.weight"][:n]
    for i in range(n_layer):
        p = f"h.{i}."
        a = layer_norm(x, t[p + "ln_1.weight"], t[p + "ln_1.bias"], eps)
        qkv = a @ t[p + "attn.c_attn.weight"] + t[p + "attn.c_attn.bias"]  # Conv1D: x·W + b, W [in, out]
        q, k, v = (m.reshape(n, n_head, hd).transpose(1, 0, 2) for m in np.split(qkv, 3, axis=-1))
        scores = np.where(causal, q @ k.transpose(0, 2, 1) / np.sqrt(hd), -np.inf)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        heads = (probs @ v).transpose(1, 0, 2).reshape(n, d)
        x = x + heads @ t[p + "attn.c_proj.weight"] + t[p + "attn.c_proj.bias"]
        m = layer_norm(x, t[p + "ln_2.weight"], t[p + "ln_2.bias"], eps)
        m = gelu_new(m @ t[p + "mlp.c_fc.weight"] + t[p + "mlp.c_fc.bias"])
        x = x + m @ t[p + "mlp.c_proj.weight"] + t[p + "mlp.c_proj.bias"]
    x = layer_norm(x, t["ln_f.weight"], t["ln_f.bias"], eps)
    return x @ t.get("lm_head.weight", t["wte.weight"]).T


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixtures", default=os.path.join(REPO, "fixtures"))
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args()

    cases = []  # (folder, config dict, input ids, logits at 0, logits at last)
    for ref_path in sorted(glob.glob(os.path.join(args.fixtures, "gpt2-variants", "*", "reference.json"))):
        r = json.load(open(ref_path))
        cases.append((os.path.dirname(ref_path), r["config"], r["input_ids"],
                      r["logits_position0"], r["logits_last"]))
    tiny = os.path.join(args.fixtures, "tiny-gpt2")
    if os.path.exists(os.path.join(tiny, "reference.json")):
        r = json.load(open(os.path.join(tiny, "reference.json")))["logits_check"]
        cases.append((tiny, json.load(open(os.path.join(tiny, "config.json"))), r["input_ids"],
                      r["logits_position0"], r["logits_last"]))

    worst = 0.0
    for folder, cfg, ids, first, last in cases:
        logits = gpt2_logits(load_tensors(folder), ids, cfg["n_layer"], cfg["n_head"],
                             cfg["layer_norm_epsilon"])
        diff = max(np.abs(logits[0] - first).max(), np.abs(logits[-1] - last).max())
        worst = max(worst, diff)
        print(f"{os.path.relpath(folder, REPO)}: max |numpy - reference| = {diff:.2e}")
    print(f"{len(cases)} checkpoints, worst {worst:.2e}, tolerance {args.tolerance:g}")
    sys.exit(0 if cases and worst <= args.tolerance else 1)


if __name__ == "__main__":
    main()
