#!/usr/bin/env python3
"""Write randomly initialised GPT-2 small (124M) and medium (355M) checkpoints.

Run by hand:

    /work/venv/bin/python scripts/make_gpt2_shapes.py            # both sizes
    /work/venv/bin/python scripts/make_gpt2_shapes.py 124m       # only one
    /work/venv/bin/python scripts/make_gpt2_shapes.py --force    # rewrite even if present

The real GPT-2 weights are not available offline, but the converter, the memory use and the
speed of EasyQuant on real sizes can still be exercised with checkpoints of exactly GPT-2's
shapes, names and file layout. These are random (seeded), so their perplexity is meaningless
(about the vocabulary size); use them for shapes, throughput and round trips only.

Writes, outside the repository (they are 0.5 and 1.4 GB, never commit them):
    ${EQ_CACHE:-$HOME/.cache/easyquant}/gpt2-124m-random/
    ${EQ_CACHE:-$HOME/.cache/easyquant}/gpt2-355m-random/
each with what `GPT2LMHeadModel.save_pretrained(dir, safe_serialization=True)` writes
(config.json, generation_config.json, model.safetensors), the real GPT-2 tokenizer files
(vocab.json, merges.txt, copied from the shared data) and made_by.json (seed, versions,
parameter count, file sizes and sha256).

Idempotent: a size whose folder is complete is skipped unless --force. A folder is built
under a temporary name and renamed into place when complete, so an interrupted run never
leaves a folder that looks complete.
"""

import argparse
import hashlib
import json
import os
import shutil
import time

# Other jobs share the cores; spinning OpenMP workers would slow everything down.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {
    "124m": dict(n_embd=768, n_layer=12, n_head=12),
    "355m": dict(n_embd=1024, n_layer=24, n_head=16),
}
EXPECTED_FILES = ["config.json", "model.safetensors", "vocab.json", "merges.txt", "made_by.json"]


def shared_data(rel):
    """../shared/data beside the repository if present, else /work/shared/data."""
    beside = os.path.normpath(os.path.join(REPO, "..", "shared", "data", rel))
    return beside if os.path.exists(beside) else os.path.join("/work/shared/data", rel)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def make(size, out_root, tokenizer_dir, seed, force):
    final = os.path.join(out_root, f"gpt2-{size}-random")
    if not force and all(os.path.exists(os.path.join(final, f)) for f in EXPECTED_FILES):
        print(f"{final}: present, skipped (use --force to rewrite)")
        return
    t0 = time.time()
    building = final + ".partial"
    shutil.rmtree(building, ignore_errors=True)

    # GPT-2's published configuration for this size; everything else is the default.
    config = GPT2Config(vocab_size=50257, n_positions=1024, activation_function="gelu_new",
                        layer_norm_epsilon=1e-5, bos_token_id=50256, eos_token_id=50256,
                        **SIZES[size])
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(building, safe_serialization=True)
    del model
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(building, name))

    files = {}
    for name in sorted(os.listdir(building)):
        path = os.path.join(building, name)
        files[name] = {"bytes": os.path.getsize(path), "sha256": sha256_file(path)}
    made_by = {
        "script": "scripts/make_gpt2_shapes.py",
        "what": f"GPT-2 {size} shapes, random initialisation (transformers' default), not trained",
        "seed": seed,
        "parameters": n_params,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "config": {k: config.to_dict()[k] for k in
                   ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "activation_function")},
        "tokenizer": "real GPT-2 vocab.json/merges.txt copied from " + tokenizer_dir,
        "files": files,
    }
    with open(os.path.join(building, "made_by.json"), "w", encoding="utf-8") as f:
        json.dump(made_by, f, indent=1)
        f.write("\n")

    if os.path.exists(final):
        shutil.rmtree(final)
    os.rename(building, final)
    print(f"{final}: {n_params} parameters, model.safetensors {files['model.safetensors']['bytes']} "
          f"bytes (sha256 {files['model.safetensors']['sha256']}), {time.time() - t0:.0f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", help="which of %s (default: all)" % ", ".join(SIZES))
    ap.add_argument("--out-root", default=os.path.join(
        os.environ.get("EQ_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "easyquant")))
    ap.add_argument("--tokenizer", default=shared_data("gpt2-tokenizer"),
                    help="folder with the real GPT-2 vocab.json and merges.txt")
    ap.add_argument("--seed", type=int, default=124355)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    unknown = [s for s in args.sizes if s not in SIZES]
    if unknown:
        ap.error(f"unknown size {unknown}; choose from {list(SIZES)}")
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out_root, exist_ok=True)
    print(f"torch {torch.__version__}  transformers {transformers.__version__}  seed {args.seed}")
    for size in args.sizes or list(SIZES):
        make(size, args.out_root, args.tokenizer, args.seed, args.force)


if __name__ == "__main__":
    main()
