#!/usr/bin/env python3
"""Pick BGP messages out of the capture and write them as test vectors.

    python3 make_vectors.py WORKDIR VECTORDIR

WORKDIR is the directory capture.sh filled (HOST.pcap files and
versions.json); VECTORDIR is tests/vectors/. Every vector below names its
sender and receiver host, the TCP transport (IPv4 or IPv6 addresses) and a
predicate; the first message of that direction matching the predicate is
written to VECTORDIR/IMPL/NAME.hex with a comment header. The `# expect:`
lines are generated from the bytes by bgpcap.describe(), so they always
match the file. Standard library only.
"""

import json
import os
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bgpcap  # noqa: E402

# host -> (implementation, IPv4 address, IPv6 address, config file)
HOSTS = {
    "f1": ("frr", "10.255.0.11", "fd00:255::11", "frr-f1.conf"),
    "b1": ("bird", "10.255.0.12", "fd00:255::12", "bird-b1.conf"),
    "g1": ("gobgp", "10.255.0.13", "fd00:255::13", "gobgp-g1.toml"),
    "f2": ("frr", "10.255.0.21", "fd00:255::21", "frr-f2.conf"),
    "b2": ("bird", "10.255.0.22", "fd00:255::22", "bird-b2.conf"),
    "g2": ("gobgp", "10.255.0.23", "fd00:255::23", "gobgp-g2.toml"),
    "b3": ("bird", "10.255.0.33", "fd00:255::33", "bird-b3.conf"),
    "x": ("bird", "10.255.0.41", "fd00:255::41", "bird-x.conf"),
    "w": ("bird", "10.255.0.51", "fd00:255::51", "bird-w.conf"),
}
ASN = {"f1": 4200000001, "b1": 4200000001, "g1": 4200000001, "f2": 4200000002,
       "b2": 4200000003, "g2": 4200000004, "b3": 65003, "x": 4200000009, "w": 4200000077}
ROLE = {
    "f1": "FRR f1, iBGP mesh", "b1": "BIRD b1, iBGP mesh", "g1": "GoBGP g1, iBGP mesh",
    "f2": "FRR f2, eBGP mesh", "b2": "BIRD b2, eBGP mesh", "g2": "GoBGP g2, eBGP mesh",
    "b3": "BIRD b3, 2-octet-only speaker (enable as4 off)",
    "x": "BIRD x, route collector with ADD-PATH receive",
    "w": "BIRD w, AS 4200000077 where its peers expect 4200000066",
}


# --------------------------------------------------------------------------
# a compact view of a message, for the predicates


def strip_pid(p):
    return p.split(" ")[-1] if p.startswith("path id ") else p


def info(m):
    raw = m.raw
    ctx = m.stream.ctx or {"as4": True, "addpath": set()}
    i = {"type": m.type_name, "nlri4": [], "wd4": [], "reach": None, "unreach": None,
         "attrs": [], "eor": None, "notif": None, "rr": None, "pids": []}
    if m.type == 3:
        i["notif"] = (raw[19], raw[20])
    elif m.type == 5:
        afi, sub, _safi = struct.unpack("!HBB", raw[19:23])
        i["rr"] = (afi, sub)
    elif m.type == 2:
        ap4 = (1, 1) in ctx["addpath"]
        wl = struct.unpack("!H", raw[19:21])[0]
        al = struct.unpack("!H", raw[21 + wl:23 + wl])[0]
        attrs = raw[23 + wl:23 + wl + al]
        nlri = raw[23 + wl + al:]
        wd = bgpcap.parse_prefixes(raw[21:21 + wl], 1, ap4)
        nl = bgpcap.parse_prefixes(nlri, 1, ap4)
        i["wd4"] = [strip_pid(p) for p in wd]
        i["nlri4"] = [strip_pid(p) for p in nl]
        i["pids"] += [p for p in wd + nl if p.startswith("path id ")]
        j = 0
        while j + 3 <= len(attrs):
            fl, code = attrs[j], attrs[j + 1]
            if fl & 0x10:
                ln = struct.unpack("!H", attrs[j + 2:j + 4])[0]
                v = attrs[j + 4:j + 4 + ln]
                j += 4 + ln
            else:
                ln = attrs[j + 2]
                v = attrs[j + 3:j + 3 + ln]
                j += 3 + ln
            i["attrs"].append(code)
            if code == 14:
                afi, safi, nhl = struct.unpack("!HBB", v[:4])
                ps = bgpcap.parse_prefixes(v[5 + nhl:], afi, (afi, safi) in ctx["addpath"])
                i["reach"] = (afi, nhl, [strip_pid(p) for p in ps])
                i["pids"] += [p for p in ps if p.startswith("path id ")]
            elif code == 15:
                afi, safi = struct.unpack("!HB", v[:3])
                ps = bgpcap.parse_prefixes(v[3:], afi, (afi, safi) in ctx["addpath"])
                i["unreach"] = (afi, [strip_pid(p) for p in ps])
        if wl == 0 and al == 0 and not nlri:
            i["eor"] = 1
        elif i["attrs"] == [15] and not i["unreach"][1] and not nlri and wl == 0:
            i["eor"] = i["unreach"][0]
    return i


