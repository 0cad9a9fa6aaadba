#!/usr/bin/env python3
"""Cut the RIB excerpt the MRT replay test uses from a TABLE_DUMP file.

usage: ris_excerpt.py BVIEW.gz OUT.gz

Whole records, as they are in the source, in its order: every record of
each prefix that has two paths or more, and every record of one in
twenty of the other prefixes. TABLE_DUMP holds one path per record and
a prefix's records follow one another (RFC 6396 section 4.2).
"""

import gzip
import struct
import sys


def records(data):
    at = 0
    while at < len(data):
        kind, subtype, length = struct.unpack_from(">HHI", data, at + 4)
        if kind != 12:
            sys.exit(f"record at byte {at}: type {kind}, not TABLE_DUMP")
        whole = data[at : at + 12 + length]
        v6 = subtype == 2
        width = 16 if v6 else 4
        body = whole[12:]
        prefix = (body[4 : 4 + width], body[4 + width])
        yield prefix, whole
        at += 12 + length


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data = gzip.open(sys.argv[1]).read()
    groups = []
    for prefix, whole in records(data):
        if groups and groups[-1][0] == prefix:
            groups[-1][1].append(whole)
        else:
            groups.append((prefix, [whole]))
    out = bytearray()
    single = 0
    kept = 0
    for _, recs in groups:
        if len(recs) == 1:
            single += 1
            if single % 20 != 1:
                continue
        out += b"".join(recs)
        kept += 1
    # mtime 0: the same input gives the same bytes.
    with open(sys.argv[2], "wb") as f:
        f.write(gzip.compress(bytes(out), compresslevel=9, mtime=0))
    print(f"{kept} of {len(groups)} prefixes, {len(out)} bytes")


if __name__ == "__main__":
    main()
