#!/usr/bin/env python3
"""Reads a GGUF file `eqconvert` exported with the Python `gguf` package and checks every
tensor against the .eqm it came from, decoded independently by scripts/eqm_reader.py.

    /work/venv/bin/python scripts/check_gguf_export.py MODEL.eqm MODEL.gguf REPORT.json

REPORT.json is `eqconvert MODEL.eqm MODEL.gguf --json`'s output (each tensor's llama.cpp
name, .eqm name, type, route, summary and error figures). For every tensor:

* the file has it under llama.cpp's name with the reported type; `gguf.quants.dequantize`
  decodes it, and it is brought back to the .eqm's layout (GPT-2's Conv1D matrices
  transposed back to [in, out]; Llama's q/k rows un-interleaved head by head);
* exact routes: the values equal, bit for bit, the .eqm's codes with their steps rounded to
  f16 (Q8_0: code·d; Q4_0: d·code; Q4_1: d·q + m with m = f16(-(z + offset)·step));
* every route: max |GGUF - .eqm| equals the reported max abs error exactly and the RMS
  matches the reported one to 1e-9 relative, where the .eqm's values are its dequantized
  codes with LLM.int8's outlier rows put back, or its floats.

Prints one line per route and PASS, or each mismatch and FAIL (exit 1).
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "scripts"))
import eqm_reader  # noqa: E402


def f16(x):
    return np.asarray(x, dtype=np.float64).astype(np.float16).astype(np.float32)


def exact_values(reader, t, ggml_type):
    """What ggml's dequantization must give for an exact mapping of .eqm tensor t (its layout)."""
    rows, cols = t.shape
    codes = reader.codes(t).reshape(rows, cols).astype(np.int64)
    scales = reader.f32_blob(t.scales, "scales").reshape(t.scale_shape)
    zps = reader.f32_blob(t.zero_points, "zero_points").reshape(t.scale_shape) if t.zero_points is not None else None
    bi, bj = np.arange(rows) // t.block[0], np.arange(cols) // t.block[1]
    step = scales[bi[:, None], bj[None, :]]
    d = f16(step)
    if ggml_type in (Q.Q8_0, Q.Q4_0):
        return (codes.astype(np.float32) * d).astype(np.float32)
    offset = 8 if t.signed else 0
    z = zps[bi[:, None], bj[None, :]].astype(np.float64)
    m = f16(-((z + offset) * step.astype(np.float64)))
    return (d * (codes + offset).astype(np.float32) + m).astype(np.float32)


def restore_outliers(reader, by_name, name, values, output_is_rows):
    """LLM.int8: the outlier feature rows put back into matrix `name` (canonical)."""
    layer = name[: -len(".weight")] if name.endswith(".weight") else name
    index = by_name.get("eqm.outliers.%s.index" % layer)
    if index is None:
        return values
    idx = reader.values(index).astype(np.int64)
    w = reader.values(by_name["eqm.outliers.%s.weight" % layer])
    out = values.copy()
    for r, j in enumerate(idx):
        if output_is_rows:
            out[:, j] = w[r]
        else:
            out[j, :] = w[r]
    return out


def main():
    eqm_path, gguf_path, report_path = sys.argv[1:4]
    reader = eqm_reader.EQMReader(eqm_path)
    by_name = {t.name: t for t in reader.tensors}
    with open(report_path) as f:
        report = json.load(f)
    g = gguf.GGUFReader(gguf_path)
    tensors = {t.name: t for t in g.tensors}
    arch = bytes(g.fields["general.architecture"].parts[-1]).decode()
    config = (reader.metadata.get("model") or {}).get("config") or {}
    failures, routes = [], {}

    def canonical(x, name):
        """GGUF layout → the .eqm's."""
        base = name.replace("transformer.", "", 1)
        if arch == "gpt2" and x.ndim == 2 and base.startswith("h.") and base.split(".")[-2] in ("c_attn", "c_proj", "c_fc") \
                and base.endswith(".weight"):
            return x.T
        if arch == "llama" and (".self_attn.q_proj." in base or ".self_attn.k_proj." in base):
            heads = config["num_attention_heads"] if ".q_proj." in base else config.get("num_key_value_heads", config["num_attention_heads"])
            rows = x.shape[0]
            d = rows // heads
            rest = x.shape[1:]
            return x.reshape(heads, d // 2, 2, *rest).swapaxes(1, 2).reshape(rows, *rest)
        return x

    for e in report["tensors"]:
        name, source = e["name"], e["source_name"]
        t, et = tensors.get(name), by_name[source]
        if t is None:
            failures.append(f"{name}: not in the file")
            continue
        if t.tensor_type.name != e["type"]:
            failures.append(f"{name}: type {t.tensor_type.name}, report says {e['type']}")
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(list(reversed([int(n) for n in t.shape]))).astype(np.float32)
        got = canonical(got, source)
        if list(got.shape) != list(et.shape):
            failures.append(f"{name}: shape {list(got.shape)} in the .eqm's layout, .eqm has {list(et.shape)}")
            continue
        want = reader.values(et)
        if et.encoding != "float" and et.shape and len(et.shape) == 2:
            base = source.replace("transformer.", "", 1)
            output_is_rows = not (arch == "gpt2" and base.startswith("h.") and base.endswith(".weight"))
            want = restore_outliers(reader, by_name, base, want, output_is_rows)
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        max_abs, rms = float(diff.max()) if diff.size else 0.0, float(np.sqrt((diff ** 2).mean())) if diff.size else 0.0
        if max_abs != e["max_abs_error"]:
            failures.append(f"{name}: max abs {max_abs!r} but the report says {e['max_abs_error']!r}")
        if abs(rms - e["rms_error"]) > 1e-9 * max(rms, 1e-30) + 1e-18:
            failures.append(f"{name}: rms {rms!r} but the report says {e['rms_error']!r}")
        if e["route"] == "exact":
            exact = exact_values(reader, et, t.tensor_type)
            if not np.array_equal(got, exact):
                failures.append(f"{name}: exact mapping differs from the .eqm codes with f16 steps")
        r = routes.setdefault(e["route"], [0, 0.0, set()])
        r[0] += 1
        r[1] = max(r[1], max_abs)
        r[2].add(e["type"])

    from importlib.metadata import version
    print(f"{gguf_path}: gguf {version('gguf')} read {len(g.tensors)} tensors "
          f"({arch}); {len(report['tensors'])} checked against {os.path.basename(eqm_path)}")
    for route, (n, worst, types) in sorted(routes.items()):
        how = "equal to the .eqm codes with f16 steps, bit for bit; " if route == "exact" else ""
        print(f"  {route}: {n} tensors ({', '.join(sorted(types))}): {how}largest |GGUF - .eqm| {worst:.3g}, as reported")
    for f in failures[:20]:
        print("  MISMATCH " + f)
    print("PASS" if not failures else f"FAIL ({len(failures)} mismatches)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
