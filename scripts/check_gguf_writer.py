#!/usr/bin/env python3
"""Reads GGUF files EasyQuant's writer made with the Python `gguf` package, and checks
every byte of tensor data against an independent computation.

    /work/venv/bin/python scripts/check_gguf_writer.py [--skip-export]

Two files are checked, each beside the .eqm it was made from and the writer's report (the
type, route, one-line summary and error figures of every tensor):

* fixtures/gguf-writer/written.gguf (committed; the Swift test GGUFWriterFileTests rebuilds
  it byte for byte): a metadata key of every value type, and tensors of every route.
* the tiny GPT-2 fixture exported by GGUFWriterFileTests.testTinyGPT2ExportReadsBackAsReported
  into a temporary folder (the script runs that test with EASYQUANT_GGUF_CHECK_DIR; it
  builds the tests in release mode first, which takes minutes), with its 2048-token
  vocabulary and merges as string arrays. --skip-export checks only the committed file.

For each file, `gguf.GGUFReader` must open it and find: version 3 and the alignment; the
metadata keys in order, each value's type, element type and exact value as the report lists
them; the tensors in order with the report's ggml types, shapes (GGUF dims reversed) and byte
counts. Then, for each tensor, with the .eqm decoded by scripts/eqm_reader.py:

* float input, requantized and dequantized tensors: the tensor's bytes equal
  `gguf.quants.quantize` (or numpy's F32/F16 conversion) of the .eqm's values;
* exact mappings: `gguf.quants.dequantize` of the tensor equals, bit for bit, the .eqm's
  codes with its steps rounded to f16 (Q8_0: q·d; Q4_0: d·(q − 8) with q = code + 8; Q4_1:
  d·q + m with m = f16(−(z + offset)·step) from the exact product);
* the report's max abs error equals max |dequantized − .eqm value| exactly, its RMS to 1e-9.

With --ggml (found automatically where llama-cpp-python is installed in /work/llamavenv),
llama.cpp's own C code checks each file too, through ctypes: `gguf_init_from_file` must
accept it and see the same keys, tensors, types and offsets; ggml's `to_float` must decode
every tensor exactly as `gguf.quants.dequantize` does; and ggml's reference quantizers
(`from_float_ref`) must make our bytes for every tensor that was not mapped exactly.

For the export it also prints, per exact mapping, the error that requantizing the .eqm's
values to the same type with ggml's reference quantizer would have added instead.

Prints one line per file and PASS, or each mismatch and FAIL (exit 1). Writes nothing but the
temporary export, which it removes unless --keep.
"""
import argparse
import ctypes
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "scripts"))
import eqm_reader  # noqa: E402

NAMES = {V.UINT8: "u8", V.INT8: "i8", V.UINT16: "u16", V.INT16: "i16", V.UINT32: "u32", V.INT32: "i32",
         V.UINT64: "u64", V.INT64: "i64", V.FLOAT32: "f32", V.FLOAT64: "f64", V.BOOL: "bool",
         V.STRING: "string", V.ARRAY: "array"}


def canonical(vtype, value):
    """The report's form of a scalar (GGUFTest.canonical in the Swift tests)."""
    if vtype == V.FLOAT32:
        return {"type": "f32", "value": "0x%08x" % int(np.array(value, dtype=np.float32).view(np.uint32))}
    if vtype == V.FLOAT64:
        return {"type": "f64", "value": "0x%016x" % int(np.array(value, dtype=np.float64).view(np.uint64))}
    if vtype == V.BOOL:
        return {"type": "bool", "value": bool(value)}
    if vtype == V.STRING:
        return {"type": "string", "value": value}
    return {"type": NAMES[vtype], "value": str(int(value))}


def field_canonical(f):
    kind = V(int(f.parts[2][0]))  # the stored type tag
    if kind != V.ARRAY:
        return canonical(kind, f.contents())
    element = V(int(f.parts[3][0]))  # stored even for empty arrays, where f.types omits it
    return {"type": "array", "element": NAMES[element], "values": [canonical(element, v) for v in f.contents()]}


def f16(x):
    return np.asarray(x, dtype=np.float64).astype(np.float16).astype(np.float32)


