#!/usr/bin/env python3
"""Write small safetensors files with known contents, for the Swift reader's tests.

Run by hand (takes a second):

    /work/venv/bin/python scripts/make_safetensors_fixtures.py

Writes (relative to the repository, wherever the script is run from):
    fixtures/safetensors/all_dtypes.safetensors  one tensor per safetensors dtype
    fixtures/safetensors/all_dtypes.json         what a correct reader must return
    fixtures/safetensors/README.md

The file is written by the reference implementation (`safetensors.torch.save_file`), so a
reader that agrees with all_dtypes.json agrees with the format as the ecosystem writes it.
The values are chosen to reach the edges of each type: extremes, subnormals, negative zero,
values that round when narrowed (0.1 in F16/BF16), int64 values a double cannot hold, an
empty tensor and a 0-d scalar. The expected values are read back from the tensors that were
saved, so F16/BF16 entries are the exact values after rounding, written as plain floats.
"""

import argparse
import hashlib
import json
import os
import struct

import safetensors
import torch
from safetensors.torch import load_file, save_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (torch dtype, shape, values in row-major order)
TENSORS = {
    "f64": (torch.float64, [2, 3],
            [0.0, -1.5, 1 / 3, 1e300, -2.2250738585072014e-308, 5e-324]),  # min normal, min subnormal
    "f32": (torch.float32, [5],
            [1.0, -0.1, 3.4028234663852886e38, 1.401298464324817e-45, 16777217.0]),  # max, min subnormal, 2^24+1 rounds
    "f16": (torch.float16, [2, 2, 2],
            [1.0, -2.5, 65504.0, 6.103515625e-05, 5.960464477539063e-08, 0.1, 1 / 3, -1000.7]),
    "bf16": (torch.bfloat16, [6],
             [1.0, -0.0, 0.1, -3.14159, 3.3895313892515355e38, 1e-39]),  # max, a subnormal
    "i64": (torch.int64, [4],
            [-9223372036854775808, 9223372036854775807, -9007199254740993, 0]),  # 2^53+1: not a double
    "i32": (torch.int32, [], [-123456789]),  # 0-d scalar
    "i16": (torch.int16, [3], [-32768, 32767, -2]),
    "i8": (torch.int8, [2, 3], [-128, 127, -1, 0, 1, 42]),
    "u8": (torch.uint8, [0, 3], []),  # empty
    "bool": (torch.bool, [2, 2], [True, False, False, True]),
}
SAFETENSORS_DTYPE = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
                     torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
                     torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
METADATA = {"format": "pt", "purpose": "EasyQuant safetensors reader fixture: one tensor per dtype"}


def as_json_numbers(t):
    """Flat row-major list of the stored values as JSON numbers (floats exact, ints exact,
    BOOL as 0/1)."""
    flat = t.reshape(-1)
    if t.dtype == torch.bool:
        return [int(v) for v in flat.tolist()]
    if t.dtype.is_floating_point:
        # widening to float64 is exact for every float type here, so no rounding sneaks in
        return [float(v) for v in flat.to(torch.float64).tolist()]
    return [int(v) for v in flat.tolist()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "fixtures", "safetensors"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    tensors = {}
    for name, (dtype, shape, values) in TENSORS.items():
        if dtype.is_floating_point and dtype != torch.float64:
            # narrow through float32 (round to nearest even) the way a model's weights are converted
            t = torch.tensor(values, dtype=torch.float64).to(torch.float32).to(dtype)
        else:
            t = torch.tensor(values, dtype=dtype)
        tensors[name] = t.reshape(shape).contiguous()

    st_path = os.path.join(args.out, "all_dtypes.safetensors")
    save_file(tensors, st_path, metadata=METADATA)

    # Read back with the reference implementation and parse the header by hand, to record
    # where each tensor landed.
    back = load_file(st_path)
    with open(st_path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_len])
    assert header["__metadata__"] == METADATA

    expected = {
        "about": "Expected contents of all_dtypes.safetensors (written by "
                 "scripts/make_safetensors_fixtures.py with safetensors.torch.save_file). "
                 "values: flat, row-major; floats are the exact stored values (F16/BF16 after "
                 "rounding); BOOL as 0/1; data_offsets as in the header (relative to the end of "
                 "the header).",
        "file": "all_dtypes.safetensors",
        "bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "header_length": header_len,
        "safetensors_version": safetensors.__version__,
        "torch_version": torch.__version__,
        "__metadata__": METADATA,
        "tensors": {},
    }
    for name, t in tensors.items():
        assert torch.equal(back[name], t) and back[name].dtype == t.dtype
        entry = header[name]
        assert entry["dtype"] == SAFETENSORS_DTYPE[t.dtype] and entry["shape"] == list(t.shape)
        expected["tensors"][name] = {
            "dtype": entry["dtype"],
            "shape": entry["shape"],
            "data_offsets": entry["data_offsets"],
            "values": as_json_numbers(t),
        }
        print(f"{name:5s} {entry['dtype']:5s} shape {str(entry['shape']):10s} "
              f"offsets {entry['data_offsets']}  values {expected['tensors'][name]['values']}")

    json_path = os.path.join(args.out, "all_dtypes.json")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(st_path, REPO)}: {len(blob)} bytes, header {header_len} bytes, "
          f"sha256 {expected['sha256']}")
    print(f"wrote {os.path.relpath(json_path, REPO)}")


if __name__ == "__main__":
    main()
