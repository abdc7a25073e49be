#!/usr/bin/env python3
"""Perplexity with Hugging Face transformers under EasyQuant's protocol, timed.

    hf_ppl.py MODEL_DIR TEXT [--max-tokens N] [--ctx C] [--stride S] [--threads T]
    hf_ppl.py MODEL.gguf --ids IDS.u32 [--max-tokens N] [--ctx C] [--stride S] [--threads T]

A GGUF file is loaded with `AutoModelForCausalLM.from_pretrained(dir, gguf_file=name)`
(transformers dequantizes it to float32). With --ids the token ids are read from a file of
little-endian uint32 (the ids EasyQuant and llama.cpp give the text; transformers' own GGUF
tokenizer differs from them on some texts) instead of tokenizing TEXT.

The reference side of scripts/bench-ppl: the same windows as `eqppl` (windows of C tokens
every S tokens, each token scored once from its full left context in the window, ppl =
exp(total NLL / scored tokens)), in float32 with T torch threads. Prints one JSON object with
the same field names as `eqppl --json`; `seconds` covers the windows only (not loading or
tokenizing), as eqppl's does.
"""
import argparse
import json
import math
import os
import struct
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("text", nargs="?")
ap.add_argument("--ids", help="token ids (uint32 little-endian) to score instead of tokenizing TEXT")
ap.add_argument("--max-tokens", type=int)
ap.add_argument("--ctx", type=int)
ap.add_argument("--stride", type=int)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
torch.set_num_threads(args.threads)

if args.model.endswith(".gguf"):
    where = dict(pretrained_model_name_or_path=os.path.dirname(os.path.abspath(args.model)), gguf_file=os.path.basename(args.model))
else:
    where = dict(pretrained_model_name_or_path=args.model)
model = AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32).eval()
if args.ids:
    with open(args.ids, "rb") as f:
        data = f.read()
    ids = list(struct.unpack(f"<{len(data) // 4}I", data))
else:
    if not args.text:
        ap.error("give TEXT or --ids")
    tok = AutoTokenizer.from_pretrained(**where)
    ids = tok(open(args.text, encoding="utf-8").read(), return_attention_mask=False)["input_ids"]
text_tokens = len(ids)
if args.max_tokens:
    ids = ids[: args.max_tokens]
positions = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
ctx = min(args.ctx or positions, positions)
stride = min(args.stride or ctx, ctx)

nll, scored, prev_end, begin, windows = 0.0, 0, 0, 0, 0
start = time.perf_counter()
with torch.inference_mode():
    while begin < len(ids):
        end = min(begin + ctx, len(ids))
        trg = min(end - prev_end, end - begin - 1)
        if trg > 0:
            x = torch.tensor([ids[begin:end]])
            logits = model(x).logits[0, :-1]
            targets = x[0, 1:]
            losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            nll += losses[-trg:].double().sum().item()
            scored += trg
            windows += 1
        prev_end = end
        if end == len(ids):
            break
        begin += stride
seconds = time.perf_counter() - start
print(json.dumps({
    "model": args.model, "method": "transformers f32", "compute": f"torch {torch.__version__}, {args.threads} threads",
    "ctx": ctx, "stride": stride, "text_tokens": text_tokens, "evaluated_tokens": len(ids),
    "scored_tokens": scored, "windows": windows, "nll_total": nll, "nll_mean": nll / scored,
    "ppl": math.exp(nll / scored), "seconds": seconds, "tokens_per_second": scored / seconds,
}, indent=1))
