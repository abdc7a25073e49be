#!/usr/bin/env python3
"""Size against the entropy bound, per method, code width and zstd level, and whether
another code layout would come closer (scripts/bench-size runs this; see its header).

For each model and each (method, bits, level): eqconvert writes the .eqm, `eqinspect --json`
reports its size and its entropy bound (codes at their order-0 entropy, per tensor, plus
scales, zero points and float tensors as stored). The codes are then read back with the
independent reader (scripts/eqm_reader.py), their order-0 entropy recomputed here as a cross-check
of eqinspect's, and re-laid out in a few ways, each compressed per tensor with zstandard at the same level:

  stored         the codes as the file stores them (row-major; two per byte at 4 bits)
  channel-major  each output channel's codes contiguous (transposes the Conv1D weights, [in, out])
  nibble split   8 bits: all high nibbles, then all low nibbles, each packed two per byte;
                 4 bits: one code per byte instead of two
  byte delta     each byte minus the one before it (mod 256), on the stored form

Nothing here changes the format; it reports what a different layout would buy.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import zstandard

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eqm_reader import EQMReader  # noqa: E402

METHODS = [("absmax", 8), ("zeropoint", 8), ("symquant", 8), ("simquant", 8),
           ("absmax", 4), ("zeropoint", 4), ("symquant", 4), ("simquant", 4)]
LEVELS = [1, 3, 9, 19]


def pack_nibbles(values):
    """Two 4-bit values per byte, element 2i in the low nibble (as .eqm packs codes)."""
    v = (np.asarray(values, dtype=np.uint8) & 0x0F)
    if v.size % 2:
        v = np.append(v, np.uint8(0))
    return (v[0::2] | (v[1::2] << 4)).astype(np.uint8)


def layouts(t, codes, stored):
    """The byte streams of each layout for one quantized tensor."""
    rows, cols = t.shape
    c = codes.reshape(rows, cols)
    raw = (c & 0xFF).astype(np.uint8)  # two's complement low byte
    channel_major = raw.T if t.axis == 1 else raw  # axis 1: one column per output channel
    out = {"stored": stored}
    if t.bits <= 4:
        out["channel-major"] = pack_nibbles(channel_major.reshape(-1))
        out["nibble split"] = raw.reshape(-1) & 0x0F  # one code per byte
    else:
        out["channel-major"] = np.ascontiguousarray(channel_major).reshape(-1)
        flat = raw.reshape(-1)
        out["nibble split"] = np.concatenate([pack_nibbles(flat >> 4), pack_nibbles(flat & 0x0F)])
    s = np.frombuffer(stored, dtype=np.uint8)
    out["byte delta"] = np.diff(s, prepend=np.uint8(0)).astype(np.uint8)
    return out


def study(model, eqconvert, eqinspect, levels, layout_levels, work):
    rows = []
    layout_rows = []
    for method, bits in METHODS:
        for level in levels:
            path = os.path.join(work, "m.eqm")
            subprocess.run([eqconvert, model, path, "--method", method, "--bits", str(bits),
                            "--zstd-level", str(level), "--json"], check=True, stdout=subprocess.DEVNULL)
            report = json.loads(subprocess.run([eqinspect, path, "--json"], check=True, capture_output=True).stdout)
            totals, bound = report["totals"], report["entropy_bound"]
            rows.append({"method": method, "bits": bits, "level": level, "file_bytes": totals["file_bytes"],
                         "bits_per_weight": totals["bits_per_weight"], "bits_per_parameter": totals["bits_per_parameter"],
                         "tensor_bytes": bound["actual_bytes"], "bound_bytes": bound["bound_bytes"],
                         "ratio": bound["actual_over_bound"]})

            if level not in layout_levels:
                continue
            reader = EQMReader(path)
            cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
            sizes = {}
            code_bound = 0.0
            swift_code_bound = sum(t["entropy_bound_bytes"] - t["parameter_bytes"] for t in report["tensors"] if "entropy_bound_bytes" in t)
            file_code_bytes = 0
            for t in reader.tensors:
                if t.encoding != "quantized":
                    continue
                codes = reader.codes(t)
                counts = np.bincount((codes & 0xFF).astype(np.int64), minlength=256)
                p = counts[counts > 0] / codes.size
                code_bound += float(-(p * np.log2(p)).sum()) * codes.size / 8
                stored = reader.blob_bytes(t.data, t.name)
                file_code_bytes += t.data.length
                for name, stream in layouts(t, codes, stored).items():
                    sizes[name] = sizes.get(name, 0) + len(cctx.compress(bytes(stream)))
            # The Swift entropy (eqinspect) and this one must agree.
            assert abs(code_bound - swift_code_bound) <= 1e-6 * max(1.0, code_bound), (code_bound, swift_code_bound)
            layout_rows.append({"method": method, "bits": bits, "level": level, "bound": code_bound,
                                "file": file_code_bytes, **sizes})
            print("  %s %d-bit level %d: %.4f of the bound" % (method, bits, level, rows[-1]["ratio"]), file=sys.stderr)
    return rows, layout_rows


def system_zstd():
    try:
        out = subprocess.run(["zstd", "--version"], capture_output=True, text=True).stdout
        return out.split("v")[-1].split(",")[0].strip()
    except OSError:
        return "?"


def mb(n):
    return "%.3f MB" % (n / 1e6) if n < 1e7 else "%.1f MB" % (n / 1e6)


def main():
    eqconvert, eqinspect, models = sys.argv[1], sys.argv[2], sys.argv[3:]
    with tempfile.TemporaryDirectory() as work:
        for spec in models:
            # MODEL[:LEVELS[:LAYOUT_LEVELS]]; re-compressing four layouts at level 19 in Python takes
            # minutes per configuration on a 124M model, so big models may study layouts at fewer levels.
            parts = spec.split(":")
            model = parts[0]
            levels = [int(x) for x in parts[1].split(",")] if len(parts) > 1 and parts[1] else LEVELS
            layout_levels = [int(x) for x in parts[2].split(",")] if len(parts) > 2 and parts[2] else levels
            rows, layout_rows = study(model, eqconvert, eqinspect, levels, layout_levels, work)
            weights_file = model if model.endswith(".safetensors") else os.path.join(model, "model.safetensors")
            print("### `%s` (%s)\n" % (model, mb(os.path.getsize(weights_file))))
            print("Per-channel granularity. Bound = codes at their order-0 entropy (per tensor) + scales, zero points and float tensors as stored.\n")
            print("| method | bits | zstd level | file size | bits/weight (quantized) | bits/parameter (all) | tensor data | entropy bound | actual / bound |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for r in rows:
                print("| %s | %d | %d | %s | %.3f | %.3f | %s | %s | %.2f%% |" % (
                    r["method"], r["bits"], r["level"], mb(r["file_bytes"]), r["bits_per_weight"], r["bits_per_parameter"],
                    mb(r["tensor_bytes"]), mb(r["bound_bytes"]), 100 * r["ratio"]))
            print("\nCodes only (scales, zero points and float tensors left out), as %% of the codes' order-0 bound. "
                  "\"in the file\": eqconvert's code blobs (system libzstd %s); the layouts: each compressed per tensor "
                  "at the same level by python-zstandard (bundled libzstd %s):\n" % (system_zstd(), zstandard.ZSTD_VERSION and
                  ".".join(map(str, zstandard.ZSTD_VERSION))))
            names = ["stored", "channel-major", "nibble split", "byte delta"]
            print("| method | bits | zstd level | codes bound | in the file | " + " | ".join(names) + " | best layout |")
            print("|---|---:|---:|---:|---:|" + "---:|" * len(names) + "---|")
            for r in layout_rows:
                if r["level"] not in layout_levels:
                    continue
                best = min(names, key=lambda n: r[n])
                print("| %s | %d | %d | %s | %.2f%% | " % (r["method"], r["bits"], r["level"], mb(r["bound"]), 100 * r["file"] / r["bound"]) +
                      " | ".join("%.2f%%" % (100 * r[n] / r["bound"]) for n in names) + " | %s |" % best)
            print()


if __name__ == "__main__":
    main()