# predicates -----------------------------------------------------------------

def is_open(i):
    return i["type"] == "OPEN"


def is_keepalive(i):
    return i["type"] == "KEEPALIVE"


def announces(prefix, afi=None, nhlen=None, attr=None):
    def p(i):
        if i["type"] != "UPDATE":
            return False
        if attr is not None and attr not in i["attrs"]:
            return False
        if afi is None:
            return prefix in i["nlri4"]
        r = i["reach"]
        return bool(r) and r[0] == afi and prefix in r[2] and (nhlen is None or r[1] == nhlen)
    return p


def withdraws4(prefix):
    return lambda i: i["type"] == "UPDATE" and prefix in i["wd4"]


def unreach(prefix, afi):
    return lambda i: bool(i["unreach"]) and i["unreach"][0] == afi and prefix in i["unreach"][1]


def eor(afi):
    return lambda i: i["eor"] == afi


def notif(code, sub):
    return lambda i: i["notif"] == (code, sub)


def rr(afi, sub):
    return lambda i: i["rr"] == (afi, sub)


# --------------------------------------------------------------------------
# the vectors

V = []


def vec(impl, name, src, dst, fam, pred, cfg, nth=0, note=None):
    V.append(dict(impl=impl, name=name, src=src, dst=dst, fam=fam, pred=pred,
                  cfg=cfg, nth=nth, note=note))


F1_IBGP = ["router bgp 4200000001", " bgp graceful-restart", " bgp graceful-restart notification",
           " bgp graceful-restart preserve-fw-state",
           " bgp long-lived-graceful-restart stale-time 3600", " timers bgp 3 9"]
F1_ATTRS = ["route-map SET-ATTRS permit 10", " set origin egp", " set metric 50",
            " set local-preference 250", " set community 65011:100 65011:200 no-export",
            " set large-community 4200000001:11:1 4200000001:11:2",
            " set extcommunity rt 4200000001:100"]
F2_EBGP = ["router bgp 4200000002", " bgp graceful-restart", " bgp graceful-restart notification",
           " bgp long-lived-graceful-restart stale-time 3600", " timers bgp 3 9"]
F2_PREPEND = ["route-map PREPEND permit 10", " set as-path prepend 4200000102 4200000101",
              " set community 65021:100", " set metric 20"]
F2_AGG = ["route-map COMP1 permit 10", " set as-path prepend 4200000201",
          "route-map COMP2 permit 10", " set as-path prepend 4200000202 65020",
          " address-family ipv4 unicast", "  network 10.21.8.0/25 route-map COMP1",
          "  network 10.21.8.128/25 route-map COMP2", "  network 10.21.9.0/25",
          "  network 10.21.9.128/25", "  aggregate-address 10.21.8.0/24 as-set summary-only",
          "  aggregate-address 10.21.9.0/24 summary-only"]
B_TMPL = ["hold time 9; keepalive time 3;", "graceful restart on;", "long lived graceful restart on;",
          "enable extended messages on;", "advertise hostname on;   (hostname \"bird-bN\";)"]
B1_ATTRS = ["bgp_origin = ORIGIN_EGP; bgp_med = 50; bgp_local_pref = 250;",
            "bgp_community.add((65012,100)); bgp_community.add((65012,200));",
            "bgp_community.add((65535,65281));",
            "bgp_large_community.add((4200000001,12,1)); bgp_large_community.add((4200000001,12,2));",
            "bgp_ext_community.add((rt,4200000001,100)); bgp_ext_community.add((ro,10.255.0.12,7));"]
B2_ATTRS = ["static route 10.22.1.0/24 / 2001:db8:22:1::/64 blackhole, export filter:",
            "bgp_path.prepend(4200000302); bgp_path.prepend(4200000301);",
            "bgp_med = 30; bgp_community.add((65022,100));",
            "bgp_large_community.add((4200000003,22,1));"]
G_NB = ["[neighbors.timers.config] hold-time = 9, keepalive-interval = 3",
        "[neighbors.graceful-restart.config] enabled = true, notification-enabled = true,",
        "  long-lived-enabled = true, restart-time = 120",
        "[neighbors.afi-safis.mp-graceful-restart.config] enabled = true",
        "[neighbors.afi-safis.long-lived-graceful-restart.config] enabled = true, restart-time = 3600"]
