#!/usr/bin/env python3
"""Split pcap captures of BGP sessions into BGP messages and describe them.

Standard library only.  Reads classic pcap files (not pcapng; tcpdump -w
writes classic pcap), reassembles every TCP direction by sequence number
(retransmissions, overlapping segments, several BGP messages in one segment
and one message split over several segments are all handled), splits each
byte stream into BGP messages by the length field of the 19-byte header and
decodes them into plain-words descriptions.

The same TCP stream may be captured twice (on the sender's and on the
receiver's interface): segments of all files are merged per
(4-tuple, initial sequence number), so the duplicate copy is just another
retransmission.

    python3 bgpcap.py dump a.pcap b.pcap ...   # every message, decoded
"""

import ipaddress
import struct
import sys

MARKER = b"\xff" * 16
MSG_TYPES = {1: "OPEN", 2: "UPDATE", 3: "NOTIFICATION", 4: "KEEPALIVE", 5: "ROUTE-REFRESH"}

# --------------------------------------------------------------------------
# pcap and packet parsing


def read_pcap(path):
    """Yield (timestamp, linktype, packet bytes, original length)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian, frac = "<", 1e6
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian, frac = ">", 1e6
    elif magic == b"\x4d\x3c\xb2\xa1":
        endian, frac = "<", 1e9
    elif magic == b"\xa1\xb2\x3c\x4d":
        endian, frac = ">", 1e9
    else:
        raise ValueError(f"{path}: not a classic pcap file (pcapng is not supported)")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        ts_s, ts_f, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        pkt = data[off:off + incl]
        off += incl
        if len(pkt) < incl:
            break  # file cut short while tcpdump was writing
        yield ts_s + ts_f / frac, linktype, pkt, orig


def _l3(linktype, pkt):
    """Return (ethertype, offset of the network header)."""
    if linktype == 1:  # Ethernet
        et, off = struct.unpack("!H", pkt[12:14])[0], 14
        while et in (0x8100, 0x88A8) and len(pkt) >= off + 4:
            et, off = struct.unpack("!H", pkt[off + 2:off + 4])[0], off + 4
        return et, off
    if linktype == 113:  # Linux cooked v1
        return struct.unpack("!H", pkt[14:16])[0], 16
    if linktype == 276:  # Linux cooked v2
        return struct.unpack("!H", pkt[0:2])[0], 20
    if linktype in (12, 101):  # raw IP
        return (0x0800 if pkt[0] >> 4 == 4 else 0x86DD), 0
    raise ValueError(f"unsupported pcap link type {linktype}")


def parse_tcp(linktype, pkt):
    """Return (src, sport, dst, dport, seq, flags, payload) or None."""
    et, off = _l3(linktype, pkt)
    if et == 0x0800:
        if len(pkt) < off + 20:
            return None
        ihl = (pkt[off] & 0x0F) * 4
        total = struct.unpack("!H", pkt[off + 2:off + 4])[0]
        frag = struct.unpack("!H", pkt[off + 6:off + 8])[0]
        if pkt[off + 9] != 6 or frag & 0x3FFF:
            return None  # not TCP, or an IP fragment
        src = str(ipaddress.IPv4Address(pkt[off + 12:off + 16]))
        dst = str(ipaddress.IPv4Address(pkt[off + 16:off + 20]))
        end = off + total if total else len(pkt)  # total 0: segmentation offload
        tcp = off + ihl
    elif et == 0x86DD:
        if len(pkt) < off + 40:
            return None
        plen = struct.unpack("!H", pkt[off + 4:off + 6])[0]
        nh = pkt[off + 6]
        src = str(ipaddress.IPv6Address(pkt[off + 8:off + 24]))
        dst = str(ipaddress.IPv6Address(pkt[off + 24:off + 40]))
        end = off + 40 + plen if plen else len(pkt)
        tcp = off + 40
        while nh in (0, 43, 60):  # hop-by-hop, routing, destination options
            nh, tcp = pkt[tcp], tcp + (pkt[tcp + 1] + 1) * 8
        if nh != 6:
            return None  # not TCP (a fragment header lands here too)
    else:
        return None
    end = min(end, len(pkt))  # Ethernet padding is beyond `end`
    sport, dport, seq, _ack, offflags = struct.unpack("!HHIIH", pkt[tcp:tcp + 14])
    doff = (offflags >> 12) * 4
    flags = offflags & 0x1FF
    return src, sport, dst, dport, seq, flags, bytes(pkt[tcp + doff:end])


# --------------------------------------------------------------------------
# TCP reassembly


class Stream:
    """One direction of one TCP connection."""

    def __init__(self, key, isn):
        self.key = key  # (src, sport, dst, dport)
        self.isn = isn  # None when the SYN was not captured
        self.segs = []  # (seq, ts, payload)
        self.t0 = None
        self.fin = False

    @property
    def src(self):
        return self.key[0]

    @property
    def dst(self):
        return self.key[2]

    def assemble(self):
        """Return (bytes, [(offset, ts)], note) -- contiguous data from the start."""
        if not self.segs:
            return b"", [], ""
        base = (self.isn + 1) & 0xFFFFFFFF if self.isn is not None else min(s[0] for s in self.segs)
        rel = []
        for seq, ts, data in self.segs:
            r = (seq - base) & 0xFFFFFFFF
            if r >= 0x80000000:  # before the start: keep only the part after it
                cut = 0x100000000 - r
                if cut >= len(data):
                    continue
                r, data = 0, data[cut:]
            rel.append((r, ts, data))
        rel.sort(key=lambda x: (x[0], x[1]))
        buf = bytearray()
        times = []
        note = ""
        for r, ts, data in rel:
            if r > len(buf):
                note = f"gap at stream offset {len(buf)} (next segment starts at {r})"
                break
            new = data[len(buf) - r:]
            if new:
                times.append((len(buf), ts))
                buf += new
        return bytes(buf), times, note


def reassemble(pcaps):
    """Read the pcap files and return all TCP streams (one per direction)."""
    pkts = []
    for path in pcaps:
        for ts, lt, pkt, _orig in read_pcap(path):
            p = parse_tcp(lt, pkt)
            if p:
                pkts.append((ts, p))
    pkts.sort(key=lambda x: x[0])
    current = {}
    streams = []
    for ts, (src, sport, dst, dport, seq, flags, payload) in pkts:
        key = (src, sport, dst, dport)
        st = current.get(key)
        if flags & 0x02:  # SYN
            if st is None or st.isn != seq:
                st = Stream(key, seq)
                st.t0 = ts
                current[key] = st
                streams.append(st)
            continue
        if st is None:
            st = Stream(key, None)
            st.t0 = ts
            current[key] = st
            streams.append(st)
        if payload:
            st.segs.append((seq, ts, payload))
        if flags & 0x01:
            st.fin = True
    # pair each direction with the opposite one of the same connection
    by_key = {}
    for st in streams:
        by_key.setdefault(st.key, []).append(st)
    for st in streams:
        rkey = (st.key[2], st.key[3], st.key[0], st.key[1])
        cands = by_key.get(rkey, [])
        st.reverse = min(cands, key=lambda o: abs(o.t0 - st.t0)) if cands else None
    return streams


class Message:
    def __init__(self, stream, index, ts, raw):
        self.stream = stream
        self.index = index  # position within its stream
        self.ts = ts
        self.raw = raw
        self.type = raw[18]

    @property
    def src(self):
        return self.stream.src

    @property
    def dst(self):
        return self.stream.dst

    @property
    def type_name(self):
        return MSG_TYPES.get(self.type, f"type {self.type}")


def split_messages(stream):
    data, times, note = stream.assemble()
    msgs = []
    off = 0
    ti = 0
    while off + 19 <= len(data):
        if data[off:off + 16] != MARKER:
            note = (note + "; " if note else "") + f"bad marker at stream offset {off}"
            break
        length = struct.unpack("!H", data[off + 16:off + 18])[0]
        if length < 19:
            note = (note + "; " if note else "") + f"bad length {length} at offset {off}"
            break
        if off + length > len(data):
            break  # incomplete last message
        while ti + 1 < len(times) and times[ti + 1][0] <= off:
            ti += 1
        msgs.append(Message(stream, len(msgs), times[ti][1], data[off:off + length]))
        off += length
    stream.messages = msgs
    stream.note = note
    return msgs


def all_messages(pcaps):
    streams = reassemble(pcaps)
    msgs = []
    for st in streams:
        msgs += split_messages(st)
    for st in streams:
        st.ctx = None
    for st in streams:
        st.ctx = session_context(st)
    msgs.sort(key=lambda m: (m.ts, m.stream.key, m.index))
    return streams, msgs


# --------------------------------------------------------------------------
# session context (negotiated 4-octet AS, ADD-PATH) from the two OPENs


def open_caps(raw):
    """Return list of (code, value bytes) of an OPEN message."""
    caps = []
    for ptype, pval in open_params(raw)[1]:
        if ptype == 2:
            i = 0
            while i + 2 <= len(pval):
                code, ln = pval[i], pval[i + 1]
                caps.append((code, pval[i + 2:i + 2 + ln]))
                i += 2 + ln
    return caps


def open_params(raw):
    """Return (extended?, [(type, value)]) of an OPEN's optional parameters."""
    body = raw[19:]
    oplen = body[9]
    params = []
    if oplen == 255 and len(body) > 10 and body[10] == 255:  # RFC 9072
        oplen = struct.unpack("!H", body[11:13])[0]
        i, end = 13, 13 + oplen
        while i + 3 <= end:
            t, ln = body[i], struct.unpack("!H", body[i + 1:i + 3])[0]
            params.append((t, body[i + 3:i + 3 + ln]))
            i += 3 + ln
        return True, params
    i, end = 10, 10 + oplen
    while i + 2 <= end:
        t, ln = body[i], body[i + 1]
        params.append((t, body[i + 2:i + 2 + ln]))
        i += 2 + ln
    return False, params


