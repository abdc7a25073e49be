#!/usr/bin/env python3
"""Checks EasyQuant's GGUF reader on a real model against the `gguf` package.

    swift build -c release --product eqinspect
    /work/venv/bin/python scripts/check_gguf_reader.py MODEL.gguf [--eqinspect .build/release/eqinspect]

Runs `eqinspect MODEL.gguf --json --stats` once, reads the same file with `gguf.GGUFReader`, and
compares:
  * the header: version, alignment, data section start;
  * the metadata: keys in file order, each value's type, array element types and lengths,
    and every scalar value (floats exactly, as f32/f64);
  * the tensors: names in file order, ggml types, shapes (EasyQuant's PyTorch order is
    GGUF's dims reversed), byte counts;
  * per tensor, the statistics of EasyQuant's dequantized values against numpy's over
    `gguf.quants.dequantize`: min and max exactly, mean and sum (mean x count) to 1e-6
    relative, std to 1e-6 relative, and no non-finite values.
Prints one line per kind of check and the worst differences; exits 1 on any mismatch.
It writes nothing. The model itself is never committed.
"""
import argparse
import json
import subprocess
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as V

NAMES = {V.UINT8: "u8", V.INT8: "i8", V.UINT16: "u16", V.INT16: "i16", V.UINT32: "u32", V.INT32: "i32",
         V.UINT64: "u64", V.INT64: "i64", V.FLOAT32: "f32", V.FLOAT64: "f64", V.BOOL: "bool",
         V.STRING: "string", V.ARRAY: "array"}


def relative(a, b):
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--eqinspect", default=".build/release/eqinspect")
    parser.add_argument("--tolerance", type=float, default=1e-6)
    args = parser.parse_args()

    out = subprocess.run([args.eqinspect, args.model, "--json", "--stats"], check=True, capture_output=True, text=True)
    report = json.loads(out.stdout)
    reader = gguf.GGUFReader(args.model)
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)
            print("MISMATCH", what)

    # Header.
    version = int(reader.fields["GGUF.version"].parts[0][0])
    check(report["gguf"]["version"] == str(version), f"version {report['gguf']['version']} vs {version}")
    check(report["gguf"]["alignment"] == reader.alignment, f"alignment {report['gguf']['alignment']} vs {reader.alignment}")
    check(report["gguf"]["data_start"] == reader.data_offset, f"data start {report['gguf']['data_start']} vs {reader.data_offset}")
    print(f"header: version {version}, alignment {reader.alignment}, data section at byte {reader.data_offset}")

    # Metadata.
    fields = [f for f in reader.fields.values() if not f.name.startswith("GGUF.")]
    meta = report["gguf"]["metadata"]
    check([m["key"] for m in meta] == [f.name for f in fields], "metadata keys or their order")
    scalars = arrays = 0
    for m, f in zip(meta, fields):
        check(m["type"] == NAMES[f.types[0]], f"type of {f.name}: {m['type']} vs {NAMES[f.types[0]]}")
        if f.types[0] == V.ARRAY:
            check(m["element_type"] == NAMES[f.types[1]] if len(f.types) > 1 else True, f"element type of {f.name}")
            if f.types[1:2] != [V.ARRAY]:  # GGUFReader flattens nested arrays: their length is not comparable
                check(m["count"] == len(f.data), f"length of {f.name}: {m['count']} vs {len(f.data)}")
            arrays += 1
        else:
            want = f.contents()
            got = m["value"]
            if f.types[0] == V.FLOAT32:
                got, want = np.float32(got), np.float32(want)
            elif f.types[0] == V.UINT64 and isinstance(got, str):
                got = int(got)
            check(got == want, f"value of {f.name}: {got!r} vs {want!r}")
            scalars += 1
    print(f"metadata: {len(meta)} keys in file order ({scalars} scalar values equal, {arrays} arrays with equal type and length)")

    # Tensors and their values.
    tensors = report["tensors"]
    check([t["name"] for t in tensors] == [t.name for t in reader.tensors], "tensor names or their order")
    worst = {"mean": (0.0, ""), "sum": (0.0, ""), "std": (0.0, "")}
    exact = 0
    types = {}
    for mine, ref in zip(tensors, reader.tensors):
        name = ref.name
        shape = [int(d) for d in reversed(ref.shape)]
        check(mine["storage"] == ref.tensor_type.name, f"{name}: type {mine['storage']} vs {ref.tensor_type.name}")
        check(mine["shape"] == shape, f"{name}: shape {mine['shape']} vs {shape}")
        check(mine["stored_bytes"] == int(ref.n_bytes), f"{name}: bytes {mine['stored_bytes']} vs {int(ref.n_bytes)}")
        values = gguf.quants.dequantize(ref.data, ref.tensor_type).astype(np.float64).reshape(-1)
        types[ref.tensor_type.name] = types.get(ref.tensor_type.name, 0) + 1
        check(mine["non_finite"] == 0 and np.isfinite(values).all(), f"{name}: non-finite values")
        check(mine["min"] == values.min() and mine["max"] == values.max(),
              f"{name}: min/max {mine['min']}/{mine['max']} vs {values.min()}/{values.max()}")
        if mine["min"] == values.min() and mine["max"] == values.max():
            exact += 1
        n = values.size
        for key, got, want in [("mean", mine["mean"], values.mean()), ("sum", mine["mean"] * n, values.sum()),
                               ("std", mine["std"], values.std())]:
            r = relative(got, want)
            if r > worst[key][0]:
                worst[key] = (r, name)
            check(r <= args.tolerance, f"{name}: {key} {got!r} vs {want!r} (relative {r:.2e})")
    print(f"tensors: {len(tensors)} ({', '.join(f'{k} {v}' for k, v in types.items())}); names, types, shapes and bytes "
          f"compared; min and max equal in {exact}")
    for key, (r, name) in worst.items():
        print(f"worst relative difference of the {key}: {r:.3e}" + (f" ({name})" if name else ""))
    print("PASS" if not failures else f"FAIL: {len(failures)} mismatches")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