def exact_values(reader, t, ggml_type):
    """What ggml's dequantization must give for an exact mapping of eqm tensor t."""
    rows, cols = t.shape
    codes = reader.codes(t).reshape(rows, cols).astype(np.int64)
    scales = reader.f32_blob(t.scales, "scales").reshape(t.scale_shape)
    zps = reader.f32_blob(t.zero_points, "zero_points").reshape(t.scale_shape) if t.zero_points is not None else None
    bi = np.arange(rows) // t.block[0]
    bj = np.arange(cols) // t.block[1]
    step = scales[bi[:, None], bj[None, :]]
    d = f16(step)
    if ggml_type == Q.Q8_0:
        return (codes.astype(np.float32) * d).astype(np.float32)
    if ggml_type == Q.Q4_0:
        return (d * (codes + 8 - 8).astype(np.float32)).astype(np.float32)
    offset = 8 if t.signed else 0
    z = zps[bi[:, None], bj[None, :]].astype(np.float64)
    m = f16(-((z + offset) * step.astype(np.float64)))
    return (d * (codes + offset).astype(np.float32) + m).astype(np.float32)


class GGML:
    """llama.cpp's own GGUF reader and block codecs, called through ctypes from the
    libggml-base shared library that llama-cpp-python installs (no Python in between)."""

    class Params(ctypes.Structure):
        _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]

    class Traits(ctypes.Structure):
        _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64), ("blck_size_interleave", ctypes.c_int64),
                    ("type_size", ctypes.c_size_t), ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                    ("from_float_ref", ctypes.c_void_p)]

    ROW = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)

    def __init__(self, path):
        self.path = path
        lib = self.lib = ctypes.CDLL(path)
        lib.gguf_init_from_file.restype = ctypes.c_void_p
        lib.gguf_init_from_file.argtypes = [ctypes.c_char_p, GGML.Params]
        lib.gguf_free.argtypes = [ctypes.c_void_p]
        for name, res in [("gguf_get_n_tensors", ctypes.c_int64), ("gguf_get_n_kv", ctypes.c_int64),
                          ("gguf_get_data_offset", ctypes.c_size_t), ("gguf_get_alignment", ctypes.c_size_t)]:
            getattr(lib, name).restype = res
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        for name, res in [("gguf_get_tensor_name", ctypes.c_char_p), ("gguf_get_tensor_offset", ctypes.c_size_t),
                          ("gguf_get_tensor_type", ctypes.c_int), ("gguf_get_key", ctypes.c_char_p)]:
            getattr(lib, name).restype = res
            getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_int64]
        lib.ggml_get_type_traits.restype = ctypes.POINTER(GGML.Traits)
        lib.ggml_get_type_traits.argtypes = [ctypes.c_int]

    def to_float(self, ttype, raw, count):
        if ttype == Q.F32:
            return raw.view(np.float32).copy()
        out = np.empty(count, dtype=np.float32)
        GGML.ROW(self.lib.ggml_get_type_traits(int(ttype)).contents.to_float)(raw.ctypes.data, out.ctypes.data, count)
        return out

    def from_float(self, ttype, values, nbytes):
        x = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
        if ttype == Q.F32:
            return x.view(np.uint8).copy()
        out = np.zeros(nbytes, dtype=np.uint8)
        GGML.ROW(self.lib.ggml_get_type_traits(int(ttype)).contents.from_float_ref)(x.ctypes.data, out.ctypes.data, x.size)
        return out

    def check(self, gguf_path, eqm, report, check):
        """gguf_init_from_file accepts the file and sees what gguf-py saw; ggml's to_float
        gives gguf-py's values bit for bit; its reference quantizers (from_float_ref) give
        our bytes for every tensor that was not mapped exactly."""
        ctx = self.lib.gguf_init_from_file(gguf_path.encode(), GGML.Params(True, None))
        check(bool(ctx), f"llama.cpp's gguf_init_from_file refuses {gguf_path}")
        if not ctx:
            return
        reader = gguf.GGUFReader(gguf_path)
        entries = report["tensors"]
        n = self.lib.gguf_get_n_tensors(ctx)
        check(n == len(entries), f"ggml sees {n} tensors")
        check(self.lib.gguf_get_n_kv(ctx) == len(report["metadata"]), "ggml's key count")
        check(self.lib.gguf_get_alignment(ctx) == report["alignment"], "ggml's alignment")
        check(self.lib.gguf_get_data_offset(ctx) == int(reader.data_offset), "ggml's data offset")
        check([self.lib.gguf_get_key(ctx, i).decode() for i in range(len(report["metadata"]))] == [m["key"] for m in report["metadata"]],
              "ggml's keys")
        same_values = same_bytes = 0
        for i, (ref, e) in enumerate(zip(reader.tensors, entries)):
            name = self.lib.gguf_get_tensor_name(ctx, i).decode()
            ttype = Q(self.lib.gguf_get_tensor_type(ctx, i))
            check(name == ref.name and ttype == ref.tensor_type, f"ggml tensor {i}: {name} {ttype.name}")
            check(self.lib.gguf_get_tensor_offset(ctx, i) == int(ref.data_offset) - int(reader.data_offset), f"{name}: ggml's offset")
            raw = np.ascontiguousarray(ref.data).view(np.uint8).reshape(-1)
            count = int(ref.n_elements)
            mine = self.to_float(ttype, raw, count)
            theirs = gguf.quants.dequantize(raw.reshape(1, -1), ttype).astype(np.float32).reshape(-1)
            ok = np.array_equal(mine.view(np.uint32), theirs.view(np.uint32))
            check(ok, f"{name}: ggml's to_float differs from gguf.quants.dequantize")
            same_values += ok
            if e["route"] != "exact":
                t = next(x for x in eqm.tensors if x.name == name)
                ok = np.array_equal(self.from_float(ttype, eqm.values(t), raw.size), raw)
                check(ok, f"{name}: ggml's reference quantizer gives other bytes")
                same_bytes += ok
        self.lib.gguf_free(ctx)
        print(f"  llama.cpp's ggml ({os.path.basename(self.path)}): gguf_init_from_file accepts it with the same "
              f"{n} tensors, types, offsets and keys; to_float equals gguf.quants.dequantize bit for bit in "
              f"{same_values} tensors; its reference quantizers give our bytes for all {same_bytes} non-exact tensors")


