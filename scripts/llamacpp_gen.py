#!/usr/bin/env python3
"""Greedy generation with llama.cpp (llama-cpp-python), timed, for scripts/bench-gen.

    /work/llamavenv/bin/python scripts/llamacpp_gen.py MODEL.gguf --ids 1,2,3 [--generate N] [--threads T]

Feeds the given prompt token ids (no BOS added: the ids are eqgen's, as it tokenized the
prompt) in one `Llama.eval`, then decodes N tokens greedily one at a time: each step takes
the last position's logits (read in place from the context), picks the argmax (the lowest id on ties, as eqgen does) and
evaluates that token, except after the last one. `decode_seconds` covers those N steps
(argmax and evaluation), as eqgen's does; `prompt_seconds` the prompt's evaluation. Prints one
JSON object with eqgen's field names. Runs under the Python that has `llama_cpp`.
"""
import argparse
import json
import time

import llama_cpp
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--ids", required=True, help="comma-separated prompt token ids")
ap.add_argument("--generate", type=int, default=256)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--ctx", type=int, default=1024)
args = ap.parse_args()

ids = [int(t) for t in args.ids.split(",") if t]
llm = llama_cpp.Llama(model_path=args.model, n_ctx=args.ctx, n_batch=max(len(ids), 8), n_threads=args.threads,
                      n_threads_batch=args.threads, logits_all=False, verbose=False)

start = time.perf_counter()
llm.eval(ids)
prompt_seconds = time.perf_counter() - start

n_vocab = llm.n_vocab()


def last_logits():
    """The last evaluated position's logits, read in place (no copy)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,))


generated = []
start = time.perf_counter()
while len(generated) < args.generate:
    token = int(np.argmax(last_logits()))
    generated.append(token)
    if len(generated) == args.generate:
        break
    llm.eval([token])
decode_seconds = time.perf_counter() - start

print(json.dumps({
    "model": args.model, "prompt_tokens": len(ids), "prompt_ids": ids, "generated_ids": generated,
    "prompt_seconds": prompt_seconds, "decode_seconds": decode_seconds,
    "prompt_tokens_per_second": len(ids) / prompt_seconds, "decode_tokens_per_second": len(generated) / decode_seconds,
    "tokens_per_second": len(generated) / decode_seconds, "threads": args.threads,
    "llama_cpp_version": llama_cpp.__version__,
}, indent=2))
