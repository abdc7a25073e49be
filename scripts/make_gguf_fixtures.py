#!/usr/bin/env python3
"""Writes the GGUF reader's test fixtures into fixtures/gguf/.

    /work/venv/bin/python scripts/make_gguf_fixtures.py

Two GGUF files, each with its expected contents beside it:

* all_types.gguf (version 3, default alignment 32), written by the `gguf` package's
  GGUFWriter: a metadata key of every value type (every scalar type, strings with unicode and
  an embedded NUL, an empty string, arrays of every element type, nested arrays) and tensors of
  every type EasyQuant dequantizes, with odd shapes (several blocks per row, several rows; 1-D,
  2-D and 3-D). Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 and BF16 are quantized by `gguf.quants.quantize`;
  `gguf` cannot quantize the K-quants, so their blocks are random bytes with sane f16 scales.
* v2_empty_arrays.gguf (version 2, general.alignment 64), packed by hand below because
  GGUFWriter refuses empty arrays and only writes version 3: empty arrays (of u8, string, f64
  and of arrays), a nested array holding an empty and a non-empty array, and two tensors.

For each file, NAME.metadata.json lists the metadata in file order as written (exact: integers
as decimal strings, floats as hex bit patterns), and NAME.expected.safetensors holds every
tensor's f32 values as `gguf.quants.dequantize` computes them from the bytes that
`gguf.GGUFReader` reads back out of the file, in PyTorch shape order (GGUF dims reversed); its
`__metadata__` entry "tensors" gives each tensor's type, absolute data offset and byte count
as GGUFReader reports them.
The script also checks that GGUFReader reads back the metadata it wrote.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V
from safetensors.numpy import save_file

TYPE_NAMES = {V.UINT8: "u8", V.INT8: "i8", V.UINT16: "u16", V.INT16: "i16", V.UINT32: "u32", V.INT32: "i32",
              V.UINT64: "u64", V.INT64: "i64", V.FLOAT32: "f32", V.FLOAT64: "f64", V.BOOL: "bool",
              V.STRING: "string", V.ARRAY: "array"}
PACK = {V.UINT8: "<B", V.INT8: "<b", V.UINT16: "<H", V.INT16: "<h", V.UINT32: "<I", V.INT32: "<i",
        V.UINT64: "<Q", V.INT64: "<q", V.FLOAT32: "<f", V.FLOAT64: "<d", V.BOOL: "<?"}


def canonical(vtype, value, sub=None):
    """The exact JSON form the Swift test compares against (see the module docstring)."""
    if vtype == V.ARRAY:
        # sub is the element type; nested arrays are given as (element type, values) pairs.
        values = []
        for v in value:
            if sub == V.ARRAY:
                values.append(canonical(V.ARRAY, v[1], v[0]))
            else:
                values.append(canonical(sub, v))
        return {"type": "array", "element": TYPE_NAMES[sub], "values": values}
    if vtype == V.FLOAT32:
        return {"type": "f32", "value": "0x%08x" % struct.unpack("<I", struct.pack("<f", value))[0]}
    if vtype == V.FLOAT64:
        return {"type": "f64", "value": "0x%016x" % struct.unpack("<Q", struct.pack("<d", value))[0]}
    if vtype == V.BOOL:
        return {"type": "bool", "value": bool(value)}
    if vtype == V.STRING:
        return {"type": "string", "value": value}
    return {"type": TYPE_NAMES[vtype], "value": str(int(value))}


def all_types_metadata():
    """(key, type, value, element type) in the order they are written."""
    unicode_text = "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c\u8a9e \U0001f999"
    return [
        ("test.u8", V.UINT8, 255, None),
        ("test.i8", V.INT8, -128, None),
        ("test.u16", V.UINT16, 65535, None),
        ("test.i16", V.INT16, -32768, None),
        ("test.u32", V.UINT32, 4294967295, None),
        ("test.i32", V.INT32, -2147483648, None),
        ("test.u64", V.UINT64, 18446744073709551615, None),
        ("test.i64", V.INT64, -9223372036854775808, None),
        ("test.f32", V.FLOAT32, -1.5e-3, None),
        ("test.f32_subnormal", V.FLOAT32, 1e-45, None),
        ("test.f64", V.FLOAT64, 3.141592653589793, None),
        ("test.bool_true", V.BOOL, True, None),
        ("test.bool_false", V.BOOL, False, None),
        ("test.string", V.STRING, unicode_text, None),
        ("test.string_empty", V.STRING, "", None),
        ("test.string_nul", V.STRING, "a\x00b\nc\t\"quoted\"", None),
        ("test.\u00fcnicode_key", V.STRING, "key with unicode", None),
        ("test.array_u8", V.ARRAY, [0, 1, 254, 255], V.UINT8),
        ("test.array_i8", V.ARRAY, [-128, -1, 0, 127], V.INT8),
        ("test.array_u16", V.ARRAY, [0, 65535], V.UINT16),
        ("test.array_i16", V.ARRAY, [-32768, 32767, 7], V.INT16),
        ("test.array_u32", V.ARRAY, [0, 4294967295], V.UINT32),
        ("test.array_i32", V.ARRAY, [-2147483648, 2147483647, 0, 5], V.INT32),
        ("test.array_u64", V.ARRAY, [0, 18446744073709551615], V.UINT64),
        ("test.array_i64", V.ARRAY, [-9223372036854775808, 9223372036854775807], V.INT64),
        ("test.array_f32", V.ARRAY, [0.0, -0.0, 1.0, -2.5e-7, 3.4028234663852886e38], V.FLOAT32),
        ("test.array_f64", V.ARRAY, [1e-310, -1.0, 2.0 ** 60], V.FLOAT64),
        ("test.array_bool", V.ARRAY, [True, False, True], V.BOOL),
        ("test.array_string", V.ARRAY, ["<|endoftext|>", "", unicode_text, "\u0120the"], V.STRING),
        # Nested: an array of arrays (inner element types inferred by GGUFWriter: int -> i32,
        # str -> string, float -> f32), and an array of arrays of arrays.
        ("test.array_nested", V.ARRAY, [(V.INT32, [1, 2, 3]), (V.INT32, [-4]), (V.STRING, ["x", "y\u00e9"])], V.ARRAY),
        ("test.array_nested_deep", V.ARRAY, [(V.ARRAY, [(V.FLOAT32, [0.5, -0.25])]), (V.ARRAY, [(V.INT32, [7])])], V.ARRAY),
        ("general.name", V.STRING, "EasyQuant GGUF fixture", None),
    ]


def writer_value(vtype, value, sub):
    """The value as GGUFWriter wants it (nested arrays as plain lists)."""
    if vtype == V.ARRAY and sub == V.ARRAY:
        return [writer_value(V.ARRAY, v[1], v[0]) for v in value]
    return value


def random_kquant_blocks(rng, qtype, n_blocks):
    """Random K-quant blocks with finite f16 scales (d, and dmin where the type has one)."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    scale_offsets = {Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}[qtype]
    for off in scale_offsets:
        mags = rng.uniform(1e-3, 5e-2, size=n_blocks) * rng.choice([-1.0, 1.0], size=n_blocks)
        blocks[:, off:off + 2] = mags.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    return blocks


