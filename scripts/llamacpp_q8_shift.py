#!/usr/bin/env python3
"""llama.cpp's own shift: how far its Q8_0 quantization (llama_model_quantize) of an F32
GGUF file moves perplexity from that F32 file, on eqppl's windows and ids. This is the
yardstick for scripts/llamacpp_check.py's tolerance: llama.cpp quantizes activations
inside its Q8_0 products, which moves perplexity by itself.

    /work/llamavenv/bin/python scripts/llamacpp_q8_shift.py F32.gguf IDS.json [--ctx 256] [--json OUT]

IDS.json is `eqppl --dump-tokens`'s output for the same text. The Q8_0 file is written to a
temporary folder and removed.
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llamacpp_check import perplexity  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("f32_gguf")
    ap.add_argument("ids")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    import llama_cpp

    with open(a.ids) as f:
        ids = json.load(f)
    with tempfile.TemporaryDirectory() as work:
        q8 = os.path.join(work, "q8_0.gguf")
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
        params.nthread = a.threads
        status = llama_cpp.llama_model_quantize(a.f32_gguf.encode(), q8.encode(), params)
        if status != 0:
            sys.exit(f"llama_model_quantize failed with status {status}")
        result = {}
        for label, path in (("F32", a.f32_gguf), ("Q8_0", q8)):
            llm = llama_cpp.Llama(model_path=path, n_ctx=a.ctx, n_batch=a.ctx, n_ubatch=a.ctx, logits_all=True,
                                  n_threads=a.threads, verbose=False)
            result[label], scored, _ = perplexity(llm, ids, a.ctx)
            del llm
    change = 100 * (result["Q8_0"] / result["F32"] - 1)
    print(f"llama.cpp's own Q8_0 (llama_model_quantize) of {os.path.basename(a.f32_gguf)}: perplexity {result['Q8_0']:.6f} "
          f"against its F32 file's {result['F32']:.6f} on {scored} tokens in windows of {a.ctx}: {change:+.3f}%")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"f32": result["F32"], "q8_0": result["Q8_0"], "change_percent": change, "scored_tokens": scored}, f, indent=2)


if __name__ == "__main__":
    main()