def first_open(stream):
    if stream is None:
        return None
    for m in getattr(stream, "messages", []):
        if m.type == 1:
            return m
    return None


def session_context(stream):
    """What the sender of `stream` and its peer negotiated."""
    mine, theirs = first_open(stream), first_open(stream.reverse)
    ctx = {"as4": True, "addpath": set(), "mine": mine, "theirs": theirs}
    if mine is None or theirs is None:
        return ctx
    c1, c2 = dict(), dict()
    for code, val in open_caps(mine.raw):
        c1.setdefault(code, []).append(val)
    for code, val in open_caps(theirs.raw):
        c2.setdefault(code, []).append(val)
    ctx["as4"] = 65 in c1 and 65 in c2
    send, recv = set(), set()
    for val in c1.get(69, []):
        for i in range(0, len(val) - 3, 4):
            afi, safi, sr = struct.unpack("!HBB", val[i:i + 4])
            if sr & 2:
                send.add((afi, safi))
    for val in c2.get(69, []):
        for i in range(0, len(val) - 3, 4):
            afi, safi, sr = struct.unpack("!HBB", val[i:i + 4])
            if sr & 1:
                recv.add((afi, safi))
    ctx["addpath"] = send & recv
    return ctx


# --------------------------------------------------------------------------
# decoding into plain words

