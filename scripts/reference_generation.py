#!/usr/bin/env python3
"""Greedy continuations from Hugging Face transformers, for checking `eqgen`'s decoding.

    /work/venv/bin/python scripts/reference_generation.py MODEL_DIR OUT.json [--new-tokens N]

Runs `GPT2LMHeadModel.generate(do_sample=False)` in float32 on a few fixed prompts and writes
the prompt ids and the generated ids. Generation stops early only at the model's end-of-text
token, as in eqgen.
"""
import argparse
import json

import torch
from transformers import GPT2LMHeadModel, GPT2TokenizerFast

PROMPTS = [
    "The history of the",
    " = Valkyria Chronicles III = \n",
    "In 1999, the company announced that",
    "He said that",
]

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("out")
ap.add_argument("--new-tokens", type=int, default=40)
args = ap.parse_args()
torch.manual_seed(0)
tok = GPT2TokenizerFast.from_pretrained(args.model)
model = GPT2LMHeadModel.from_pretrained(args.model, torch_dtype=torch.float32).eval()
eos = tok.convert_tokens_to_ids("<|endoftext|>")
cases = []
with torch.no_grad():
    for prompt in PROMPTS:
        ids = tok(prompt, return_tensors="pt").input_ids
        out = model.generate(ids, max_new_tokens=args.new_tokens, do_sample=False, eos_token_id=eos,
                             pad_token_id=eos, attention_mask=torch.ones_like(ids))
        cases.append({"prompt": prompt, "prompt_ids": ids[0].tolist(), "generated_ids": out[0, ids.shape[1]:].tolist()})
json.dump({"model": args.model, "new_tokens": args.new_tokens, "end_of_text": eos,
           "transformers": __import__("transformers").__version__, "cases": cases}, open(args.out, "w"), indent=1)
print(f"wrote {args.out}: {len(cases)} greedy continuations of up to {args.new_tokens} tokens")