G1_ADD = ["gobgp global rib add -a ipv4 10.13.1.0/24 origin egp med 50 local-pref 250 \\",
          "  community 65013:100,65013:200,no-export \\",
          "  large-community 4200000001:13:1,4200000001:13:2 rt 65013:100",
          "gobgp global rib add -a ipv4 10.13.2.0/24",
          "gobgp global rib add -a ipv6 2001:db8:13:1::/64 origin egp med 50 local-pref 250 \\",
          "  community 65013:100 large-community 4200000001:13:1 rt 10.255.0.13:7",
          "gobgp global rib add -a ipv6 2001:db8:13:2::/64"]
G2_ADD = ["gobgp global rib add -a ipv4 10.23.1.0/24 aspath \"4200000402 4200000401\" med 40 \\",
          "  community 65023:100",
          "gobgp global rib add -a ipv4 10.23.2.0/24 aspath \"4200000403 {4200000404,4200000405}\" \\",
          "  aggregator 4200000004:10.255.0.23",
          "gobgp global rib add -a ipv6 2001:db8:23:1::/64 aspath \"4200000402 4200000401\""]

# ---- FRR ----------------------------------------------------------------
vec("frr", "open-ibgp-ipv4", "f1", "b1", 4, is_open,
    F1_IBGP + [" neighbor 10.255.0.12 remote-as 4200000001", " address-family ipv4 unicast",
               "  neighbor 10.255.0.12 activate", "(hostname frr-f1; ADD-PATH receive, extended",
               " message and route refresh are FRR defaults)"])
vec("frr", "open-ibgp-ipv6-extended-nexthop", "f1", "b1", 6, is_open,
    F1_IBGP + [" neighbor fd00:255::12 remote-as 4200000001",
               " neighbor fd00:255::12 capability extended-nexthop",
               " address-family ipv4 unicast", "  neighbor fd00:255::12 activate",
               " address-family ipv6 unicast", "  neighbor fd00:255::12 activate"])
vec("frr", "open-ebgp-addpath", "f2", "x", 6, is_open,
    F2_EBGP + [" neighbor fd00:255::41 remote-as 4200000009",
               " neighbor fd00:255::41 capability extended-nexthop",
               " neighbor fd00:255::41 local-role provider",
               " address-family ipv4 unicast", "  neighbor fd00:255::41 activate",
               "  neighbor fd00:255::41 addpath-tx-all-paths",
               " address-family ipv6 unicast", "  neighbor fd00:255::41 activate",
               "  neighbor fd00:255::41 addpath-tx-all-paths"])
vec("frr", "open-no-capabilities", "f2", "b3", 4, is_open,
    F2_EBGP + [" neighbor 10.255.0.33 remote-as 65003",
               " neighbor 10.255.0.33 dont-capability-negotiate"])
vec("frr", "keepalive", "f1", "b1", 4, is_keepalive, F1_IBGP)
vec("frr", "update-ipv4-ibgp-communities", "f1", "b1", 4, announces("10.11.1.0/24"),
    F1_ATTRS + ["router bgp 4200000001", " address-family ipv4 unicast",
                "  network 10.11.1.0/24 route-map SET-ATTRS"])
vec("frr", "update-ipv4-ibgp-plain", "f1", "b1", 4, announces("10.11.2.0/24"),
    ["router bgp 4200000001", " address-family ipv4 unicast", "  network 10.11.2.0/24"])
vec("frr", "update-ipv4-ebgp-prepend", "f2", "b2", 4, announces("10.21.1.0/24"),
    F2_PREPEND + ["router bgp 4200000002", " address-family ipv4 unicast",
                  "  network 10.21.1.0/24 route-map PREPEND"])
vec("frr", "update-ipv4-ebgp-aggregate-as-set", "f2", "b2", 4, announces("10.21.8.0/24"), F2_AGG)
vec("frr", "update-ipv4-ebgp-atomic-aggregate", "f2", "b2", 4, announces("10.21.9.0/24"), F2_AGG)
vec("frr", "update-ipv4-ebgp-third-party-nexthop", "f2", "b2", 4, announces("10.23.1.0/24"),
    ["(route 10.23.1.0/24 learned from GoBGP g2 at 10.255.0.23 on the same subnet,",
     " re-advertised by eBGP to b2: FRR keeps g2 as next hop)"])
