#!/usr/bin/env python3
"""Write a seed corpus for the `decode` fuzz target from the captured test
vectors: each message, prefixed with the context byte its header names
(bit 0: 4-octet AS, bit 2: ADD-PATH IPv4, bit 3: ADD-PATH IPv6)."""
import pathlib
import sys

here = pathlib.Path(__file__).resolve().parent
vectors = here.parent / "tests" / "vectors"
out = here / "corpus" / "decode"
out.mkdir(parents=True, exist_ok=True)
count = 0
for f in sorted(vectors.glob("*/*.hex")):
    text = f.read_text()
    comments = "\n".join(l for l in text.splitlines() if l.startswith("#"))
    data = bytes.fromhex("".join(l for l in text.splitlines() if not l.startswith("#")))
    ctx = 0
    if "4-octet AS numbers in use: yes" in comments:
        ctx |= 1
    line = next((l for l in comments.splitlines() if "ADD-PATH path ids in this direction" in l), "")
    tail = line.split("ADD-PATH path ids in this direction:")[-1]
    if "IPv4 unicast" in tail:
        ctx |= 4
    if "IPv6 unicast" in tail:
        ctx |= 8
    (out / f"{f.parent.name}-{f.stem}").write_bytes(bytes([ctx]) + data)
    count += 1
print(f"{count} seeds in {out.relative_to(here)}", file=sys.stderr)
