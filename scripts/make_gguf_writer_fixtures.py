#!/usr/bin/env python3
"""Writes the GGUF writer's encoder reference into fixtures/gguf-writer/.

    /work/venv/bin/python scripts/make_gguf_writer_fixtures.py

quantize_reference.safetensors holds, for each case C (a float32 matrix, shape in PyTorch
order), the input as `C.input` and, for each type T of F16, BF16, Q8_0, Q4_0 and Q4_1, the
bytes `gguf.quants.quantize(input, T)` makes, as `C.T` (uint8, one row of blocks per input
row). Its `__metadata__["errors"]` is JSON: for each "C.T", the largest absolute difference
and the root mean square difference (float64) between `gguf.quants.dequantize` of those
bytes and the input: what EasyQuant's encoder must report as its error.

Cases:
* normal: 4 x 256 Gaussian weights (sd 0.05, every 37th value x8: outliers, so block
  scales differ), the common case.
* edges: one 32-element block per row, each built to hit a rule of the reference
  quantizers: all zeros, constant blocks (Q4_1's d = 0), a single non-zero, the value of
  largest magnitude negative (Q4_0's d > 0), two values of equal magnitude and opposite sign
  (the first wins), Q8_0 halves (d = 1: roundf rounds away from zero), Q4_0 and Q4_1
  truncation steps, steps that are f16 subnormals or round to 0, values near f16's maximum,
  f16 and bf16 ties (round to even), signed zeros and f16 subnormal values.
* row64: one row of 64 (a 1-D tensor's worth), uniform in [-3, 5) (asymmetric range).

Takes a second; the output is byte-for-byte reproducible (numpy's default_rng, fixed seed).
"""
import argparse
import importlib.metadata
import json
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from safetensors.numpy import save_file

TYPES = {"F16": Q.F16, "BF16": Q.BF16, "Q8_0": Q.Q8_0, "Q4_0": Q.Q4_0, "Q4_1": Q.Q4_1}


def normal_case(rng):
    w = rng.standard_normal((4, 256)).astype(np.float32) * np.float32(0.05)
    w.reshape(-1)[::37] *= np.float32(8.0)
    return w


def edge_rows():
    rows = []

    def row(values, fill=0.0):
        r = np.full(32, fill, dtype=np.float32)
        r[:len(values)] = np.asarray(values, dtype=np.float32)
        rows.append(r)

    row([])                                              # all zeros: d = 0, id = 0
    row([], fill=0.75)                                   # constant: Q4_1 d = 0, m = 0.75
    row([], fill=-2.5)                                   # constant negative
    row([0.0] * 7 + [1.25])                              # a single non-zero
    row([-4.0, 3.0, 2.0, -1.0, 0.5, 3.9])                # largest magnitude negative: Q4_0 d = 0.5 > 0
    row([0.1, 2.0, -0.3, -2.0, 1.0])                     # |2| twice: the first (+2) sets Q4_0's d
    row([0.1, -2.0, -0.3, 2.0, 1.0])                     # ... and here -2 does
    row([127.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5, 63.5, -63.5, 0.49999997])  # Q8_0: d = 1, halves round away
    row([-8.0, -7.5, -0.5, 0.5, 6.5, 7.0, 7.49, -3.25])  # Q4_0: d = 1, x + 8.5 truncated
    row([0.0, 15.0, 0.5, 1.5, 14.5, 7.49, 7.51])         # Q4_1: d = 1, m = 0, x + 0.5 truncated
    row(np.linspace(-5e-4, 4e-4, 32))                    # Q8_0 step 3.9e-6: an f16 subnormal
    row(np.linspace(-1e-6, 1e-6, 32))                    # steps that round to 0 in f16
    row([60000.0, -59999.0, 65504.0, -65504.0, 65519.0, 1.0, -0.001])  # near f16's max: 65519 rounds down
    row([1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, -(1 + 2.0 ** -11), 2 + 2.0 ** -10, 1 + 2.0 ** -8,
         1 + 3 * 2.0 ** -8, 3 * 2.0 ** -25, 2.0 ** -25, 1e-7, -6e-8])  # f16 / bf16 ties, f16 subnormals
    row([-0.0, 0.0, -0.0, 1e-45, -1e-45, 1e-38])         # signed zeros, f32 subnormals
    row(np.linspace(-1.0, 3.0, 32))                      # an even ramp (Q4_1 codes 0..15 evenly)
    return np.stack(rows)


def row64_case(rng):
    return rng.uniform(-3.0, 5.0, size=(1, 64)).astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                 "fixtures", "gguf-writer"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(20260301)
    cases = {"normal": normal_case(rng), "edges": edge_rows(), "row64": row64_case(rng)}

    tensors, errors = {}, {}
    for name, x in cases.items():
        assert x.dtype == np.float32 and np.all(np.isfinite(x))
        tensors[name + ".input"] = x
        for tname, qtype in TYPES.items():
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                q = gguf.quants.quantize(x, qtype)
            raw = np.ascontiguousarray(q).view(np.uint8).reshape(x.shape[0], -1)
            back = gguf.quants.dequantize(raw, qtype).astype(np.float32).reshape(x.shape)
            assert np.all(np.isfinite(back)), (name, tname)
            diff = np.abs(back.astype(np.float64) - x.astype(np.float64))
            errors[name + "." + tname] = {"max_abs": float(diff.max()), "rms": float(np.sqrt(np.mean(diff * diff)))}
            tensors[name + "." + tname] = raw
            print("%-8s %-5s %5d bytes  max|err| %.6g  rms %.6g" % (name, tname, raw.size, diff.max(), np.sqrt(np.mean(diff * diff))))
    path = os.path.join(args.out, "quantize_reference.safetensors")
    save_file(tensors, path, metadata={"errors": json.dumps(errors, sort_keys=True),
                                       "made_by": "scripts/make_gguf_writer_fixtures.py, gguf %s, numpy %s" % (
                                           importlib.metadata.version("gguf"), np.__version__)})
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
