#!/usr/bin/env python3
"""The Python stack doing eqconvert's absmax job, for scripts/bench-convert to time.

Loads a safetensors file with torch, quantizes every 2-D float weight to int8 with one
absmax scale per output channel (the last axis for GPT-2's Conv1D weights, which are stored
[in, out]; axis 0 for embeddings and anything else), keeps 1-D tensors, drops GPT-2's
attention-mask buffers, and saves codes and scales with safetensors. Like eqconvert it reads
the whole model and writes a quantized file; unlike it, it neither compresses nor hashes.

    python3 scripts/bench_reference.py IN.safetensors OUT.safetensors   # prints a JSON summary
"""
import json
import os
import re
import sys

import torch
from safetensors.torch import load_file, save_file

CONV1D = re.compile(r"(^|\.)h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$")
MASK = re.compile(r"(^|\.)h\.\d+\.attn\.(bias|masked_bias)$")


def main(src, dst):
    tensors = load_file(src)
    out = {}
    params = quantized = 0
    for name, t in tensors.items():
        if MASK.search(name):
            continue
        params += t.numel()
        if t.dim() == 2 and t.is_floating_point():
            t = t.float()
            axis = 1 if CONV1D.search(name) else 0  # output-channel axis
            absmax = t.abs().amax(dim=1 - axis, keepdim=True)
            step = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))
            out[name] = torch.round(t / step).clamp_(-127, 127).to(torch.int8)
            out[name + ".absmax_step"] = step.reshape(-1).contiguous()
            quantized += t.numel()
        else:
            out[name] = t.contiguous()
    save_file(out, dst, metadata={"format": "pt"})
    size = os.path.getsize(dst)
    print(json.dumps({"parameters": params, "quantized": quantized, "output_bytes": size,
                      "bits_per_parameter": size * 8 / params}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