vec("frr", "update-ipv6-mp-reach-ll-ibgp", "f1", "b1", 6, announces("2001:db8:11:1::/64", 2),
    F1_ATTRS + ["router bgp 4200000001", " address-family ipv6 unicast",
                "  network 2001:db8:11:1::/64 route-map SET-ATTRS"])
vec("frr", "update-ipv6-mp-reach-ll-ebgp", "f2", "b2", 6, announces("2001:db8:21:1::/64", 2),
    F2_PREPEND + ["router bgp 4200000002", " address-family ipv6 unicast",
                  "  network 2001:db8:21:1::/64 route-map PREPEND"])
vec("frr", "update-ipv4-nexthop-ipv6-ibgp", "f1", "b1", 6, announces("10.11.1.0/24", 1),
    F1_ATTRS + ["router bgp 4200000001", " neighbor fd00:255::12 capability extended-nexthop",
                " address-family ipv4 unicast", "  network 10.11.1.0/24 route-map SET-ATTRS",
                "  neighbor fd00:255::12 activate"])
vec("frr", "update-ipv4-nexthop-ipv6-ebgp", "f2", "b2", 6, announces("10.21.1.0/24", 1),
    F2_PREPEND + ["router bgp 4200000002", " neighbor fd00:255::22 capability extended-nexthop",
                  " address-family ipv4 unicast", "  network 10.21.1.0/24 route-map PREPEND",
                  "  neighbor fd00:255::22 activate"])
vec("frr", "update-as4-path", "f2", "b3", 4, announces("10.21.1.0/24"),
    F2_PREPEND + ["router bgp 4200000002", " neighbor 10.255.0.33 remote-as 65003",
                  " neighbor 10.255.0.33 dont-capability-negotiate",
                  " address-family ipv4 unicast", "  network 10.21.1.0/24 route-map PREPEND"])
vec("frr", "update-as4-path-aggregator", "f2", "b3", 4, announces("10.21.8.0/24"),
    F2_AGG + [" neighbor 10.255.0.33 remote-as 65003",
              " neighbor 10.255.0.33 dont-capability-negotiate"])
vec("frr", "update-as4-path-atomic-aggregate", "f2", "b3", 4, announces("10.21.9.0/24"),
    F2_AGG + [" neighbor 10.255.0.33 remote-as 65003",
              " neighbor 10.255.0.33 dont-capability-negotiate"])
vec("frr", "update-addpath-ipv4", "f2", "x", 4, announces("10.22.1.0/24"),
    ["router bgp 4200000002", " address-family ipv4 unicast",
     "  neighbor 10.255.0.41 addpath-tx-all-paths",
     " neighbor 10.255.0.41 local-role provider   (x is customer: FRR adds OTC)",
     "(10.22.1.0/24 has several paths in f2: from b2 directly and via g2)"])
vec("frr", "update-addpath-ipv4-second-path", "f2", "x", 4, announces("10.22.1.0/24"),
    ["router bgp 4200000002", " address-family ipv4 unicast",
     "  neighbor 10.255.0.41 addpath-tx-all-paths",
     "(the next UPDATE for 10.22.1.0/24 in the same session: another path id)"], nth=1)
vec("frr", "update-addpath-ipv6", "f2", "x", 6, announces("2001:db8:22:1::/64", 2),
    ["router bgp 4200000002", " neighbor fd00:255::41 local-role provider",
     " address-family ipv6 unicast", "  neighbor fd00:255::41 addpath-tx-all-paths"])
vec("frr", "update-addpath-ipv4-nexthop-ipv6", "f2", "x", 6, announces("10.21.1.0/24", 1),
    ["router bgp 4200000002", " neighbor fd00:255::41 capability extended-nexthop",
     " address-family ipv4 unicast", "  neighbor fd00:255::41 activate",
     "  neighbor fd00:255::41 addpath-tx-all-paths"])
vec("frr", "withdraw-ipv4", "f1", "b1", 4, withdraws4("10.11.2.0/24"),
    ["vtysh: router bgp 4200000001 / address-family ipv4 unicast / no network 10.11.2.0/24"])
vec("frr", "withdraw-ipv6-mp-unreach", "f1", "b1", 6, unreach("2001:db8:11:2::/64", 2),
    ["vtysh: router bgp 4200000001 / address-family ipv6 unicast / no network 2001:db8:11:2::/64"])
vec("frr", "withdraw-ipv4-mp-unreach", "f1", "b1", 6, unreach("10.11.2.0/24", 1),
    ["vtysh: router bgp 4200000001 / address-family ipv4 unicast / no network 10.11.2.0/24",
     "(IPv4 over the IPv6 session with extended next hop)"])
