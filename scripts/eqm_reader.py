#!/usr/bin/env python3
"""An independent reader of EasyQuant's .eqm files, written from docs/FORMAT.md alone.

It exists to check the Swift reader and writer against the specification: it parses and
validates the preamble, the header and every blob as sections 1, 4 and 7 say, decodes
every tensor (unpacking nibbles, applying scales and zero points block by block) and can
dump the values as JSON, which is how fixtures/golden/*.expected.json are made.

Needs numpy and zstandard (pip install zstandard).

    python3 scripts/eqm_reader.py FILE.eqm                 # validate, print a summary
    python3 scripts/eqm_reader.py FILE.eqm --dump-json -   # values (and codes) as JSON
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import zstandard

MAGIC = b"\x89EQM\r\n\x1a\n"
PREAMBLE = 32
MAX_HEADER = 64 * 1024 * 1024
MAX_DEPTH = 256
FLOAT_DTYPES = {"F32": 4, "F16": 2, "BF16": 2}
# The dtypes safetensors names and version 1.0 records as `source_dtype` (section 5).
SOURCE_DTYPES = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"}


class EQMFormatError(Exception):
    """The file breaks docs/FORMAT.md; the message names the file and the place."""


def is_int(v):
    # JSON true/false are bools, which Python also counts as ints.
    return isinstance(v, int) and not isinstance(v, bool)


def reject_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError("duplicate key %r" % k)
        seen[k] = v
    return seen


def depth(v, level=1):
    """The nesting depth of a parsed JSON value (a scalar has depth 0)."""
    if isinstance(v, dict):
        return max([level] + [depth(x, level + 1) for x in v.values()])
    if isinstance(v, list):
        return max([level] + [depth(x, level + 1) for x in v])
    return level - 1


class Blob:
    def __init__(self, offset, length, size):
        self.offset, self.length, self.size = offset, length, size

    @staticmethod
    def parse(v):
        if not isinstance(v, dict):
            return None
        o, l, s = v.get("offset"), v.get("length"), v.get("size")
        if not (is_int(o) and is_int(l) and is_int(s)) or o < 0 or l < 0 or s < 0:
            return None
        return Blob(o, l, s)


class Tensor:
    """One tensor record (section 5), checked but not decoded."""

    def __init__(self, reader, entry, position):
        fail = reader.fail
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            fail("tensor entry %d has no string \"name\"" % position)
        self.name = name = entry["name"]

        def bad(reason):
            fail("tensor %s: %s" % (name, reason))

        shape = entry.get("shape")
        if not isinstance(shape, list) or not all(is_int(d) and d >= 0 for d in shape):
            bad("\"shape\" must be a list of non-negative integers")
        count = 1
        for d in shape:
            count *= d
        if count >= 2 ** 63:
            bad("element count %d does not fit in 63 bits" % count)
        self.shape, self.count = shape, count
        self.source_dtype = entry.get("source_dtype")
        if self.source_dtype not in SOURCE_DTYPES:
            bad("\"source_dtype\" %r is not a safetensors dtype" % (self.source_dtype,))
        self.data = Blob.parse(entry.get("data"))
        if self.data is None:
            bad("\"data\" is not a blob")
        self.encoding = entry.get("encoding")
        self.scales = self.zero_points = None
        if self.encoding == "float":
            self.dtype = entry.get("dtype")
            if self.dtype not in FLOAT_DTYPES:
                bad("float tensors need \"dtype\" F32, F16 or BF16, not %r" % (self.dtype,))
            expected = count * FLOAT_DTYPES[self.dtype]
        elif self.encoding == "quantized":
            if len(shape) != 2:
                bad("quantized tensors must have rank 2, not %d" % len(shape))
            q = entry.get("quantization")
            if not isinstance(q, dict):
                bad("missing \"quantization\"")
            self.method = q.get("method")
            self.bits = q.get("bits")
            self.signed = q.get("signed")
            self.scheme = q.get("scheme")
            self.axis = q.get("axis")
            self.group_size = q.get("group_size")
            self.block = q.get("block")
            if not isinstance(self.method, str):
                bad("quantization \"method\" must be a string")
            if not is_int(self.bits) or not 2 <= self.bits <= 8:
                bad("quantization \"bits\" must be 2 to 8")
            if not isinstance(self.signed, bool):
                bad("quantization \"signed\" must be true or false")
            if self.scheme not in ("symmetric", "asymmetric"):
                bad("quantization \"scheme\" must be symmetric or asymmetric")
            if self.axis is not None and self.axis not in (0, 1):
                bad("quantization \"axis\" must be 0, 1 or null")
            if not is_int(self.group_size) or self.group_size < 0:
                bad("quantization \"group_size\" must be a non-negative integer")
            if not (isinstance(self.block, list) and len(self.block) == 2 and all(is_int(b) and b >= 1 for b in self.block)):
                bad("quantization \"block\" must be two positive integers")
            self.scale_shape = [-(-shape[0] // self.block[0]), -(-shape[1] // self.block[1])]
            blocks = self.scale_shape[0] * self.scale_shape[1]
            self.scales = self.parameter_blob(entry.get("scales"), "scales", blocks, bad)
            if self.scheme == "asymmetric":
                self.zero_points = self.parameter_blob(entry.get("zero_points"), "zero_points", blocks, bad)
            expected = (count + 1) // 2 if self.bits <= 4 else count
        else:
            bad("\"encoding\" must be \"float\" or \"quantized\", not %r" % (self.encoding,))
        if self.data.size != expected:
            bad("data decodes to %d bytes, but shape %s as %s needs %d" % (self.data.size, shape, self.encoding, expected))

    def parameter_blob(self, v, what, blocks, bad):
        if not isinstance(v, dict):
            bad("missing \"%s\"" % what)
        if v.get("dtype") != "F32":
            bad("%s must have dtype F32" % what)
        if "shape" in v and v["shape"] != self.scale_shape:
            bad("%s have shape %s, but block %s over shape %s gives %s" % (what, v["shape"], self.block, self.shape, self.scale_shape))
        blob = Blob.parse(v.get("data"))
        if blob is None:
            bad("%s \"data\" is not a blob" % what)
        if blob.size != 4 * blocks:
            bad("%s decode to %d bytes, expected %d for %d blocks" % (what, blob.size, 4 * blocks, blocks))
        return blob

    def blobs(self):
        out = [("data", self.data)]
        if self.scales is not None:
            out.append(("scales", self.scales))
        if self.zero_points is not None:
            out.append(("zero_points", self.zero_points))
        return out


class EQMReader:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.bytes = f.read()
        b = self.bytes
        # Section 1, check 1.
        if len(b) < PREAMBLE or b[:8] != MAGIC:
            self.fail("not an .eqm file (no EQM magic in the first 8 bytes)")
        # Check 2.
        self.major = int.from_bytes(b[8:10], "little")
        self.minor = int.from_bytes(b[10:12], "little")
        if self.major != 1:
            self.fail("format version %d.%d was written by a newer EasyQuant; this reader knows 1.x" % (self.major, self.minor))
        # Flags (12..16) are reserved and ignored.
        # Check 3.
        h = int.from_bytes(b[16:24], "little")
        l = int.from_bytes(b[24:32], "little")
        if h < PREAMBLE or l > MAX_HEADER or h + l != len(b):
            self.fail("header at byte %d of %d bytes does not end the %d-byte file" % (h, l, len(b)))
        self.header_offset = h
        # Check 4.
        try:
            text = b[h:h + l].decode("utf-8")
            header = json.loads(text, object_pairs_hook=reject_duplicates,
                                parse_constant=lambda c: (_ for _ in ()).throw(ValueError("%s is not JSON" % c)))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            self.fail("header is not valid UTF-8 JSON: %s" % e)
        if depth(header) > MAX_DEPTH:
            self.fail("header nests deeper than %d levels" % MAX_DEPTH)
        if not isinstance(header, dict):
            self.fail("header is not a JSON object")
        self.alignment = header.get("alignment")
        if not is_int(self.alignment) or self.alignment < 8 or self.alignment & (self.alignment - 1):
            self.fail("\"alignment\" must be a power of two >= 8")
        # Section 2: `requires` names features that change what the tensors compute. This
        # reader decodes tensors as stored (it computes no model); it knows "outliers"
        # (section 5.3: the reserved tensors are decoded like any other) and refuses the rest.
        requires = header.get("requires", [])
        if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
            self.fail("\"requires\" must be a list of strings")
        for feature in requires:
            if feature not in ("outliers",):
                self.fail("needs feature \"%s\", which this reader does not implement" % feature)
        self.requires = requires
        self.metadata = header.get("metadata")
        if not isinstance(self.metadata, dict):
            self.fail("\"metadata\" must be an object")
        entries = header.get("tensors")
        if not isinstance(entries, list):
            self.fail("\"tensors\" must be a list")
        self.tensors = []
        names = set()
        for i, entry in enumerate(entries):
            t = Tensor(self, entry, i)
            if t.name in names:
                self.fail("tensor %s appears twice" % t.name)
            names.add(t.name)
            self.tensors.append(t)
        # Check 5: every blob (tensor data, scales, zero points, tokenizer files) in place.
        spans = []
        for t in self.tensors:
            for what, blob in t.blobs():
                spans.append((blob, "tensor %s %s" % (t.name, what)))
        self.tokenizer = {}
        tok = self.metadata.get("tokenizer")
        files = tok.get("files") if isinstance(tok, dict) else None
        if isinstance(files, dict):  # metadata is descriptive (section 3); only these blobs are checked
            for name, v in files.items():
                blob = Blob.parse(v)
                if blob is None:
                    self.fail("tokenizer file %s is not a blob" % name)
                self.tokenizer[name] = blob
                spans.append((blob, "tokenizer file %s" % name))
        for blob, owner in spans:
            if blob.offset < PREAMBLE or blob.offset + blob.length > h:
                self.fail("%s: bytes %d..%d lie outside the blob area 32..%d" % (owner, blob.offset, blob.offset + blob.length, h))
            if blob.offset % self.alignment:
                self.fail("%s: offset %d is not a multiple of the alignment %d" % (owner, blob.offset, self.alignment))
        spans.sort(key=lambda s: (s[0].offset, s[0].offset + s[0].length))
        for (a, an), (c, cn) in zip(spans, spans[1:]):
            if c.offset < a.offset + a.length:
                self.fail("%s at byte %d overlaps %s" % (cn, c.offset, an))

    def fail(self, message):
        raise EQMFormatError("%s: %s" % (self.path, message))

    # Section 4.
    def blob_bytes(self, blob, owner):
        frame = self.bytes[blob.offset:blob.offset + blob.length]
        try:
            params = zstandard.get_frame_parameters(frame)
        except zstandard.ZstdError as e:
            self.fail("%s at byte %d: not a zstd frame: %s" % (owner, blob.offset, e))
        if params.content_size != blob.size:
            self.fail("%s at byte %d: frame declares %s bytes, the header %d" % (
                owner, blob.offset, "no size" if params.content_size == zstandard.CONTENTSIZE_UNKNOWN else params.content_size, blob.size))
        d = zstandard.ZstdDecompressor().decompressobj()
        try:
            out = d.decompress(frame)  # verifies the XXH64 checksum when the frame has one
        except zstandard.ZstdError as e:
            self.fail("%s at byte %d is corrupt: %s" % (owner, blob.offset, e))
        if not d.eof or d.unused_data:
            self.fail("%s at byte %d: the blob is not exactly one zstd frame" % (owner, blob.offset))
        if len(out) != blob.size:
            self.fail("%s at byte %d: decoded %d bytes, expected %d" % (owner, blob.offset, len(out), blob.size))
        return out

    def f32_blob(self, blob, owner):
        values = np.frombuffer(self.blob_bytes(blob, owner), dtype="<f4")
        if not np.all(np.isfinite(values)):
            self.fail("%s: value %d is not finite" % (owner, int(np.argmin(np.isfinite(values)))))
        return values

    def codes(self, t):
        """The codes of a quantized tensor, one integer per element, row-major (section 5.2)."""
        raw = np.frombuffer(self.blob_bytes(t.data, "tensor %s data" % t.name), dtype=np.uint8)
        if t.bits <= 4:
            pairs = np.empty(raw.size * 2, dtype=np.uint8)
            pairs[0::2] = raw & 0x0F  # element 2i: low nibble of byte i
            pairs[1::2] = raw >> 4    # element 2i+1: high nibble
            codes = pairs[:t.count].astype(np.int32)
            if t.signed:
                codes = np.where(codes >= 8, codes - 16, codes)
        else:  # one code per byte: int8 if signed, uint8 otherwise
            codes = (raw.view(np.int8) if t.signed else raw).astype(np.int32)
        return codes

    def values(self, t):
        """The tensor's values as float32, row-major: converted, or dequantized block by block."""
        if t.encoding == "float":
            raw = self.blob_bytes(t.data, "tensor %s data" % t.name)
            if t.dtype == "F32":
                v = np.frombuffer(raw, dtype="<f4")
            elif t.dtype == "F16":
                v = np.frombuffer(raw, dtype="<f2").astype(np.float32)
            else:  # BF16: the top 16 bits of a float32
                v = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            return v.reshape(t.shape).astype(np.float32)
        rows, cols = t.shape
        q = self.codes(t).reshape(rows, cols).astype(np.float32)
        scales = self.f32_blob(t.scales, "tensor %s scales" % t.name).reshape(t.scale_shape)
        if t.zero_points is not None:
            zps = self.f32_blob(t.zero_points, "tensor %s zero_points" % t.name).reshape(t.scale_shape)
        else:
            zps = np.zeros(t.scale_shape, dtype=np.float32)
        # Element (i, j) uses block (i // block[0], j // block[1]).
        bi = np.arange(rows) // t.block[0]
        bj = np.arange(cols) // t.block[1]
        s = scales[bi[:, None], bj[None, :]]
        z = zps[bi[:, None], bj[None, :]]
        # float32 throughout: (q - z) is exact, the product rounds once, as the spec's formula.
        return ((q - z) * s).astype(np.float32)


