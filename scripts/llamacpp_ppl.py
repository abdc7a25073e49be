#!/usr/bin/env python3
"""Perplexity with llama.cpp (llama-cpp-python) under EasyQuant's protocol, timed.

    /work/llamavenv/bin/python scripts/llamacpp_ppl.py MODEL.gguf IDS.u32 [--max-tokens N] [--ctx C]
        [--stride S] [--threads T]

The reference side of `scripts/bench-ppl --model smollm2`: the token ids come from a file of
little-endian uint32 (the ids EasyQuant's tokenizer gives the text, which are llama.cpp's), and
the windows are eqppl's (C tokens every S tokens, each token scored once from its full left
context in the window, no BOS added, ppl = exp(total NLL / scored tokens)). Each window is one
`Llama.eval` of the whole window (n_ctx = n_batch = C, logits of every position kept), after
resetting the context; the NLL is computed from the float32 logits in double. Prints one JSON
object with the same field names as `eqppl --json`; `seconds` covers the windows only.

Runs under the Python that has `llama_cpp` (the bench calls it with /work/llamavenv/bin/python).
"""
import argparse
import json
import math
import struct
import time

import llama_cpp
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("ids")
ap.add_argument("--max-tokens", type=int)
ap.add_argument("--ctx", type=int, default=2048)
ap.add_argument("--stride", type=int)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()

with open(args.ids, "rb") as f:
    data = f.read()
ids = list(struct.unpack(f"<{len(data) // 4}I", data))
text_tokens = len(ids)
if args.max_tokens:
    ids = ids[: args.max_tokens]
ctx, stride = args.ctx, min(args.stride or args.ctx, args.ctx)

llm = llama_cpp.Llama(model_path=args.model, n_ctx=ctx, n_batch=ctx, n_threads=args.threads,
                      n_threads_batch=args.threads, logits_all=True, verbose=False)

nll, scored, prev_end, begin, windows, seconds = 0.0, 0, 0, 0, 0, 0.0
while begin < len(ids):
    end = min(begin + ctx, len(ids))
    trg = min(end - prev_end, end - begin - 1)
    if trg > 0:
        window = ids[begin:end]
        llm.reset()
        start = time.perf_counter()
        llm.eval(window)
        seconds += time.perf_counter() - start
        n = len(window)
        logits = np.asarray(llm.scores[: n - 1], dtype=np.float64)  # position i predicts token i + 1
        m = logits.max(axis=1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(logits - m).sum(axis=1)))
        targets = np.asarray(window[1:])
        losses = lse - logits[np.arange(n - 1), targets]
        nll += float(losses[-trg:].sum())
        scored += trg
        windows += 1
    prev_end = end
    if end == len(ids):
        break
    begin += stride
print(json.dumps({
    "model": args.model, "method": "llama.cpp", "compute": f"llama-cpp-python {llama_cpp.__version__}, {args.threads} threads",
    "ctx": ctx, "stride": stride, "text_tokens": text_tokens, "evaluated_tokens": len(ids),
    "scored_tokens": scored, "windows": windows, "nll_total": nll, "nll_mean": nll / scored,
    "ppl": math.exp(nll / scored), "seconds": seconds, "tokens_per_second": scored / seconds,
}, indent=1))
