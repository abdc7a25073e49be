#!/usr/bin/env python3
"""Compares the tensors of two GGUF files byte for byte with the Python `gguf` package: how
many have the same name, type, shape and data bytes.

    /work/venv/bin/python scripts/compare_gguf_tensors.py A.gguf B.gguf

Used by scripts/check-deploy to show that a GGUF file llama.cpp's tools wrote, taken into an
.eqm with `eqconvert --method keep-codes` and exported again, comes back with every tensor's
bytes unchanged. Exits 1 unless all tensors of A are identical in B.
"""
import sys

import gguf

a, b = (gguf.GGUFReader(p) for p in sys.argv[1:3])
theirs = {t.name: t for t in b.tensors}
same, different = 0, []
for t in a.tensors:
    u = theirs.get(t.name)
    if u is not None and u.tensor_type == t.tensor_type and list(u.shape) == list(t.shape) and t.data.tobytes() == u.data.tobytes():
        same += 1
    else:
        different.append(t.name)
types = sorted({t.tensor_type.name for t in a.tensors})
print(f"{same} of {len(a.tensors)} tensors ({', '.join(types)}) identical, byte for byte, in both files"
      + (f"; different or missing: {different[:5]}" if different else ""))
sys.exit(1 if different else 0)