vec("frr", "eor-ipv4", "f1", "b1", 4, eor(1), F1_IBGP)
vec("frr", "eor-ipv6", "f1", "b1", 6, eor(2), F1_IBGP)
vec("frr", "notification-shutdown", "f1", "b1", 4, notif(6, 2),
    ["vtysh: router bgp 4200000001 / neighbor 10.255.0.12 shutdown message frr-f1 maintenance:"
     " shutting down session to b1"])
vec("frr", "notification-reset", "f2", "b2", 4, notif(6, 4), ["vtysh: clear bgp 10.255.0.22"])
vec("frr", "notification-bad-peer-as", "f2", "w", 4, notif(2, 2),
    [" neighbor 10.255.0.51 remote-as 4200000066", "(the peer's OPEN says AS 4200000077)"])
vec("frr", "route-refresh", "f1", "b1", 4, rr(1, 0),
    ["vtysh: clear bgp ipv4 unicast 10.255.0.12 soft in"])
vec("frr", "route-refresh-ipv6", "f1", "b1", 6, rr(2, 0),
    ["vtysh: clear bgp ipv6 unicast fd00:255::12 soft in"])
vec("frr", "route-refresh-borr", "f1", "b1", 4, rr(1, 1),
    ["(answer to BIRD's ROUTE-REFRESH after `birdc reload in f1v4`; enhanced route refresh",
     " negotiated)"])
vec("frr", "route-refresh-eorr", "f1", "b1", 4, rr(1, 2),
    ["(end of the answer to BIRD's ROUTE-REFRESH after `birdc reload in f1v4`)"])

# ---- BIRD ----------------------------------------------------------------
vec("bird", "open-ibgp-ipv4", "b1", "f1", 4, is_open,
    B_TMPL + ["protocol bgp f1v4: local 10.255.0.12 as 4200000001;",
              "  neighbor 10.255.0.11 as 4200000001; ipv4 { ... };"])
vec("bird", "open-ibgp-ipv6-extended-nexthop", "b1", "f1", 6, is_open,
    B_TMPL + ["protocol bgp f1v6: local fd00:255::12 as 4200000001;",
              "  neighbor fd00:255::11 as 4200000001;",
              "  ipv6 { ... }; ipv4 { extended next hop on; ... };"])
vec("bird", "open-ebgp-addpath", "b2", "x", 6, is_open,
    B_TMPL + ["protocol bgp xv6: local fd00:255::22 as 4200000003;",
              "  neighbor fd00:255::41 as 4200000009; local role provider;",
              "  ipv6 { ...; add paths on; }; ipv4 { extended next hop on; ...; add paths on; };"])
vec("bird", "open-2octet-as", "b3", "f2", 4, is_open,
    ["local as 65003; enable as4 off; hold time 9; keepalive time 3; graceful restart on;",
     "neighbor 10.255.0.21 as 23456;"])
vec("bird", "keepalive", "b1", "f1", 4, is_keepalive, B_TMPL)
vec("bird", "update-ipv4-ibgp-communities", "b1", "f1", 4, announces("10.12.1.0/24"),
    ["static route 10.12.1.0/24 blackhole, export filter:"] + B1_ATTRS)
vec("bird", "update-ipv4-ibgp-plain", "b1", "f1", 4, announces("10.12.2.0/24"),
    ["protocol static st4w { ipv4; route 10.12.2.0/24 blackhole; }"])
vec("bird", "update-ipv4-ebgp-prepend", "b2", "f2", 4, announces("10.22.1.0/24"), B2_ATTRS)
vec("bird", "update-ipv4-ebgp-aggregate-as-set-relayed", "b2", "g2", 4,
    announces("10.21.8.0/24"),
    ["(FRR f2's aggregate 10.21.8.0/24 with AS_SET and AGGREGATOR, passed on by eBGP to g2;",
     " BIRD 2.0 cannot aggregate itself)"])
vec("bird", "update-ipv4-ebgp-atomic-aggregate-relayed", "b2", "g2", 4,
    announces("10.21.9.0/24"),
    ["(FRR f2's aggregate 10.21.9.0/24 with ATOMIC_AGGREGATE and AGGREGATOR, passed on to g2)"])
vec("bird", "update-ipv6-mp-reach-global-ibgp", "b1", "f1", 6,
    announces("2001:db8:12:1::/64", 2),
    ["static route 2001:db8:12:1::/64 blackhole, export filter:"] + B1_ATTRS
    + ["(iBGP sessions are multihop by default in BIRD: no link-local next hop)"])
vec("bird", "update-ipv6-mp-reach-ll-ebgp", "b2", "f2", 6, announces("2001:db8:22:1::/64", 2),
    B2_ATTRS + ["(eBGP sessions are direct: global and link-local next hop)"])