AFI = {1: "IPv4", 2: "IPv6", 25: "L2VPN"}
SAFI = {1: "unicast", 2: "multicast", 4: "labeled unicast", 128: "MPLS VPN", 70: "EVPN"}
CAP_NAMES = {
    1: "multiprotocol extensions", 2: "route refresh", 3: "outbound route filtering",
    5: "extended next hop encoding", 6: "extended message", 9: "BGP role",
    64: "graceful restart", 65: "4-octet AS number", 67: "dynamic capability",
    69: "ADD-PATH", 70: "enhanced route refresh", 71: "long-lived graceful restart",
    73: "FQDN (hostname)", 75: "software version", 128: "route refresh (old Cisco code)",
}
ATTR_NAMES = {
    1: "ORIGIN", 2: "AS_PATH", 3: "NEXT_HOP", 4: "MULTI_EXIT_DISC", 5: "LOCAL_PREF",
    6: "ATOMIC_AGGREGATE", 7: "AGGREGATOR", 8: "COMMUNITIES", 9: "ORIGINATOR_ID",
    10: "CLUSTER_LIST", 14: "MP_REACH_NLRI", 15: "MP_UNREACH_NLRI",
    16: "EXTENDED_COMMUNITIES", 17: "AS4_PATH", 18: "AS4_AGGREGATOR", 32: "LARGE_COMMUNITY",
    35: "OTC (only to customer)",
}
WELL_KNOWN_COMMUNITIES = {
    0xFFFFFF01: "NO_EXPORT", 0xFFFFFF02: "NO_ADVERTISE", 0xFFFFFF03: "NO_EXPORT_SUBCONFED",
    0xFFFFFF04: "NOPEER", 0xFFFF029A: "BLACKHOLE", 0xFFFF0006: "LLGR_STALE",
    0xFFFF0007: "NO_LLGR", 0xFFFF0000: "GRACEFUL_SHUTDOWN",
}
ERR_CODES = {1: "Message Header Error", 2: "OPEN Message Error", 3: "UPDATE Message Error",
             4: "Hold Timer Expired", 5: "Finite State Machine Error", 6: "Cease",
             7: "ROUTE-REFRESH Message Error"}