def check_file(gguf_path, eqm_path, report_path, compare=False, ggml=None):
    """Checks one file; with `compare`, also prints for each exact mapping the error that
    requantizing the .eqm's values to the same type (gguf.quants.quantize) would have added."""
    failures = []
    comparisons = []

    def check(ok, what):
        if not ok:
            failures.append(what)
            print("MISMATCH", what)

    report = json.load(open(report_path))
    eqm = eqm_reader.EQMReader(eqm_path)
    reader = gguf.GGUFReader(gguf_path)
    alignment, data_offset = int(reader.alignment), int(reader.data_offset)

    version = int(reader.fields["GGUF.version"].parts[-1][0])
    check(version == 3, f"version {version}")
    check(alignment == report["alignment"], f"alignment {alignment} vs {report['alignment']}")
    check(data_offset % alignment == 0, "data section aligned")

    fields = [f for f in reader.fields.values() if not f.name.startswith("GGUF.")]
    want_meta = report["metadata"]
    check([f.name for f in fields] == [m["key"] for m in want_meta], "metadata keys or their order")
    for f, m in zip(fields, want_meta):
        want = {k: v for k, v in m.items() if k != "key"}
        check(field_canonical(f) == want, f"metadata {f.name}: {field_canonical(f)} vs {want}")

    entries = report["tensors"]
    check([t.name for t in reader.tensors] == [e["name"] for e in entries] == [t.name for t in eqm.tensors],
          "tensor names or their order")
    routes, worst_exact, offsets_ok = {}, 0.0, True
    expected_offset = 0
    for ref, e in zip(reader.tensors, entries):
        name, ttype = ref.name, ref.tensor_type
        t = next(x for x in eqm.tensors if x.name == name)
        shape = [int(d) for d in reversed(ref.shape)]
        check(ttype.name == e["type"], f"{name}: type {ttype.name} vs {e['type']}")
        check(shape == e["shape"] == t.shape, f"{name}: shape {shape} vs {e['shape']} vs {t.shape}")
        block, size = gguf.GGML_QUANT_SIZES[ttype]
        check(int(ref.n_bytes) == int(np.prod(shape)) // block * size, f"{name}: byte count {ref.n_bytes}")
        # llama.cpp's rule: each tensor starts where the previous one ended, padded.
        offsets_ok &= int(ref.data_offset) - data_offset == expected_offset
        expected_offset += -(-int(ref.n_bytes) // alignment) * alignment

        raw = np.ascontiguousarray(ref.data).view(np.uint8).reshape(-1)
        values = eqm.values(t).astype(np.float32)
        got = gguf.quants.dequantize(raw.reshape(shape[:-1] + [-1]), ttype).astype(np.float32).reshape(values.shape)
        route = e["route"]
        routes[route] = routes.get(route, 0) + 1
        if route == "exact":
            want = exact_values(eqm, t, ttype)
            same = np.array_equal(got.view(np.uint32), want.view(np.uint32))
            check(same, f"{name}: exact mapping differs from the .eqm codes with f16 steps")
        else:
            if ttype == Q.F32:
                want_bytes = values.astype("<f4").view(np.uint8).reshape(-1)
            else:
                want_bytes = np.ascontiguousarray(gguf.quants.quantize(values, ttype)).view(np.uint8).reshape(-1)
            check(np.array_equal(raw, want_bytes), f"{name}: {route} bytes differ from gguf.quants.quantize")
        diff = np.abs(got.astype(np.float64) - values.astype(np.float64))
        max_abs, rms = float(diff.max()), float(np.sqrt(np.mean(diff * diff)))
        check(max_abs == e["max_abs_error"], f"{name}: max abs error {max_abs!r} vs reported {e['max_abs_error']!r}")
        check(abs(rms - e["rms_error"]) <= 1e-9 * max(rms, 1e-300), f"{name}: rms {rms!r} vs reported {e['rms_error']!r}")
        if route == "exact":
            worst_exact = max(worst_exact, max_abs)
            if compare:
                requant = gguf.quants.dequantize(gguf.quants.quantize(values, ttype), ttype).reshape(values.shape)
                rd = np.abs(requant.astype(np.float64) - values.astype(np.float64))
                comparisons.append(f"  {name} ({e['summary']}): exact max {max_abs:.2g} rms {rms:.2g}; "
                                   f"requantized instead max {rd.max():.2g} rms {np.sqrt(np.mean(rd * rd)):.2g}")
    check(offsets_ok, "tensor offsets are not contiguous with padding")
    check(os.path.getsize(gguf_path) == data_offset + expected_offset, "file size")
    print(f"{os.path.relpath(gguf_path, root) if gguf_path.startswith(root) else gguf_path}: "
          f"{os.path.getsize(gguf_path)} bytes, gguf.GGUFReader: version {version}, alignment {alignment}, "
          f"{len(fields)} keys and {len(entries)} tensors as reported "
          f"({', '.join(f'{k} {v}' for k, v in sorted(routes.items()))}); "
          f"exact mappings equal the f16-step decode bit for bit (largest error {worst_exact:.3g}), other tensors "
          f"byte-equal to gguf.quants.quantize; reported errors match: {'yes' if not failures else 'NO'}")
    if ggml is not None:
        ggml.check(gguf_path, eqm, report, check)
    for line in comparisons:
        print(line)
    return failures


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--skip-export", action="store_true", help="check only the committed file")
    p.add_argument("--keep", action="store_true", help="keep the export's temporary folder (its path is printed)")
    p.add_argument("--ggml", default=None, help="libggml-base.so to check with as well (default: llama-cpp-python's in "
                   "/work/llamavenv, if there; 'none' to skip)")
    args = p.parse_args()
    if args.ggml is None:
        found = sorted(glob.glob("/work/llamavenv/lib/python3*/site-packages/llama_cpp/lib/libggml-base.so"))
        args.ggml = found[0] if found else "none"
    ggml = GGML(args.ggml) if args.ggml != "none" else None
    fixture = os.path.join(root, "fixtures", "gguf-writer")
    failures = []
    if ggml is not None:
        # The encoder fixture was made with gguf-py's numpy quantizers; ggml's C reference
        # quantizers must make the same bytes from the same inputs.
        from safetensors.numpy import load_file
        ref = load_file(os.path.join(fixture, "quantize_reference.safetensors"))
        same = 0
        for key in sorted(k for k in ref if not k.endswith(".input")):
            case, tname = key.split(".")
            want = ref[key].reshape(-1)
            got = ggml.from_float(Q[tname], ref[case + ".input"], want.size)
            if np.array_equal(got, want):
                same += 1
            else:
                failures.append(key)
                print("MISMATCH", key, "ggml's reference quantizer differs from gguf.quants.quantize")
        print(f"quantize_reference.safetensors: ggml's C reference quantizers make the same bytes as gguf.quants.quantize "
              f"for {same} of {len(ref) - 3} input/type pairs")
    failures += check_file(os.path.join(fixture, "written.gguf"), os.path.join(fixture, "written.eqm"),
                          os.path.join(fixture, "written.report.json"), ggml=ggml)
    if not args.skip_export:
        work = tempfile.mkdtemp(prefix="eq-gguf-check-")
        env = dict(os.environ, EASYQUANT_GGUF_CHECK_DIR=work)
        run = subprocess.run(["swift", "test", "-c", "release", "--filter",
                              "GGUFWriterFileTests/testTinyGPT2ExportReadsBackAsReported"],
                             cwd=root, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stdout[-3000:], run.stderr[-3000:])
            print("FAIL: the export test failed")
            return 1
        failures += check_file(os.path.join(work, "model.gguf"), os.path.join(work, "model.eqm"),
                               os.path.join(work, "model.report.json"), compare=True, ggml=ggml)
        if not args.keep:
            shutil.rmtree(work)
    print("PASS" if not failures else f"FAIL: {len(failures)} mismatches")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
