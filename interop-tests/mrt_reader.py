#!/usr/bin/env python3
"""An MRT reader for the tests, written from RFC 6396 and RFC 8050 and
independent of podbgp's own. For a TABLE_DUMP_V2 file it prints one JSON
object per RIB record: {"type": "rib", "prefix", "sequence", "entries":
[{"peer", "peer_as", "path_id", "origin", "as_path", "next_hop", "med",
"local_pref", "communities"}]}, each entry's peer resolved through the
PEER_INDEX_TABLE. For BGP4MP records (an update log): {"type":
"message", "time", "peer", "peer_as", "local", "local_as", "kind" (the
BGP message type), "announced", "withdrawn" (IPv4 prefixes of an
UPDATE)} and {"type": "state", "time", "peer", "peer_as", "old", "new"}.

    mrt_reader.py FILE...
"""

import ipaddress
import json
import struct
import sys


def attributes(buf, v6):
    out, i = {}, 0
    while i < len(buf):
        flags, code = buf[i], buf[i + 1]
        if flags & 0x10:
            length = struct.unpack("!H", buf[i + 2:i + 4])[0]
            value = buf[i + 4:i + 4 + length]
            i += 4 + length
        else:
            length = buf[i + 2]
            value = buf[i + 3:i + 3 + length]
            i += 3 + length
        if code == 1:
            out["origin"] = value[0]
        elif code == 2:
            path, j = [], 0
            while j < len(value):
                count = value[j + 1]
                # RFC 6396 §4.3.4: four-octet AS numbers.
                path += list(struct.unpack("!%dI" % count, value[j + 2:j + 2 + 4 * count]))
                j += 2 + 4 * count
            out["as_path"] = path
        elif code == 3:
            out["next_hop"] = str(ipaddress.IPv4Address(value))
        elif code == 4:
            out["med"] = struct.unpack("!I", value)[0]
        elif code == 5:
            out["local_pref"] = struct.unpack("!I", value)[0]
        elif code == 8:
            out["communities"] = ["%d:%d" % struct.unpack("!HH", value[k:k + 4])
                                  for k in range(0, len(value), 4)]
        elif code == 14:
            # The next hop alone: its length, then the address(es).
            nh_len = value[0]
            out["next_hop"] = str(ipaddress.IPv6Address(value[1:17])) if nh_len >= 16 \
                else str(ipaddress.IPv4Address(value[1:5]))
    return out


def ipv4_prefixes(buf):
    out, i = [], 0
    while i < len(buf):
        plen = buf[i]
        n = (plen + 7) // 8
        out.append("%s/%d" % (ipaddress.IPv4Address(bytes(buf[i + 1:i + 1 + n]) + bytes(4 - n)), plen))
        i += 1 + n
    return out


def bgp4mp(ts, subtype, body):
    as4 = subtype not in (0, 1)
    asz = 4 if as4 else 2
    fmt = "!I" if as4 else "!H"
    peer_as = struct.unpack(fmt, body[0:asz])[0]
    local_as = struct.unpack(fmt, body[asz:2 * asz])[0]
    i = 2 * asz + 2
    afi = struct.unpack("!H", body[i:i + 2])[0]
    i += 2
    alen = 16 if afi == 2 else 4
    make = ipaddress.IPv6Address if afi == 2 else ipaddress.IPv4Address
    peer, local = str(make(body[i:i + alen])), str(make(body[i + alen:i + 2 * alen]))
    i += 2 * alen
    out = {"time": ts, "peer": peer, "peer_as": peer_as, "local": local, "local_as": local_as}
    if subtype in (0, 5):
        old, new = struct.unpack("!HH", body[i:i + 4])
        out.update(type="state", old=old, new=new)
        return out
    msg = body[i:]
    out.update(type="message", kind=msg[18])
    if msg[18] == 2 and subtype in (1, 4):
        b = msg[19:]
        wlen = struct.unpack("!H", b[0:2])[0]
        alen2 = struct.unpack("!H", b[2 + wlen:4 + wlen])[0]
        out.update(withdrawn=ipv4_prefixes(b[2:2 + wlen]),
                   announced=ipv4_prefixes(b[4 + wlen + alen2:]))
    return out


def main():
    for path in sys.argv[1:]:
        read(open(path, "rb").read())


def read(data):
    peers, at = [], 0
    while at < len(data):
        ts, kind, subtype, length = struct.unpack("!IHHI", data[at:at + 12])
        body = data[at + 12:at + 12 + length]
        at += 12 + length
        if kind == 16:
            print(json.dumps(bgp4mp(ts, subtype, body)))
            continue
        if kind != 13:
            continue
        if subtype == 1:
            view_len = struct.unpack("!H", body[4:6])[0]
            i = 6 + view_len
            count = struct.unpack("!H", body[i:i + 2])[0]
            i += 2
            for _ in range(count):
                ptype = body[i]
                i += 5
                if ptype & 1:
                    addr = str(ipaddress.IPv6Address(body[i:i + 16]))
                    i += 16
                else:
                    addr = str(ipaddress.IPv4Address(body[i:i + 4]))
                    i += 4
                if ptype & 2:
                    asn = struct.unpack("!I", body[i:i + 4])[0]
                    i += 4
                else:
                    asn = struct.unpack("!H", body[i:i + 2])[0]
                    i += 2
                peers.append((addr, asn))
        elif subtype in (2, 4, 8, 10):
            v6 = subtype in (4, 10)
            add_path = subtype in (8, 10)
            seq = struct.unpack("!I", body[0:4])[0]
            plen = body[4]
            n = (plen + 7) // 8
            raw = body[5:5 + n] + bytes((16 if v6 else 4) - n)
            addr = ipaddress.IPv6Address(raw) if v6 else ipaddress.IPv4Address(raw)
            i = 5 + n
            count = struct.unpack("!H", body[i:i + 2])[0]
            i += 2
            entries = []
            for _ in range(count):
                index, originated = struct.unpack("!HI", body[i:i + 6])
                i += 6
                path_id = None
                if add_path:
                    path_id = struct.unpack("!I", body[i:i + 4])[0]
                    i += 4
                alen = struct.unpack("!H", body[i:i + 2])[0]
                attrs = attributes(body[i + 2:i + 2 + alen], v6)
                i += 2 + alen
                peer, peer_as = peers[index]
                entries.append(dict(peer=peer, peer_as=peer_as, path_id=path_id,
                                    originated=originated, **attrs))
            print(json.dumps({"type": "rib", "prefix": "%s/%d" % (addr, plen),
                              "sequence": seq, "entries": entries}))


if __name__ == "__main__":
    main()
