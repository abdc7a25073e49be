#!/usr/bin/env python3
"""Compares EasyQuant's logits and perplexity with the reference from reference_logits.py.

    compare_logits.py REF.json EQPPL_DUMP.f32 EQPPL.json

REF.json and REF.logits.f32 come from reference_logits.py; EQPPL_DUMP.f32 is what
`eqppl --dump-logits` wrote (rows for positions 0..ctx-2 of the first window) and EQPPL.json
is `eqppl --json`. Prints, per kept position, the relative error max|a-b| / max|b| and the
maximum over positions; and the relative difference of the perplexities. Exit status 1 if the
logits differ by more than 1e-4 or the perplexities by more than 0.01%.
"""
import json
import sys

import numpy as np

ref = json.load(open(sys.argv[1]))
vocab = ref["vocab_size"]
ref_rows = np.fromfile(sys.argv[1].removesuffix(".json") + ".logits.f32", dtype="<f4").reshape(-1, vocab)
ours = np.memmap(sys.argv[2], dtype="<f4", mode="r").reshape(-1, vocab)
run = json.load(open(sys.argv[3]))

worst = 0.0
for pos, r in zip(ref["logit_positions"], ref_rows):
    o = ours[pos].astype(np.float64)
    rel = float(np.max(np.abs(o - r)) / np.max(np.abs(r)))
    worst = max(worst, rel)
ppl_rel = abs(run["ppl"] - ref["ppl"]) / ref["ppl"]
print(f"model              {ref['model']} (sha256 {ref['model_sha256'][:16]}...)")
same_ids = ref["text_tokens"] == run["text_tokens"] if ref["text_tokens"] is not None else ref["evaluated_tokens"] == run["evaluated_tokens"]
if ref["text_tokens"] is None:
    print(f"text               {ref['text']}: the same {ref['evaluated_tokens']} token ids fed to both (eqppl --dump-tokens)")
else:
    print(f"text               {ref['text']}: {ref['text_tokens']} tokens (transformers) / {run['text_tokens']} (EasyQuant)")
print(f"positions compared {len(ref['logit_positions'])} of the first window ({ref['ctx']} tokens)")
print(f"max relative error {worst:.3e}   (bound 1e-4)")
print(f"ppl transformers   {ref['ppl']:.6f}  ({ref['scored_tokens']} tokens scored, ctx {ref['ctx']}, stride {ref['stride']})")
print(f"ppl EasyQuant      {run['ppl']:.6f}  ({run['scored_tokens']} tokens scored)")
print(f"ppl difference     {100 * ppl_rel:.5f}%   (bound 0.01%)")
ok = worst <= 1e-4 and ppl_rel <= 1e-4 and same_ids
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