def all_types_tensors(rng):
    """(name, stored array, ggml type or None for plain float arrays), shapes in PyTorch order."""
    out = []
    edge = np.array([0.0, -0.0, 1e-45, -1e-38, 3.4028235e38, -3.4028235e38, 1.0, -1.5, 0.1, 65504.0,
                     6e-8, 1e-5, -7.25, 2.0 ** -20, 123456.789], dtype=np.float32)
    out.append(("f32_2d", edge.reshape(3, 5), None))
    out.append(("f32_1d", rng.standard_normal(7).astype(np.float32), None))
    out.append(("f32_3d", rng.standard_normal((2, 3, 4)).astype(np.float32), None))
    f16 = np.array([0.0, -0.0, 6e-8, -6.1e-5, 65504.0, -65504.0, 1.0, 0.333, -2.5, 1000.0, 1e-3, -0.1], dtype=np.float16)
    out.append(("f16_2d", f16.reshape(4, 3), None))
    bf16_src = np.array([0.0, -0.0, 1e-40, 3.0e38, -1.0, 0.1, 7.0, -1234.5, 1e-3, 2.0 ** 100], dtype=np.float32)
    out.append(("bf16_2d", gguf.quants.quantize(bf16_src.reshape(2, 5), Q.BF16), Q.BF16))

    def weights(shape):
        w = rng.standard_normal(shape).astype(np.float32) * 0.05
        w.reshape(-1)[:: 37] *= 8.0  # a few outliers, so block scales differ
        return w

    for name, qtype, shape in [("q4_0_2d", Q.Q4_0, (3, 96)), ("q4_0_1d", Q.Q4_0, (64,)),
                               ("q4_1_2d", Q.Q4_1, (3, 96)), ("q5_0_2d", Q.Q5_0, (5, 64)),
                               ("q5_1_2d", Q.Q5_1, (2, 96)), ("q8_0_2d", Q.Q8_0, (3, 96)),
                               ("q8_0_3d", Q.Q8_0, (2, 2, 64))]:
        out.append((name, gguf.quants.quantize(weights(shape), qtype), qtype))

    for name, qtype, shape in [("q2_k_2d", Q.Q2_K, (3, 512)), ("q3_k_2d", Q.Q3_K, (2, 512)),
                               ("q4_k_2d", Q.Q4_K, (3, 512)), ("q4_k_1d", Q.Q4_K, (256,)),
                               ("q5_k_2d", Q.Q5_K, (2, 512)), ("q6_k_2d", Q.Q6_K, (3, 512)),
                               ("q6_k_3d", Q.Q6_K, (2, 2, 256))]:
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        n_blocks = int(np.prod(shape)) // block_size
        blocks = random_kquant_blocks(rng, qtype, n_blocks)
        out.append((name, blocks.reshape(*shape[:-1], shape[-1] // block_size * type_size), qtype))
    return out


def write_all_types(path):
    rng = np.random.default_rng(20240612)
    w = gguf.GGUFWriter(path, arch="easyquant-test")
    meta = [("general.architecture", V.STRING, "easyquant-test", None)]
    for key, vtype, value, sub in all_types_metadata():
        w.add_key_value(key, writer_value(vtype, value, sub), vtype, sub_type=sub)
        meta.append((key, vtype, value, sub))
    for name, array, qtype in all_types_tensors(rng):
        w.add_tensor(name, array, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return meta


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def pack_value(vtype, value, sub=None):
    if vtype == V.STRING:
        return gguf_string(value)
    if vtype == V.ARRAY:
        out = struct.pack("<IQ", sub, len(value))
        for v in value:
            out += pack_value(V.ARRAY, v[1], v[0]) if sub == V.ARRAY else pack_value(sub, v)
        return out
    return struct.pack(PACK[vtype], value)


def write_v2(path):
    """A version-2 file packed by hand: empty arrays, alignment 64, two tensors."""
    rng = np.random.default_rng(7)
    align = 64
    meta = [
        ("general.architecture", V.STRING, "easyquant-test", None),
        ("general.alignment", V.UINT32, align, None),
        ("test.empty_u8", V.ARRAY, [], V.UINT8),
        ("test.empty_string", V.ARRAY, [], V.STRING),
        ("test.empty_f64", V.ARRAY, [], V.FLOAT64),
        ("test.empty_nested", V.ARRAY, [], V.ARRAY),
        ("test.nested_with_empty", V.ARRAY, [(V.UINT64, []), (V.UINT8, [1, 2])], V.ARRAY),
        ("test.after_empty", V.STRING, "still in step", None),
    ]
    q8 = gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32), Q.Q8_0)
    f32 = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    tensors = [("v2.q8_0", q8, Q.Q8_0, (2, 64)), ("v2.f32", f32, Q.F32, (3,))]

    out = b"GGUF" + struct.pack("<IQQ", 2, len(tensors), len(meta))
    for key, vtype, value, sub in meta:
        out += gguf_string(key) + struct.pack("<I", vtype) + pack_value(vtype, value, sub)
    offset = 0
    data = b""
    for name, array, qtype, shape in tensors:
        dims = list(reversed(shape))
        out += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", qtype, offset)
        raw = array.tobytes()
        pad = (-len(raw)) % align
        data += raw + b"\0" * pad
        offset += len(raw) + pad
    out += b"\0" * ((-len(out)) % align)
    with open(path, "wb") as f:
        f.write(out + data)
    return meta


def reader_scalars(field):
    """GGUFReader's (flattened) view of a field's values, for the consistency check."""
    if field.types[0] == V.ARRAY:
        if not field.data:
            return []
        return field.contents()
    return field.contents()


def dump_expectations(path, meta):
    """Checks GGUFReader against what was written; writes NAME.metadata.json and NAME.expected.safetensors."""
    reader = gguf.GGUFReader(path)
    fields = [f for f in reader.fields.values() if not f.name.startswith("GGUF.")]
    assert [f.name for f in fields] == [m[0] for m in meta], "GGUFReader lists other keys"
    for f, (key, vtype, value, sub) in zip(fields, meta):
        assert f.types[0] == vtype, key
        got, want = reader_scalars(f), value
        if vtype == V.FLOAT32:
            want = float(np.float32(want))
        elif vtype == V.ARRAY and sub == V.FLOAT32:
            want = [float(np.float32(x)) for x in want]
        elif vtype == V.ARRAY and sub == V.ARRAY:
            continue  # GGUFReader flattens nested arrays and cannot read them back faithfully
        assert got == want or (isinstance(got, list) and list(got) == list(want)), (key, got, want)

    base = path[: -len(".gguf")]
    entries = [{"key": k, **canonical(t, v, s)} for k, t, v, s in meta]
    with open(base + ".metadata.json", "w", encoding="utf-8") as f:
        json.dump({"version": int(reader.fields["GGUF.version"].parts[0][0]), "metadata": entries}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")

    expected = {}
    for t in reader.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        shape = tuple(int(d) for d in reversed(t.shape))
        expected[t.name] = np.ascontiguousarray(values.reshape(shape))
    save_file(expected, base + ".expected.safetensors",
              metadata={"tensors": json.dumps({t.name: {"type": t.tensor_type.name, "offset": int(t.data_offset),
                                                      "bytes": int(t.n_bytes)} for t in reader.tensors})})
    return reader


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "gguf"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    path = os.path.join(args.out, "all_types.gguf")
    reader = dump_expectations(path, write_all_types(path))
    print(f"{path}: {len(reader.tensors)} tensors, {len(reader.fields) - 3} keys, {os.path.getsize(path)} bytes")
    path = os.path.join(args.out, "v2_empty_arrays.gguf")
    reader = dump_expectations(path, write_v2(path))
    print(f"{path}: {len(reader.tensors)} tensors, {len(reader.fields) - 3} keys, {os.path.getsize(path)} bytes")
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"fixtures/gguf: {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