vec("bird", "update-ipv4-nexthop-ipv6-ibgp", "b1", "f1", 6, announces("10.12.1.0/24", 1),
    ["protocol bgp f1v6: ipv4 { extended next hop on; ... };"] + B1_ATTRS)
vec("bird", "update-ipv4-nexthop-ipv6-ll-ebgp", "b2", "f2", 6, announces("10.22.1.0/24", 1),
    ["protocol bgp f2v6: ipv4 { extended next hop on; ... };"] + B2_ATTRS)
vec("bird", "update-ipv4-mp-reach-nexthop-ipv4", "b2", "f2", 6, announces("10.23.1.0/24", 1, 4),
    ["protocol bgp f2v6: ipv4 { extended next hop on; ... };",
     "(route from GoBGP g2 with next hop 10.255.0.23 on the shared subnet: BIRD keeps the",
     " IPv4 next hop and sends it in MP_REACH_NLRI with next hop length 4)"])
vec("bird", "update-as4-path", "b2", "b3", 4, announces("10.22.1.0/24"),
    B2_ATTRS + ["(peer b3 does not announce the 4-octet AS capability)"])
vec("bird", "update-2octet-session", "b3", "f2", 4, announces("10.33.1.0/24"),
    ["local as 65003; enable as4 off;", "static route 10.33.1.0/24 blackhole,",
     "export filter: bgp_community.add((65003,100));"])
vec("bird", "update-addpath-ipv4", "b2", "x", 4, announces("10.22.1.0/24"),
    B2_ATTRS + ["protocol bgp xv4: local role provider; ipv4 { ...; add paths on; };"])
vec("bird", "update-addpath-ipv6", "b2", "x", 6, announces("2001:db8:22:1::/64", 2),
    B2_ATTRS + ["protocol bgp xv6: local role provider; ipv6 { ...; add paths on; };"])
vec("bird", "withdraw-ipv4", "b1", "f1", 4, withdraws4("10.12.2.0/24"),
    ["birdc disable st4w   (protocol static st4w { ipv4; route 10.12.2.0/24 blackhole; })"])
vec("bird", "withdraw-ipv6-mp-unreach", "b1", "f1", 6, unreach("2001:db8:12:2::/64", 2),
    ["birdc disable st6w   (protocol static st6w { ipv6; route 2001:db8:12:2::/64 blackhole; })"])
vec("bird", "withdraw-ipv4-mp-unreach", "b1", "f1", 6, unreach("10.12.2.0/24", 1),
    ["birdc disable st4w", "(IPv4 over the IPv6 session with extended next hop)"])
vec("bird", "eor-ipv4", "b1", "f1", 4, eor(1), B_TMPL)
vec("bird", "eor-ipv6", "b1", "f1", 6, eor(2), B_TMPL)
vec("bird", "notification-shutdown", "b1", "g1", 4, notif(6, 2),
    ['birdc disable g1v4 "bird-b1 maintenance: shutting down session to g1"'])
vec("bird", "notification-reset", "b2", "g2", 4, notif(6, 4), ["birdc restart g2v4"])
vec("bird", "notification-reset-message", "b2", "g2", 6, notif(6, 4),
    ['birdc restart g2v6 "bird-b2 restarting session to g2"'])
vec("bird", "notification-bad-peer-as", "b2", "w", 4, notif(2, 2),
    ["protocol bgp wv4: neighbor 10.255.0.51 as 4200000066;",
     "(the peer's OPEN says AS 4200000077)"])
vec("bird", "route-refresh", "b1", "f1", 4, rr(1, 0), ["birdc reload in f1v4"])
vec("bird", "route-refresh-ipv6", "b1", "f1", 6, rr(2, 0), ["birdc reload in f1v6"])
vec("bird", "route-refresh-borr", "b1", "f1", 4, rr(1, 1),
    ["(answer to FRR's `clear bgp ipv4 unicast 10.255.0.12 soft in`; enhanced route refresh",
     " negotiated)"])
vec("bird", "route-refresh-eorr", "b1", "f1", 4, rr(1, 2),
    ["(end of the answer to FRR's `clear bgp ipv4 unicast 10.255.0.12 soft in`)"])

# ---- GoBGP ---------------------------------------------------------------
vec("gobgp", "open-ibgp-ipv4", "g1", "f1", 4, is_open,
    G_NB + ["[[neighbors]] neighbor-address = \"10.255.0.11\", peer-as = 4200000001",
            "  afi-safi-name = \"ipv4-unicast\"", "(hostname gobgp-g1)"])
vec("gobgp", "open-ibgp-ipv6", "g1", "f1", 6, is_open,
    G_NB + ["[[neighbors]] neighbor-address = \"fd00:255::11\", peer-as = 4200000001",
            "  afi-safi-name = \"ipv6-unicast\""])
