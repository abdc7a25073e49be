#!/usr/bin/env python3
"""Reference GPT-2 token ids for the Swift tokenizer's tests, from two independent tokenizers.

Encodes the WikiText-2 test files and a list of tricky strings with
  * tiktoken: an `Encoding` built here from the local vocab.json / merges.txt (no download),
    with GPT-2's pre-tokenization regex and <|endoftext|> = 50256, and
  * Hugging Face `tokenizers`: a byte-level BPE model read from the same two files,
checks that both give the same ids everywhere, and writes
fixtures/reference/tokenizer-digests.json with, per file, the token count, the first 16 ids
and the SHA-256 of the ids written as little-endian uint32 (the ids themselves are not
committed), and for each tricky string its exact ids.

This is a development script (run with /work/venv/bin/python); the Swift package and its
tests never run Python.

    scripts/tokenizer_reference.py [--tokenizer DIR] [--wikitext DIR] [--out FILE]
"""
import argparse
import hashlib
import json
import os
import random
import struct
import sys
import unicodedata

import tiktoken
import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# GPT-2's pre-tokenization pattern, exactly as in OpenAI's encoder.py.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
END_OF_TEXT = "<|endoftext|>"


def byte_level_alphabet():
    """GPT-2's reversible byte -> printable character table (256 entries)."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table = {}
    extra = 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def load_tiktoken(vocab_path, merges_path):
    """A tiktoken Encoding whose ranks come from merges.txt, cross-checked with vocab.json."""
    alphabet = byte_level_alphabet()
    decode_char = {c: b for b, c in alphabet.items()}

    def to_bytes(token):
        return bytes(decode_char[c] for c in token)

    with open(vocab_path, encoding="utf-8") as f:
        vocab = json.load(f)
    with open(merges_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines[0].startswith("#version"):
        lines = lines[1:]
    merges = [tuple(line.split(" ")) for line in lines if line]

    # Ranks: the 256 single bytes in the order of the byte-level alphabet's characters as
    # GPT-2 lists them (printable ones first), then one rank per merge, in file order.
    ranks = {}
    for token, token_id in vocab.items():
        if token_id < 256:
            ranks[to_bytes(token)] = token_id
    assert len(ranks) == 256, "vocab.json must start with the 256 single-byte tokens"
    for left, right in merges:
        ranks[to_bytes(left) + to_bytes(right)] = len(ranks)
    # tiktoken ranks pairs by the rank of the merged token; that equals the merge order only
    # if vocab.json numbers the merged tokens in merge order, which is checked here.
    for token, token_id in vocab.items():
        if token == END_OF_TEXT:
            continue
        assert ranks[to_bytes(token)] == token_id, f"vocab.json id of {token!r} is not its merge rank"
    assert len(ranks) == len(vocab) - 1
    return tiktoken.Encoding(
        name="gpt2-local",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={END_OF_TEXT: vocab[END_OF_TEXT]},
        explicit_n_vocab=len(vocab),
    )


def load_hf(vocab_path, merges_path):
    """A Hugging Face byte-level BPE tokenizer as GPT-2 uses it (no prefix space)."""
    tok = Tokenizer(models.BPE.from_file(vocab_path, merges_path))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


# Strings whose ids the Swift tests compare exactly. Each exercises one rule.
TRICKY = [
    ("contractions", "don't I'll we've they're she'd I'm it's"),
    ("uppercase contractions stay apart", "DON'T IT'S He'S 'S 'Re"),
    ("apostrophe runs", "''s ''' 's's rock'n'roll ?'s"),
    ("multiple spaces before words", "a  b   c    d"),
    ("trailing spaces", "end   "),
    ("leading spaces", "   start"),
    ("newlines", "\n\n\n"),
    ("newlines then word", "line\n\n\nnext\n word\n"),
    ("tabs", "\tindented\t\ttabs \t mixed\t"),
    ("no-break space", "a\u00a0b \u00a0c\u00a0\u00a0d"),
    ("digits with letters", "abc123def 4567 x1y2z3 3.14159 1,000,000 ٣٤٥ 2nd"),
    ("end of text as text", "Hello<|endoftext|>world <|endoftext|>"),
    ("emoji", "I ❤️ 🦀 and 👨‍👩‍👧‍👦 🇫🇷!"),
    ("CJK", "日本語のテキスト、中文文本，한국어 텍스트"),
    ("combining marks", "e\u0301 n\u0303o cafe\u0301 a\u0308\u0304 Z\u0351\u0364\u0335"),
    ("accents and Greek", "naïve façade Ελληνικά ΣΊΣΥΦΟΣ"),
    ("symbols and punctuation", "$5.00 (a+b)*c=d; @user #tag -- — … «quotes» “curly”"),
    ("control characters", "a\x00b\x01c\x7fd\x1be"),
    ("unicode spaces",
     "a\u0085b c\u1680d e\u2000f\u2001\u200ag \u2028h\u2029i\u202fj\u205fk\u3000l\u000bm\u000cn\ro"
     " \u0085 x \u3000  y"),
    ("not whitespace", "a\u001cb\u001dc\u001ed\u001ff\u180eg\u200bh\ufeffi\u200dj"),
    ("space then other", " !? ... ' \" "),
    ("mixed scripts", "Привет мир, שלום עולם, مرحبا بالعالم, नमस्ते दुनिया"),
    ("math letters and numbers", "𝒜𝓁𝓅𝒽𝒶 Ⅻ ½ ² ⑳ 𝟙𝟚"),
    ("only whitespace", " \t \n "),
    ("empty", ""),
    ("long word", "supercalifragilisticexpialidocious" * 12),
    ("long digits", "31415926535897932384626433832795028841971693993751" * 4),
    ("long dashes", "-" * 300 + " =" * 50),
    ("long spaces then word", " " * 200 + "word"),
    ("long run of one letter", "a" * 301),
    ("long newline run", "\n" * 100 + "x"),
    ("long random letters", "".join(random.Random(1234).choice("etaoinshrdlucmfwypvbgkjqxz") for _ in range(3000))),
]


def assigned_scalar_ranges():
    """Every scalar assigned in Python's Unicode database (no surrogates), as [first, last] ranges."""
    ranges = []
    for c in range(0x110000):
        if unicodedata.category(chr(c)) in ("Cs", "Cn"):
            continue
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return ranges