ERR_SUB = {
    1: {1: "Connection Not Synchronized", 2: "Bad Message Length", 3: "Bad Message Type"},
    2: {1: "Unsupported Version Number", 2: "Bad Peer AS", 3: "Bad BGP Identifier",
        4: "Unsupported Optional Parameter", 6: "Unacceptable Hold Time",
        7: "Unsupported Capability", 11: "Role Mismatch"},
    3: {1: "Malformed Attribute List", 2: "Unrecognized Well-known Attribute",
        3: "Missing Well-known Attribute", 4: "Attribute Flags Error",
        5: "Attribute Length Error", 6: "Invalid ORIGIN Attribute", 8: "Invalid NEXT_HOP Attribute",
        9: "Optional Attribute Error", 10: "Invalid Network Field", 11: "Malformed AS_PATH"},
    6: {1: "Maximum Number of Prefixes Reached", 2: "Administrative Shutdown",
        3: "Peer De-configured", 4: "Administrative Reset", 5: "Connection Rejected",
        6: "Other Configuration Change", 7: "Connection Collision Resolution",
        8: "Out of Resources", 9: "Hard Reset", 10: "BFD Down"},
}


def afs(afi, safi):
    return f"AFI {afi} ({AFI.get(afi, '?')}) SAFI {safi} ({SAFI.get(safi, '?')})"


def ip_str(b):
    if len(b) == 4:
        return str(ipaddress.IPv4Address(b))
    if len(b) == 16:
        return str(ipaddress.IPv6Address(b))
    return "0x" + b.hex()


def parse_prefixes(data, afi, addpath):
    """Return list of strings like 'path id 1 10.0.0.0/24'."""
    out = []
    i = 0
    alen = 4 if afi == 1 else 16
    while i < len(data):
        pid = None
        if addpath:
            pid = struct.unpack("!I", data[i:i + 4])[0]
            i += 4
        plen = data[i]
        nb = (plen + 7) // 8
        pb = data[i + 1:i + 1 + nb]
        i += 1 + nb
        addr = ip_str(pb + bytes(alen - nb))
        s = f"{addr}/{plen}"
        if nb and plen % 8 and pb[-1] & (0xFF >> (plen % 8)):
            s += f" (nonzero bits after the prefix length: 0x{pb.hex()})"
        out.append(s if pid is None else f"path id {pid} {s}")
    return out


def flags_str(fl):
    names = []
    names.append("optional" if fl & 0x80 else "well-known")
    names.append("transitive" if fl & 0x40 else "non-transitive")
    if fl & 0x20:
        names.append("partial")
    if fl & 0x10:
        names.append("extended-length")
    if fl & 0x0F:
        names.append(f"low bits 0x{fl & 0x0F:x} set")
    return f"flags 0x{fl:02x} ({', '.join(names)})"


def as_path_str(v, width):
    segs = []
    i = 0
    names = {1: "AS_SET", 2: "AS_SEQUENCE", 3: "AS_CONFED_SEQUENCE", 4: "AS_CONFED_SET"}
    while i + 2 <= len(v):
        t, n = v[i], v[i + 1]
        i += 2
        asns = [int.from_bytes(v[i + k * width:i + (k + 1) * width], "big") for k in range(n)]
        i += n * width
        segs.append(f"{names.get(t, f'segment type {t}')} of {n} [{' '.join(map(str, asns))}]")
    if i != len(v):
        segs.append(f"{len(v) - i} trailing bytes")
    return ", ".join(segs) if segs else "empty"


def ext_comm_str(c):
    t, st, val = c[0], c[1], c[2:]
    base = t & 0x3F
    kind = {0x02: "route target", 0x03: "route origin (site of origin)"}.get(st)
    trans = "non-transitive " if t & 0x40 else ""
    if base == 0x00 and kind:
        return f"{trans}{kind}, 2-octet AS specific (type 0x{t:02x} subtype 0x{st:02x}): " \
               f"{int.from_bytes(val[:2], 'big')}:{int.from_bytes(val[2:], 'big')}"
    if base == 0x01 and kind:
        return f"{trans}{kind}, IPv4 address specific (type 0x{t:02x} subtype 0x{st:02x}): " \
               f"{ip_str(val[:4])}:{int.from_bytes(val[4:], 'big')}"
    if base == 0x02 and kind:
        return f"{trans}{kind}, 4-octet AS specific (type 0x{t:02x} subtype 0x{st:02x}): " \
               f"{int.from_bytes(val[:4], 'big')}:{int.from_bytes(val[4:], 'big')}"
    return f"type 0x{t:02x} subtype 0x{st:02x} value 0x{val.hex()}"


