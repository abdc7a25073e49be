#!/usr/bin/env python3
"""Perplexity with Hugging Face transformers under EasyQuant's protocol, timed.

    hf_ppl.py MODEL_DIR TEXT [--max-tokens N] [--ctx C] [--stride S] [--threads T]

The reference side of scripts/bench-ppl: the same windows as `eqppl` (windows of C tokens
every S tokens, each token scored once from its full left context in the window, ppl =
exp(total NLL / scored tokens)), in float32 with T torch threads. Prints one JSON object with
the same field names as `eqppl --json`; `seconds` covers the windows only (not loading or
tokenizing), as eqppl's does.
"""
import argparse
import json
import math
import time

import torch
from transformers import GPT2LMHeadModel, GPT2TokenizerFast

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("text")
ap.add_argument("--max-tokens", type=int)
ap.add_argument("--ctx", type=int)
ap.add_argument("--stride", type=int)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
torch.set_num_threads(args.threads)

tok = GPT2TokenizerFast.from_pretrained(args.model)
model = GPT2LMHeadModel.from_pretrained(args.model, torch_dtype=torch.float32).eval()
ids = tok(open(args.text, encoding="utf-8").read(), return_attention_mask=False)["input_ids"]
text_tokens = len(ids)
if args.max_tokens:
    ids = ids[: args.max_tokens]
ctx = min(args.ctx or model.config.n_positions, model.config.n_positions)
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
