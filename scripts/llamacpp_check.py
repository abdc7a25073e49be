#!/usr/bin/env python3
"""llama.cpp runs a GGUF file EasyQuant exported, and agrees with EasyQuant on its .eqm.

    llamacpp_check.py MODEL.eqm MODEL.gguf TEXT [--max-tokens N] [--ctx C] [--prompt P] [--generate 16]
                      [--tolerance 0.3] [--json OUT]

Run with llama-cpp-python's interpreter (/work/llamavenv/bin/python); EasyQuant's tools
(.build/release/eqppl, eqgen) are run as subprocesses. Checks, each printed with its figures:

1. tokens: llama.cpp tokenizes TEXT (with the special tokens the file asks for) into the
   same ids as `eqppl --dump-tokens` (the first N);
2. greedy continuation: llama.cpp's argmax decoding of PROMPT equals `eqgen --json`'s
   generated_ids for the first --generate tokens;
3. perplexity: llama.cpp's perplexity on eqppl's windows (C tokens, non-overlapping, each
   token scored once from its left context in the window) is within --tolerance percent of
   `eqppl --compute f32` on the .eqm.

Exits 1 if a check fails. llama.cpp is a reference tool here, never part of EasyQuant.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def windows(n, ctx):
    """eqppl's windows with stride = ctx: (begin, end, scored)."""
    out, previous_end, begin = [], 0, 0
    while begin < n:
        end = min(begin + ctx, n)
        scored = min(end - previous_end, end - begin - 1)
        if scored > 0:
            out.append((begin, end, scored))
        previous_end = end
        if end == n:
            break
        begin += ctx
    return out


def perplexity(llm, ids, ctx, first=None):
    """llama.cpp's perplexity of `ids` on eqppl's windows; with `first` (eqppl's first-window
    logits), also the largest |logit difference| on that window."""
    total, scored_total, shift = 0.0, 0, None
    for b, e, scored in windows(len(ids), ctx):
        llm.reset()
        llm.eval(ids[b:e])
        logits = np.array(llm.scores[: e - b], dtype=np.float64)
        if first is not None and shift is None:
            shift = float(np.abs(logits[: first.shape[0]] - first).max())
        m = logits.max(axis=1, keepdims=True)
        logp = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
        targets = np.array(ids[b + 1:e])
        nll = -logp[np.arange(e - b - 1), targets]
        total += nll[-scored:].sum()
        scored_total += scored
    return math.exp(total / scored_total), scored_total, shift


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("eqm")
    ap.add_argument("gguf")
    ap.add_argument("text")
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--prompt", default="The history of the")
    ap.add_argument("--generate", type=int, default=16)
    ap.add_argument("--tolerance", type=float, default=0.3, help="percent")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()

    import llama_cpp

    with tempfile.TemporaryDirectory() as work:
        ids_path, logits_path = os.path.join(work, "ids.json"), os.path.join(work, "logits.f32")
        ours = json.loads(run([os.path.join(BIN, "eqppl"), a.eqm, a.text, "--max-tokens", str(a.max_tokens), "--ctx", str(a.ctx),
                               "--compute", "f32", "--dump-tokens", ids_path, "--dump-logits", logits_path, "--json",
                               "--threads", str(a.threads)]))
        with open(ids_path) as f:
            ids = json.load(f)
        first = np.fromfile(logits_path, dtype=np.float32).astype(np.float64)
        generated = json.loads(run([os.path.join(BIN, "eqgen"), a.eqm, "--prompt", a.prompt, "--generate", str(a.generate),
                                    "--json", "--compute", "f32", "--ignore-end-of-text", "--threads", str(a.threads)]))

    llm = llama_cpp.Llama(model_path=a.gguf, n_ctx=a.ctx, n_batch=a.ctx, n_ubatch=a.ctx, logits_all=True,
                          n_threads=a.threads, verbose=False)
    first = first.reshape(-1, llm.n_vocab())  # eqppl's first window: positions 0 .. ctx-2
    results = {"eqm": a.eqm, "gguf": a.gguf, "text": a.text, "ctx": a.ctx, "max_tokens": a.max_tokens}
    ok = True

    # 1. Tokens.
    with open(a.text, "rb") as f:
        text = f.read()
    theirs = llm.tokenize(text, add_bos=True, special=False)[: len(ids)]
    same = theirs == ids
    first_diff = next((i for i, (x, y) in enumerate(zip(theirs, ids)) if x != y), None)
    print(f"tokens: llama.cpp {len(theirs)} ids, eqppl {len(ids)}: {'identical' if same else f'differ at {first_diff}'}")
    results["tokens_identical"] = same
    ok &= same

    # 2. Greedy continuation (compared in step 4, once llama.cpp's logit shift is measured).
    prompt_ids = llm.tokenize(a.prompt.encode(), add_bos=True, special=False)
    want = generated["generated_ids"][: a.generate]
    llm.reset()
    llm.eval(prompt_ids)
    greedy, margins = [], []
    for step in range(a.generate):
        scores = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        nxt = int(np.argmax(scores))
        greedy.append(nxt)
        # How much llama.cpp prefers its token over eqgen's (0 where they agree).
        margins.append(float(scores[nxt] - scores[want[step]]) if step < len(want) else 0.0)
        llm.eval([nxt])

    # 3. Perplexity on the same windows and ids; the first window's logits against eqppl's.
    ppl, scored_total, shift = perplexity(llm, ids, a.ctx, first)
    ours_ppl = ours["ppl"]
    change = 100 * (ppl / ours_ppl - 1)
    within = abs(change) <= a.tolerance
    print(f"perplexity on {scored_total} tokens in windows of {a.ctx}: llama.cpp {ppl:.6f}, eqppl --compute f32 {ours_ppl:.6f}: "
          f"{change:+.3f}% ({'within' if within else 'OUTSIDE'} {a.tolerance}%)")
    results.update(perplexity_llamacpp=ppl, perplexity_eqppl=ours_ppl, change_percent=change, scored_tokens=scored_total,
                   perplexity_within=within)
    ok &= within
    # 4. Greedy: identical, or the first difference is a near tie that llama.cpp's logit shift
    # (its activation quantization inside Q8_0/Q4 products) can flip: llama.cpp prefers its
    # token by less than twice the largest logit difference measured in step 3.
    diverge = next((i for i, (x, y) in enumerate(zip(greedy, want)) if x != y), None)
    print(f"greedy {a.generate} tokens after {a.prompt!r}: llama.cpp {greedy}")
    print(f"{'':>{len(a.prompt) + 27}}eqgen     {want}")
    if diverge is None:
        print(f"greedy: identical for all {a.generate} tokens")
        explained = True
    else:
        explained = margins[diverge] <= 2 * shift
        print(f"greedy: identical for the first {diverge} tokens; at token {diverge + 1} llama.cpp prefers {greedy[diverge]} over eqgen's "
              f"{want[diverge]} by {margins[diverge]:.4f}, {'within' if explained else 'BEYOND'} twice its largest logit difference "
              f"from EasyQuant ({shift:.4f}) on the first window: {'a near tie its activation quantization flips' if explained else 'a real disagreement'}")
    results.update(greedy_llamacpp=greedy, greedy_eqgen=want, greedy_identical=diverge is None, greedy_first_difference=diverge,
                   greedy_margin=None if diverge is None else margins[diverge], first_window_max_logit_difference=shift)
    ok &= explained
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    print("all checks passed" if ok else "CHECK FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
