#!/usr/bin/env python3
"""Reads EasyQuant's safetensors output with the Python `safetensors` package.

    /work/venv/bin/python scripts/check_safetensors_writer.py [MODEL_DIR]

Converts MODEL_DIR (default fixtures/tiny-gpt2) to .eqm with eqconvert, writes it back as
safetensors in F32, F16 and BF16, opens each with `safetensors.safe_open` (the reference
implementation validates the header and offsets), and checks every tensor against the
values the independent .eqm reader (scripts/eqm_reader.py) decodes. Prints one line per file
and exits non-zero on any difference.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors import safe_open

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "scripts"))
import eqm_reader  # noqa: E402

model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "fixtures/tiny-gpt2")
subprocess.run(["swift", "build", "-c", "release", "--product", "eqconvert"], cwd=root, check=True, capture_output=True)
tool = os.path.join(root, ".build/release/eqconvert")
work = tempfile.mkdtemp()
eqm = os.path.join(work, "m.eqm")
subprocess.run([tool, model, eqm, "--method", "simquant", "--bits", "4", "--granularity", "group:32"], check=True, capture_output=True)
reader = eqm_reader.EQMReader(eqm)
expected = {t.name: reader.values(t) for t in reader.tensors if not t.name.startswith("eqm.")}
ok = True
for dtype, torch_dtype in [("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)]:
    out = os.path.join(work, f"m-{dtype}.safetensors")
    subprocess.run([tool, eqm, out, "--dtype", dtype], check=True, capture_output=True)
    with safe_open(out, framework="pt") as f:
        names = list(f.keys())
        worst = 0.0
        for name in names:
            got = f.get_tensor(name)
            want = torch.from_numpy(np.asarray(expected[name], dtype=np.float32)).to(torch_dtype)
            if got.dtype != torch_dtype or tuple(got.shape) != tuple(want.shape):
                print(f"{out}: {name}: {got.dtype} {tuple(got.shape)}, expected {torch_dtype} {tuple(want.shape)}")
                ok = False
                continue
            worst = max(worst, float((got.float() - want.float()).abs().max()) if got.numel() else 0.0)
        metadata = f.metadata()
    print(f"{dtype}: {len(names)} tensors read by safetensors {__import__('safetensors').__version__}, "
          f"max difference from the independent decode {worst}, metadata {metadata}")
    ok = ok and worst == 0.0 and len(names) == len(expected)
sys.exit(0 if ok else 1)
