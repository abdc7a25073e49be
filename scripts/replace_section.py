#!/usr/bin/env python3
"""Replaces one generated section of a Markdown file, in place.

    replace_section.py FILE NAME CONTENT_FILE

The section is everything between `<!-- begin NAME -->` and `<!-- end NAME -->`; when the
markers are absent they are appended at the end. Lets several scripts each own a part of
docs/RESULTS.md without rewriting the others' parts.
"""
import sys

path, name, content_path = sys.argv[1:4]
begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
text = open(path, encoding="utf-8").read()
content = open(content_path, encoding="utf-8").read().rstrip("\n")
block = f"{begin}\n{content}\n{end}"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    text = head + block + tail
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
tmp = path + ".tmp"
open(tmp, "w", encoding="utf-8").write(text)
__import__("os").replace(tmp, path)