def dump(reader):
    """{"tensors": {name: {"shape", "values", ["method", "bits", "codes"]}}} in file order."""
    tensors = {}
    for t in reader.tensors:
        entry = {"shape": t.shape, "values": [float(x) for x in reader.values(t).reshape(-1)]}
        if t.encoding == "quantized":
            entry["method"] = t.method
            entry["bits"] = t.bits
            entry["codes"] = [int(c) for c in reader.codes(t)]
        tensors[t.name] = entry
    return {"tensors": tensors}


def main():
    p = argparse.ArgumentParser(description="Validate and decode an .eqm file (docs/FORMAT.md), independently of the Swift code.")
    p.add_argument("file")
    p.add_argument("--dump-json", metavar="OUT", help="write every tensor's values (and codes) as JSON to OUT ('-' for standard output)")
    args = p.parse_args()
    try:
        r = EQMReader(args.file)
        if args.dump_json:
            text = json.dumps(dump(r), indent=1) + "\n"
            if args.dump_json == "-":
                sys.stdout.write(text)
            else:
                tmp = args.dump_json + ".tmp"
                with open(tmp, "w") as f:
                    f.write(text)
                os.replace(tmp, args.dump_json)
            return 0
        total = 0
        for t in r.tensors:
            v = r.values(t)
            total += t.count
            kind = t.dtype if t.encoding == "float" else "%s %d-bit %s block %s" % (t.method, t.bits, t.scheme, t.block)
            print("%-40s %-14s %-40s max|x| %.6g" % (t.name, t.shape, kind, float(np.max(np.abs(v))) if v.size else 0.0))
        for name, blob in r.tokenizer.items():
            r.blob_bytes(blob, "tokenizer file %s" % name)
        print("%s: format %d.%d, %d tensors, %d parameters, %d tokenizer files: valid" % (
            args.file, r.major, r.minor, len(r.tensors), total, len(r.tokenizer)))
    except (EQMFormatError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
