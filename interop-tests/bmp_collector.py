#!/usr/bin/env python3
"""A BMP collector for the tests, written from RFC 7854 and RFC 9069 and
independent of podbgp's own decoder: it accepts connections on PORT, and
writes one JSON object per BMP message to OUT (flushed at once).

    bmp_collector.py ADDRESS PORT OUT

Each object has "type" and, for per-peer messages, "peer" (the address),
"peer_type" (0 global, 3 Loc-RIB), "post" (the L flag) and "peer_as" and
"peer_id". Route Monitoring adds the UPDATE: "announced" and "withdrawn"
(IPv4 prefixes of the NLRI and Withdrawn Routes fields), "eor" (an empty
UPDATE), "next_hop" and "as_path". Statistics Reports add "stats" (type ->
value), Peer Up the ports and both OPENs' AS, Peer Down the reason,
Initiation and Termination their TLVs. Standard library only.
"""

import json
import socket
import struct
import sys


def ipv4_prefixes(buf):
    out, i = [], 0
    while i < len(buf):
        plen = buf[i]
        n = (plen + 7) // 8
        octets = bytes(buf[i + 1:i + 1 + n]) + bytes(4 - n)
        out.append("%d.%d.%d.%d/%d" % (*octets, plen))
        i += 1 + n
    return out


def update(msg):
    """A BGP UPDATE, whole (header included)."""
    body = msg[19:]
    wlen = struct.unpack("!H", body[0:2])[0]
    withdrawn = ipv4_prefixes(body[2:2 + wlen])
    alen = struct.unpack("!H", body[2 + wlen:4 + wlen])[0]
    attrs = body[4 + wlen:4 + wlen + alen]
    nlri = ipv4_prefixes(body[4 + wlen + alen:])
    # End-of-RIB (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
    # MP_UNREACH_NLRI of no prefixes (AFI and SAFI alone) for the rest.
    out = {"announced": nlri, "withdrawn": withdrawn, "eor": len(body) == 4}
    codes = []
    i = 0
    while i < len(attrs):
        flags, code = attrs[i], attrs[i + 1]
        if flags & 0x10:
            length = struct.unpack("!H", attrs[i + 2:i + 4])[0]
            value = attrs[i + 4:i + 4 + length]
            i += 4 + length
        else:
            length = attrs[i + 2]
            value = attrs[i + 3:i + 3 + length]
            i += 3 + length
        codes.append((code, length))
        if code == 2:
            path, j = [], 0
            while j < len(value):
                count = value[j + 1]
                path += list(struct.unpack("!%dI" % count, value[j + 2:j + 2 + 4 * count]))
                j += 2 + 4 * count
            out["as_path"] = path
        elif code == 3:
            out["next_hop"] = socket.inet_ntoa(value)
    if not nlri and not withdrawn and codes == [(15, 3)]:
        out["eor"] = True
    return out


def open_as(msg):
    """The AS an OPEN names: its 4-octet AS capability, else My AS."""
    body = msg[19:]
    my_as = struct.unpack("!H", body[1:3])[0]
    params = body[10:10 + body[9]]
    i = 0
    while i < len(params):
        ptype, plen = params[i], params[i + 1]
        if ptype == 2:
            caps, j = params[i + 2:i + 2 + plen], 0
            while j < len(caps):
                code, clen = caps[j], caps[j + 1]
                if code == 65:
                    return struct.unpack("!I", caps[j + 2:j + 6])[0]
                j += 2 + clen
        i += 2 + plen
    return my_as


def tlvs(buf):
    out, i = {}, 0
    while i + 4 <= len(buf):
        kind, length = struct.unpack("!HH", buf[i:i + 4])
        out[str(kind)] = buf[i + 4:i + 4 + length].decode("utf-8", "replace") \
            if kind != 1 or length != 2 else struct.unpack("!H", buf[i + 4:i + 6])[0]
        i += 4 + length
    return out


def bgp_len(buf):
    return struct.unpack("!H", buf[16:18])[0]


def message(kind, body):
    if kind == 4:
        return {"type": "initiation", "tlvs": tlvs(body)}
    if kind == 5:
        return {"type": "termination", "tlvs": tlvs(body)}
    peer_type, flags = body[0], body[1]
    v6 = peer_type != 3 and flags & 0x80
    addr = socket.inet_ntop(socket.AF_INET6, body[10:26]) if v6 else socket.inet_ntoa(body[22:26])
    peer_as, = struct.unpack("!I", body[26:30])
    out = {"peer": addr, "peer_type": peer_type, "post": bool(peer_type != 3 and flags & 0x40),
           "peer_as": peer_as, "peer_id": socket.inet_ntoa(body[30:34])}
    rest = body[42:]
    if kind == 0:
        out.update(type="route_monitoring", **update(rest))
    elif kind == 1:
        count, = struct.unpack("!I", rest[0:4])
        stats, i = {}, 4
        for _ in range(count):
            stype, slen = struct.unpack("!HH", rest[i:i + 4])
            value = rest[i + 4:i + 4 + slen]
            if slen == 4:
                stats[str(stype)] = struct.unpack("!I", value)[0]
            elif slen == 8:
                stats[str(stype)] = struct.unpack("!Q", value)[0]
            elif slen == 11:
                afi, safi, v = struct.unpack("!HBQ", value)
                stats["%d/%d/%d" % (stype, afi, safi)] = v
            i += 4 + slen
        out.update(type="stats", stats=stats)
    elif kind == 2:
        out.update(type="peer_down", reason=rest[0])
    elif kind == 3:
        local_port, remote_port = struct.unpack("!HH", rest[16:20])
        sent = rest[20:20 + bgp_len(rest[20:])]
        received = rest[20 + len(sent):20 + len(sent) + bgp_len(rest[20 + len(sent):])]
        info = rest[20 + len(sent) + len(received):]
        out.update(type="peer_up", local_port=local_port, remote_port=remote_port,
                   sent_open_as=open_as(sent), received_open_as=open_as(received), info=tlvs(info))
    else:
        out.update(type="other", kind=kind)
    return out


def serve(conn, out):
    buf = b""
    while True:
        data = conn.recv(65536)
        if not data:
            out.write(json.dumps({"type": "closed"}) + "\n")
            out.flush()
            return
        buf += data
        while len(buf) >= 6:
            version, length, kind = struct.unpack("!BIB", buf[:6])
            if version != 3:
                raise SystemExit("not BMP version 3")
            if len(buf) < length:
                break
            out.write(json.dumps(message(kind, buf[6:length])) + "\n")
            out.flush()
            buf = buf[length:]


def main():
    address, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(4)
    with open(path, "a") as out:
        while True:
            conn, _ = listener.accept()
            out.write(json.dumps({"type": "connected"}) + "\n")
            out.flush()
            serve(conn, out)
            conn.close()


if __name__ == "__main__":
    main()