# Each assigned scalar c appears in this line (joined by "\n"): between letters, doubled
# before a digit, and after a space, which exercises its class in every rule of the pattern.
ALL_SCALARS_LINE = "a{c}b {c}{c}1 {c}"


def all_scalars_text(ranges):
    return "\n".join(ALL_SCALARS_LINE.format(c=chr(c)) for lo, hi in ranges for c in range(lo, hi + 1))


def ids_digest(ids):
    return hashlib.sha256(struct.pack(f"<{len(ids)}I", *ids)).hexdigest()


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "fixtures", "gpt2-tokenizer"))
    ap.add_argument("--wikitext", default=os.path.join(ROOT, "fixtures", "wikitext-2-raw"))
    ap.add_argument("--out", default=os.path.join(ROOT, "fixtures", "reference", "tokenizer-digests.json"))
    args = ap.parse_args()

    vocab_path = os.path.join(args.tokenizer, "vocab.json")
    merges_path = os.path.join(args.tokenizer, "merges.txt")
    tk = load_tiktoken(vocab_path, merges_path)
    hf = load_hf(vocab_path, merges_path)

    def both(text):
        a = tk.encode_ordinary(text)
        b = hf.encode(text, add_special_tokens=False).ids
        if a != b:
            first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            sys.exit(f"tiktoken and tokenizers disagree at token {first} of {text[:60]!r}...: "
                     f"{a[first:first + 8]} vs {b[first:first + 8]}")
        # <|endoftext|> in plain text is ordinary text: it must not come out as 50256.
        assert 50256 not in a
        if text:
            assert tk.decode_bytes(a) == text.encode("utf-8")
        return a

    files = {}
    for name in ("wiki.test.raw", "wiki.test.hfjoin.txt"):
        path = os.path.join(args.wikitext, name)
        with open(path, "rb") as f:
            data = f.read()
        ids = both(data.decode("utf-8"))
        files[name] = {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "tokens": len(ids),
            "first16": ids[:16],
            "ids_uint32le_sha256": ids_digest(ids),
        }
        print(f"{name}: {len(ids)} tokens, first {ids[:12]}")

    tricky = []
    for what, text in TRICKY:
        ids = both(text)
        tricky.append({"what": what, "text": text, "ids": ids})

    ranges = assigned_scalar_ranges()
    ids = both(all_scalars_text(ranges))
    all_scalars = {
        "unicode_version": unicodedata.unidata_version,
        "line": ALL_SCALARS_LINE,
        "joiner": "\n",
        "ranges": ranges,
        "tokens": len(ids),
        "ids_uint32le_sha256": ids_digest(ids),
    }
    print(f"all {sum(hi - lo + 1 for lo, hi in ranges)} scalars of Unicode {unicodedata.unidata_version}: {len(ids)} tokens")

    doc = {
        "about": "GPT-2 token ids agreed on by tiktoken and Hugging Face tokenizers; made by "
                 "scripts/tokenizer_reference.py. Digests are SHA-256 of the ids as little-endian uint32.",
        "made_with": {"tiktoken": tiktoken.__version__, "tokenizers": tokenizers.__version__},
        "tokenizer": {
            "vocab.json": file_sha256(vocab_path),
            "merges.txt": file_sha256(merges_path),
        },
        "pattern": GPT2_PATTERN,
        "files": files,
        "tricky": tricky,
        "all_scalars": all_scalars,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    # One line per file and per tricky string keeps the JSON readable and its diffs small.
    lines = ["{"]
    for i, (key, value) in enumerate(doc.items()):
        comma = "," if i < len(doc) - 1 else ""
        if key in ("files", "tricky"):
            items = value.items() if key == "files" else enumerate(value)
            opener, closer = ("{", "}") if key == "files" else ("[", "]")
            lines.append(f" {json.dumps(key)}: {opener}")
            rows = [(f"  {json.dumps(k)}: " if key == "files" else "  ") + json.dumps(v, ensure_ascii=True)
                    for k, v in items]
            lines.append(",\n".join(rows))
            lines.append(f" {closer}{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=True)}{comma}")
    lines.append("}")
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(args.out, encoding="utf-8") as f:
        assert json.load(f) == doc
    print(f"wrote {os.path.relpath(args.out, ROOT)} ({len(tricky)} tricky strings)")


if __name__ == "__main__":
    main()
