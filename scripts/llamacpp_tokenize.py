#!/usr/bin/env python3
"""Token ids from llama.cpp (through the llama-cpp-python package), for the other scripts.

Runs under the Python that has `llama_cpp` (/work/llamavenv/bin/python; the scripts that need
llama.cpp call this file with it, since that venv has no `gguf` or `transformers`). It loads a
GGUF file with `vocab_only=True` and tokenizes with `Llama.tokenize(bytes, add_bos, special)`,
i.e. `llama_tokenize(..., add_special=add_bos, parse_special=special)`.

    llamacpp_tokenize.py file VOCAB.gguf TEXT_FILE OUT.u32   # ids of a whole file (no BOS)
    llamacpp_tokenize.py strings VOCAB.gguf < requests.json  # JSON list in, JSON list out

A request is {"text_hex": "...", "add_bos": bool, "special": bool}; the answer is the list of
ids for each request, in order. Text goes as hex so that any bytes survive JSON.
"""
import json
import struct
import sys

import llama_cpp


def load(path):
    return llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "file":
        llm = load(sys.argv[2])
        with open(sys.argv[3], "rb") as f:
            text = f.read()
        ids = llm.tokenize(text, add_bos=False, special=False)
        with open(sys.argv[4], "wb") as f:
            f.write(struct.pack(f"<{len(ids)}I", *ids))
        print(json.dumps({"llama_cpp_python": llama_cpp.__version__, "tokens": len(ids)}))
    elif len(sys.argv) >= 3 and sys.argv[1] == "strings":
        llm = load(sys.argv[2])
        requests = json.load(sys.stdin)
        answers = [llm.tokenize(bytes.fromhex(r["text_hex"]), add_bos=r["add_bos"], special=r["special"]) for r in requests]
        json.dump({"llama_cpp_python": llama_cpp.__version__, "ids": answers}, sys.stdout)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