def describe_attr(code, fl, v, ctx):
    name = ATTR_NAMES.get(code, "unknown")
    head = f"attribute {code} {name}, {flags_str(fl)}, length {len(v)}"
    if code == 1:
        return f"{head}: {v[0]} ({ {0: 'IGP', 1: 'EGP', 2: 'INCOMPLETE'}.get(v[0], '?') })"
    if code == 2:
        w = 4 if ctx["as4"] else 2
        return f"{head}, {w}-octet AS numbers: {as_path_str(v, w)}"
    if code == 17:
        return f"{head}, 4-octet AS numbers: {as_path_str(v, 4)}"
    if code == 3 or code == 9:
        return f"{head}: {ip_str(v)}"
    if code in (4, 5):
        return f"{head}: {struct.unpack('!I', v)[0]}"
    if code == 35 and len(v) == 4:
        return f"{head}: AS {struct.unpack('!I', v)[0]}"
    if code == 6:
        return f"{head} (no value)"
    if code in (7, 18):
        w = 4 if (code == 18 or len(v) == 8) else 2
        return f"{head}: AS {int.from_bytes(v[:w], 'big')} ({w}-octet), " \
               f"router {ip_str(v[w:w + 4])}"
    if code == 8:
        cs = []
        for i in range(0, len(v), 4):
            c = struct.unpack("!I", v[i:i + 4])[0]
            s = f"{c >> 16}:{c & 0xFFFF}"
            if c in WELL_KNOWN_COMMUNITIES:
                s += f" ({WELL_KNOWN_COMMUNITIES[c]})"
            cs.append(s)
        return f"{head}: {', '.join(cs)}"
    if code == 10:
        return f"{head}: {', '.join(ip_str(v[i:i + 4]) for i in range(0, len(v), 4))}"
    if code == 16:
        return f"{head}: " + "; ".join(ext_comm_str(v[i:i + 8]) for i in range(0, len(v), 8))
    if code == 32:
        ls = []
        for i in range(0, len(v), 12):
            a, b, c = struct.unpack("!III", v[i:i + 12])
            ls.append(f"{a}:{b}:{c}")
        return f"{head}: {', '.join(ls)}"
    if code == 14:
        afi, safi, nhl = struct.unpack("!HBB", v[:4])
        nh = v[4:4 + nhl]
        if nhl == 32:
            nhs = f"global {ip_str(nh[:16])} + link-local {ip_str(nh[16:])}"
        elif nhl == 16:
            nhs = f"global {ip_str(nh)}"
        else:
            nhs = ip_str(nh)
        res = v[4 + nhl]
        pfx = parse_prefixes(v[5 + nhl:], afi, (afi, safi) in ctx["addpath"])
        return (f"{head}: {afs(afi, safi)}, next hop length {nhl}: {nhs}; reserved byte {res}; "
                f"NLRI ({len(pfx)}): {', '.join(pfx) if pfx else 'none'}")
    if code == 15:
        afi, safi = struct.unpack("!HB", v[:3])
        pfx = parse_prefixes(v[3:], afi, (afi, safi) in ctx["addpath"])
        return f"{head}: {afs(afi, safi)}, withdrawn ({len(pfx)}): {', '.join(pfx) if pfx else 'none'}"
    return f"{head}: 0x{v.hex()}"


