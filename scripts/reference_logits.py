#!/usr/bin/env python3
"""Reference values from Hugging Face transformers, for checking EasyQuant's GPT-2 forward pass.

Run by hand (see scripts/README.md):

    /work/venv/bin/python scripts/reference_logits.py MODEL TEXT OUT.json \
        [--ctx N] [--stride S] [--max-tokens M] [--positions K] [--ids IDS.json]

MODEL is a transformers GPT-2 folder with its tokenizer files, or a GGUF file (loaded by
transformers' GGUF support, dequantized to float32: any architecture it knows). With --ids, the
token ids are read from IDS.json (e.g. what `eqppl --dump-tokens` wrote) instead of tokenizing
TEXT, so both implementations see the same ids. For MODEL and TEXT it writes:
- OUT.json: model and text sha256, the number of text tokens and the sha256 of their ids
  (uint32 little-endian), the first window's ids, which positions' logits were kept, and the
  perplexity under EasyQuant's protocol (windows of ctx tokens every `stride` tokens; each
  token scored once, from its full left context in the window; ppl = exp(total NLL / scored)),
  plus the per-token NLL of the first window;
- OUT.logits.f32: the logits (float32, little-endian, row-major [K, vocab]) of K evenly spaced
  positions of the first window.
Everything runs in float32 on CPU, like EasyQuant's f32 path.
"""
import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, GPT2LMHeadModel, GPT2TokenizerFast


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def windows(n, ctx, stride):
    """The protocol's windows: (begin, end, scored) with each token scored once."""
    out, prev_end, begin = [], 0, 0
    while begin < n:
        end = min(begin + ctx, n)
        scored = min(end - prev_end, end - begin - 1)
        if scored > 0:
            out.append((begin, end, scored))
        prev_end = end
        if end == n:
            break
        begin += stride
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("out")
    ap.add_argument("--ctx", type=int)
    ap.add_argument("--stride", type=int)
    ap.add_argument("--max-tokens", type=int)
    ap.add_argument("--positions", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ids")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    # from_pretrained finds vocab.json + merges.txt in the folder (transformers 5 ignores
    # vocab_file/merges_file given to the constructor and would tokenize nothing).
    gguf = args.model.endswith(".gguf")
    if gguf:
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(args.model)), gguf_file=os.path.basename(args.model),
                                                     torch_dtype=torch.float32).eval()
        positions_limit = model.config.max_position_embeddings
    else:
        model = GPT2LMHeadModel.from_pretrained(args.model, torch_dtype=torch.float32).eval()
        positions_limit = model.config.n_positions
    if args.ids:
        ids = json.load(open(args.ids))
    else:
        tok = GPT2TokenizerFast.from_pretrained(args.model)
        with open(args.text, encoding="utf-8") as f:
            text = f.read()
        ids = tok(text, return_attention_mask=False)["input_ids"]
    if len(ids) < 2:
        sys.exit(f"{args.text}: the tokenizer in {args.model} produced {len(ids)} tokens")
    text_tokens = len(ids)
    ids_digest = hashlib.sha256(np.asarray(ids, dtype="<u4").tobytes()).hexdigest()
    if args.max_tokens:
        ids = ids[: args.max_tokens]
    ctx = min(args.ctx or positions_limit, positions_limit)
    stride = min(args.stride or ctx, ctx)

    total_nll, scored_total, first_window_nll = 0.0, 0, None
    kept = None
    with torch.no_grad():
        for i, (b, e, scored) in enumerate(windows(len(ids), ctx, stride)):
            x = torch.tensor([ids[b:e]])
            logits = model(x).logits[0].float()
            logp = torch.log_softmax(logits.double(), dim=-1)
            targets = torch.tensor(ids[b + 1:e])
            nll = -logp[:-1].gather(1, targets[:, None])[:, 0]
            window_nll = nll[-scored:]
            total_nll += window_nll.sum().item()
            scored_total += scored
            if i == 0:
                first_window_nll = window_nll.tolist()
                t = e - b
                k = min(args.positions, t)
                # Positions 0 .. t-2: the last position predicts nothing inside the window.
                positions = sorted(set(int(round(j * (t - 2) / max(1, k - 1))) for j in range(k)))
                kept = (positions, logits[positions].numpy().astype("<f4"))

    positions, rows = kept
    rows.tofile(args.out.removesuffix(".json") + ".logits.f32")
    result = {
        "model": os.path.basename(os.path.normpath(args.model)),
        "model_sha256": sha256_file(args.model if gguf else os.path.join(args.model, "model.safetensors")),
        "text": os.path.basename(args.text),
        "text_sha256": sha256_file(args.text),
        "text_tokens": None if args.ids else text_tokens,
        "ids_sha256": ids_digest,
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "ctx": ctx,
        "stride": stride,
        "evaluated_tokens": len(ids),
        "first_window_ids": ids[:ctx],
        "logit_positions": positions,
        "vocab_size": model.config.vocab_size,
        "first_window_nll": first_window_nll,
        "scored_tokens": scored_total,
        "nll_total": total_nll,
        "ppl": math.exp(total_nll / scored_total),
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{args.model}: {len(ids)} tokens evaluated (text: {text_tokens}), ctx {ctx} stride {stride}: "
          f"scored {scored_total}, ppl {result['ppl']:.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