vec("gobgp", "open-ebgp-addpath", "g2", "x", 6, is_open,
    G_NB + ["[[neighbors]] neighbor-address = \"fd00:255::41\", peer-as = 4200000009",
            "[neighbors.add-paths.config] send-max = 8, receive = true",
            "  afi-safi-name = \"ipv6-unicast\", afi-safi-name = \"ipv4-unicast\""])
vec("gobgp", "keepalive", "g1", "f1", 4, is_keepalive, G_NB)
vec("gobgp", "update-ipv4-ibgp-communities", "g1", "f1", 4, announces("10.13.1.0/24"), G1_ADD)
vec("gobgp", "update-ipv4-ibgp-plain", "g1", "f1", 4, announces("10.13.2.0/24"), G1_ADD)
vec("gobgp", "update-ipv4-ebgp-prepend", "g2", "f2", 4, announces("10.23.1.0/24"), G2_ADD)
vec("gobgp", "update-ipv4-ebgp-as-set-aggregator", "g2", "f2", 4, announces("10.23.2.0/24"),
    G2_ADD)
vec("gobgp", "update-ipv4-ebgp-atomic-aggregate-relayed", "g2", "b2", 4,
    announces("10.21.9.0/24"),
    ["(FRR f2's aggregate 10.21.9.0/24 with ATOMIC_AGGREGATE and AGGREGATOR, passed on to b2)"])
vec("gobgp", "update-ipv6-mp-reach-global-ibgp", "g1", "f1", 6,
    announces("2001:db8:13:1::/64", 2), G1_ADD)
vec("gobgp", "update-ipv6-mp-reach-global-ebgp", "g2", "b2", 6,
    announces("2001:db8:23:1::/64", 2), G2_ADD)
vec("gobgp", "update-ipv4-nexthop-ipv6-ebgp", "g2", "f2", 6, announces("10.23.1.0/24", 1),
    G2_ADD + ["[[neighbors]] neighbor-address = \"fd00:255::21\"",
              "  afi-safi-name = \"ipv6-unicast\", afi-safi-name = \"ipv4-unicast\""])
vec("gobgp", "update-as4-path", "g2", "b3", 4, announces("10.23.1.0/24"),
    G2_ADD + ["[[neighbors]] neighbor-address = \"10.255.0.33\", peer-as = 65003",
              "(b3 does not announce the 4-octet AS capability)"])
vec("gobgp", "update-as4-path-aggregator", "g2", "b3", 4, announces("10.23.2.0/24"),
    G2_ADD + ["[[neighbors]] neighbor-address = \"10.255.0.33\", peer-as = 65003"])
vec("gobgp", "update-addpath-ipv4", "g2", "x", 4, announces("10.22.1.0/24"),
    ["[neighbors.add-paths.config] send-max = 8, receive = true"])
vec("gobgp", "update-addpath-ipv6", "g2", "x", 6, announces("2001:db8:23:1::/64", 2),
    ["[neighbors.add-paths.config] send-max = 8, receive = true"] + G2_ADD)
vec("gobgp", "withdraw-ipv4", "g1", "f1", 4, withdraws4("10.13.2.0/24"),
    ["gobgp global rib del -a ipv4 10.13.2.0/24"])
vec("gobgp", "withdraw-ipv6-mp-unreach", "g1", "f1", 6, unreach("2001:db8:13:2::/64", 2),
    ["gobgp global rib del -a ipv6 2001:db8:13:2::/64"])
vec("gobgp", "withdraw-ipv4-on-extended-nexthop-session", "g2", "f2", 6,
    withdraws4("10.22.1.0/24"),
    ["(b2's route 10.22.1.0/24 disappears when `birdc restart g2v4` resets the b2-g2",
     " session; on this IPv6 session the route had been announced in MP_REACH_NLRI)"])
vec("gobgp", "eor-ipv4", "g1", "f1", 4, eor(1), G_NB)
vec("gobgp", "eor-ipv6", "g1", "f1", 6, eor(2), G_NB)
vec("gobgp", "notification-shutdown", "g1", "f1", 4, notif(6, 2),
    ["gobgp neighbor 10.255.0.11 shutdown --reason \"gobgp-g1 maintenance: shutting down"
     " session to f1\""])
vec("gobgp", "notification-shutdown-no-text", "g1", "f1", 6, notif(6, 2),
    ["gobgp neighbor fd00:255::11 disable"])
vec("gobgp", "notification-reset", "g2", "f2", 4, notif(6, 4),
    ["gobgp neighbor 10.255.0.21 reset"])