def describe_cap(code, val):
    name = CAP_NAMES.get(code, "unknown")
    head = f"capability {code} ({name}), length {len(val)}"
    if code == 1:
        afi, res, safi = struct.unpack("!HBB", val)
        return f"{head}: {afs(afi, safi)}, reserved byte {res}"
    if code in (2, 6, 70, 128) and not val:
        return f"{head}: no value"
    if code == 65:
        return f"{head}: AS {struct.unpack('!I', val)[0]}"
    if code == 64:
        fl = val[0] >> 4
        rt = struct.unpack("!H", val[:2])[0] & 0x0FFF
        s = f"{head}: restart flags 0x{fl:x} (R={fl >> 3 & 1}, N={fl >> 2 & 1}), restart time {rt} s"
        fams = []
        for i in range(2, len(val), 4):
            afi, safi, f = struct.unpack("!HBB", val[i:i + 4])
            fams.append(f"{afs(afi, safi)} flags 0x{f:02x} (forwarding state preserved={f >> 7})")
        return s + ("; " + "; ".join(fams) if fams else "; no address families")
    if code == 71:
        fams = []
        for i in range(0, len(val), 7):
            afi, safi, f = struct.unpack("!HBB", val[i:i + 4])
            st = int.from_bytes(val[i + 4:i + 7], "big")
            fams.append(f"{afs(afi, safi)} flags 0x{f:02x}, long-lived stale time {st} s")
        return f"{head}: " + ("; ".join(fams) if fams else "no address families")
    if code == 69:
        fams = []
        for i in range(0, len(val), 4):
            afi, safi, sr = struct.unpack("!HBB", val[i:i + 4])
            fams.append(f"{afs(afi, safi)} send/receive {sr} "
                        f"({ {1: 'receive', 2: 'send', 3: 'send and receive'}.get(sr, '?') })")
        return f"{head}: " + "; ".join(fams)
    if code == 5:
        fams = []
        for i in range(0, len(val), 6):
            a, s, n = struct.unpack("!HHH", val[i:i + 6])
            fams.append(f"NLRI AFI {a} ({AFI.get(a, '?')}) SAFI {s} ({SAFI.get(s, '?')}) "
                        f"with next hop AFI {n} ({AFI.get(n, '?')})")
        return f"{head}: " + "; ".join(fams)
    if code == 73:
        hl = val[0]
        host = val[1:1 + hl].decode("utf-8", "replace")
        dl = val[1 + hl]
        dom = val[2 + hl:2 + hl + dl].decode("utf-8", "replace")
        return f'{head}: hostname length {hl} "{host}", domain name length {dl} "{dom}"'
    if code == 75:
        return f'{head}: length {val[0]} "{val[1:1 + val[0]].decode("utf-8", "replace")}"'
    if code == 9 and len(val) == 1:
        role = {0: "provider", 1: "route server", 2: "route server client", 3: "customer",
                4: "peer"}.get(val[0], "?")
        return f"{head}: role {val[0]} ({role})"
    return f"{head}: 0x{val.hex()}"