vec("gobgp", "notification-reset-message", "g2", "f2", 6, notif(6, 4),
    ["gobgp neighbor fd00:255::21 reset --reason \"gobgp-g2 resetting session to f2\""])
vec("gobgp", "notification-bad-peer-as", "g2", "w", 4, notif(2, 2),
    ["[[neighbors]] neighbor-address = \"10.255.0.51\", peer-as = 4200000066",
     "(the peer's OPEN says AS 4200000077)"])


# --------------------------------------------------------------------------


def peer_as(open_msg):
    if open_msg is None:
        return None
    for code, val in bgpcap.open_caps(open_msg.raw):
        if code == 65:
            return struct.unpack("!I", val)[0]
    return struct.unpack("!H", open_msg.raw[20:22])[0]


def fam_name(k):
    return f"{bgpcap.AFI.get(k[0], k[0])} {bgpcap.SAFI.get(k[1], k[1])}"


def header(v, m, versions):
    simpl, sv4, sv6, scfg = HOSTS[v["src"]]
    dimpl, *_ = HOSTS[v["dst"]]
    ctx = m.stream.ctx
    a1, a2 = peer_as(ctx.get("mine")), peer_as(ctx.get("theirs"))
    r1, r2 = ASN[v["src"]], ASN[v["dst"]]
    kind = "iBGP" if r1 == r2 else "eBGP"
    lines = [
        f"BGP {m.type_name} message sent by {versions[simpl]}",
        f"  host {v['src']} ({ROLE[v['src']]}), from {m.src} port {m.stream.key[1]}",
        f"to: {versions[dimpl]}",
        f"  host {v['dst']} ({ROLE[v['dst']]}), at {m.dst} port {m.stream.key[3]}",
        f"session: {kind}, AS {r1} -> AS {r2} (ASes as the OPENs state them: {a1} -> {a2}), "
        f"TCP over IPv{v['fam']}",
        f"  4-octet AS numbers in use: {'yes' if ctx['as4'] else 'NO (2-octet session)'}; "
        "ADD-PATH path ids in this direction: "
        + (", ".join(fam_name(k) for k in sorted(ctx["addpath"])) or "none"),
        f"message #{m.index} of this TCP direction (#0 is the OPEN)",
        f"relevant configuration (full file: capture/{scfg}):",
    ]
    lines += ["  " + c for c in v["cfg"]]
    out = ["# " + line for line in lines]
    out += ["# expect: " + line for line in bgpcap.describe(m)]
    return out


def hexlines(raw):
    h = raw.hex()
    return [h[i:i + 64] for i in range(0, len(h), 64)]


def main(argv):
    work, vecdir = argv[1], argv[2]
    versions = json.load(open(os.path.join(work, "versions.json")))
    pcaps = sorted(os.path.join(work, f) for f in os.listdir(work) if f.endswith(".pcap"))
    streams, msgs = bgpcap.all_messages(pcaps)
    for st in streams:
        if st.note:
            print(f"note: stream {st.key}: {st.note}", file=sys.stderr)
    by_dir = {}
    for m in msgs:
        by_dir.setdefault((m.src, m.dst), []).append(m)
    for impl in ("frr", "bird", "gobgp"):
        os.makedirs(os.path.join(vecdir, impl), exist_ok=True)
        for f in os.listdir(os.path.join(vecdir, impl)):
            if f.endswith(".hex"):
                os.remove(os.path.join(vecdir, impl, f))
    missing = []
    written = []
    for v in V:
        s, d = HOSTS[v["src"]], HOSTS[v["dst"]]
        src, dst = (s[1], d[1]) if v["fam"] == 4 else (s[2], d[2])
        hits = [m for m in by_dir.get((src, dst), []) if v["pred"](info(m))]
        if len(hits) <= v["nth"]:
            missing.append(f"{v['impl']}/{v['name']}")
            continue
        m = hits[v["nth"]]
        path = os.path.join(vecdir, v["impl"], v["name"] + ".hex")
        with open(path, "w") as f:
            f.write("\n".join(header(v, m, versions) + hexlines(m.raw)) + "\n")
        written.append((v["impl"], v["name"], bgpcap.describe(m)[0]))
    os.makedirs(os.path.join(vecdir, "capture"), exist_ok=True)
    with open(os.path.join(vecdir, "capture", "INDEX.txt"), "w") as f:
        f.write("# generated by make_vectors.py: file, first expect line\n")
        for impl, name, first in written:
            f.write(f"{impl}/{name}.hex\t{first}\n")
    print(f"wrote {len(written)} vectors", file=sys.stderr)
    if missing:
        print("MISSING (no matching message captured): " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