def describe(m):
    """Plain-words description of message m, as a list of lines."""
    raw = m.raw
    ctx = m.stream.ctx or {"as4": True, "addpath": set()}
    length = struct.unpack("!H", raw[16:18])[0]
    lines = []
    if m.type == 1:
        ver, my_as, hold = struct.unpack("!BHH", raw[19:24])
        bgpid = ip_str(raw[24:28])
        extended, params = open_params(raw)
        asn = f"{my_as}" + (" (AS_TRANS)" if my_as == 23456 else "")
        lines.append(f"OPEN, length {length}; version {ver}; my AS {asn}; hold time {hold}; "
                     f"BGP identifier {bgpid}; optional parameters length {raw[28]}"
                     + (" (RFC 9072 extended format)" if extended else ""))
        if not params:
            lines.append("no optional parameters (no capabilities)")
        per = []
        for t, v in params:
            if t == 2:
                n = 0
                i = 0
                while i + 2 <= len(v):
                    n += 1
                    i += 2 + v[i + 1]
                per.append(n)
        if per:
            if all(n == 1 for n in per):
                lines.append(f"{len(per)} optional parameters of type 2 (capabilities), "
                             "each holding exactly one capability")
            else:
                lines.append(f"{len(per)} optional parameter(s) of type 2 (capabilities) holding "
                             f"{' + '.join(map(str, per))} capabilities")
        for t, v in params:
            if t != 2:
                lines.append(f"optional parameter type {t}, length {len(v)}: 0x{v.hex()}")
                continue
            i = 0
            while i + 2 <= len(v):
                code, ln = v[i], v[i + 1]
                lines.append(describe_cap(code, v[i + 2:i + 2 + ln]))
                i += 2 + ln
        return lines
    if m.type == 4:
        return [f"KEEPALIVE, length {length}, no body"]
    if m.type == 5:
        afi, sub, safi = struct.unpack("!HBB", raw[19:23])
        subn = {0: "normal route refresh request", 1: "BoRR (beginning of route refresh)",
                2: "EoRR (end of route refresh)"}.get(sub, "?")
        s = f"ROUTE-REFRESH, length {length}: {afs(afi, safi)}, subtype {sub} = {subn}"
        if len(raw) > 23:
            s += f"; trailing ORF data 0x{raw[23:].hex()}"
        return [s]
    if m.type == 3:
        code, sub = raw[19], raw[20]
        data = raw[21:]
        s = (f"NOTIFICATION, length {length}: error code {code} ({ERR_CODES.get(code, '?')}), "
             f"subcode {sub} ({ERR_SUB.get(code, {}).get(sub, '?')})")
        if not data:
            s += "; no data"
        elif code == 6 and sub in (2, 4) and data[0] == len(data) - 1:
            s += (f'; data is an RFC 9003 shutdown communication: length byte {data[0]}, text '
                  f'"{data[1:].decode("utf-8", "replace")}"')
        elif code == 2 and sub == 2:
            s += f"; data 0x{data.hex()} ({len(data)} bytes"
            if len(data) in (2, 4):
                s += f" = AS {int.from_bytes(data, 'big')}"
            s += ")"
        else:
            s += f"; data ({len(data)} bytes) 0x{data.hex()}"
        return [s]
    if m.type == 2:
        wl = struct.unpack("!H", raw[19:21])[0]
        wd = raw[21:21 + wl]
        al = struct.unpack("!H", raw[21 + wl:23 + wl])[0]
        attrs = raw[23 + wl:23 + wl + al]
        nlri = raw[23 + wl + al:]
        ap4 = (1, 1) in ctx["addpath"]
        if wl == 0 and al == 0 and not nlri:
            return [f"UPDATE, length {length}: End-of-RIB marker for IPv4 unicast "
                    "(withdrawn routes length 0, path attribute length 0, no NLRI)"]
        lines.append(f"UPDATE, length {length}; withdrawn routes length {wl}; "
                     f"total path attribute length {al}"
                     + ("; ADD-PATH path identifiers in use for: "
                        + ", ".join(f"{AFI.get(a, a)} {SAFI.get(b, b)}" for a, b in sorted(ctx["addpath"]))
                        if ctx["addpath"] else ""))
        if wl:
            w = parse_prefixes(wd, 1, ap4)
            lines.append(f"withdrawn IPv4 routes ({len(w)}): {', '.join(w)}")
        i = 0
        parsed = []
        while i + 3 <= len(attrs):
            fl, code = attrs[i], attrs[i + 1]
            if fl & 0x10:
                ln = struct.unpack("!H", attrs[i + 2:i + 4])[0]
                v = attrs[i + 4:i + 4 + ln]
                i += 4 + ln
            else:
                ln = attrs[i + 2]
                v = attrs[i + 3:i + 3 + ln]
                i += 3 + ln
            parsed.append((code, fl, v))
        if len(parsed) == 1 and parsed[0][0] == 15 and len(parsed[0][2]) == 3 and not nlri and not wl:
            afi, safi = struct.unpack("!HB", parsed[0][2])
            lines = [f"UPDATE, length {length}: End-of-RIB marker for {afs(afi, safi)} "
                     f"(only an MP_UNREACH_NLRI attribute, {flags_str(parsed[0][1])}, "
                     "length 3, with no withdrawn routes)"]
            return lines
        if parsed:
            lines.append("attribute order (type codes): " + " ".join(str(p[0]) for p in parsed))
        for code, fl, v in parsed:
            lines.append(describe_attr(code, fl, v, ctx))
        if nlri:
            n = parse_prefixes(nlri, 1, ap4)
            lines.append(f"IPv4 NLRI ({len(n)}): {', '.join(n)}")
        else:
            lines.append("no IPv4 NLRI field")
        return lines
    return [f"{m.type_name}, length {length}: 0x{raw[19:].hex()}"]


# --------------------------------------------------------------------------


def main(argv):
    if len(argv) < 3 or argv[1] != "dump":
        print(__doc__, file=sys.stderr)
        return 2
    streams, msgs = all_messages(argv[2:])
    for st in streams:
        if st.note:
            print(f"# note: {st.key}: {st.note}", file=sys.stderr)
    for m in msgs:
        print(f"{m.ts:.6f} {m.src} -> {m.dst} #{m.index} {m.type_name} {len(m.raw)}")
        for line in describe(m):
            print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
