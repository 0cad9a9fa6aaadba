#!/bin/bash
# Regenerate the BGP wire test vectors in ../{frr,bird,gobgp}/*.hex from real
# FRR, BIRD and GoBGP daemons talking to each other in network namespaces.
#
# Needs root and Debian's packages:
#   apt-get update && apt-get install -y frr bird2 gobgpd tcpdump iproute2 python3
#
# Topology: one Linux bridge in its own namespace, nine hosts attached with
# veth pairs, all on 10.255.0.0/24 and fd00:255::/64 (plus fixed link-local
# addresses fe80::N). Nothing gets an address in the root namespace, and no
# packet leaves the namespaces this script creates.
#
#   f1 FRR   AS 4200000001 \
#   b1 BIRD  AS 4200000001  } iBGP full mesh, over IPv4 and over IPv6
#   g1 GoBGP AS 4200000001 /
#   f2 FRR   AS 4200000002 \
#   b2 BIRD  AS 4200000003  } eBGP full mesh, over IPv4 and over IPv6
#   g2 GoBGP AS 4200000004 /
#   b3 BIRD  AS 65003       2-octet-only speaker (enable as4 off), peers f2 b2 g2
#   x  BIRD  AS 4200000009  collector with ADD-PATH receive, peers f2 b2 g2
#   w  BIRD  AS 4200000077  f2 b2 g2 expect AS 4200000066 here: OPEN errors
#
# Environment:
#   KEEP_WORK=1    keep the temporary work directory (pcaps, logs)
#   NO_VECTORS=1   capture only, do not rewrite the .hex files
#   VECTORS_OUT=D  write the vectors under D instead of over the stored ones
#                  (make test does this to check the codec on fresh captures)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VEC="${VECTORS_OUT:-$(dirname "$HERE")}"
P="pv$$"                       # per-run prefix of every namespace name
WORK="$(mktemp -d /tmp/podbgp-vectors.XXXXXX)"
chmod 755 "$WORK"              # FRR drops to the frr user and must read its config
HOSTS="f1 b1 g1 f2 b2 g2 b3 x w"
declare -A NUM=([f1]=11 [b1]=12 [g1]=13 [f2]=21 [b2]=22 [g2]=23 [b3]=33 [x]=41 [w]=51)
PIDS=()                        # every process we start, killed by PID at the end
FRR_NS=()

log() { printf '[capture %s] %s\n' "$(date +%T)" "$*" >&2; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  log "cleaning up"
  for ns in "${FRR_NS[@]}"; do
    for d in bgpd zebra; do
      f="/var/run/frr/$ns/$d.pid"
      [ -s "$f" ] && PIDS+=("$(cat "$f")")
    done
  done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for _ in $(seq 1 50); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  for h in $HOSTS sw; do ip netns del "$P-$h" 2>/dev/null; done
  for ns in "${FRR_NS[@]}"; do rm -rf "/var/run/frr/$ns"; done
  if [ "${KEEP_WORK:-0}" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

# wait_for DESCRIPTION TRIES COMMAND... : run COMMAND every 0.5 s, at most TRIES times
wait_for() {
  local what=$1 tries=$2; shift 2
  for _ in $(seq 1 "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "gave up waiting for: $what"
  return 1
}

for tool in ip tcpdump bird birdc gobgpd gobgp python3 unshare /usr/lib/frr/bgpd /usr/lib/frr/zebra vtysh; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y frr bird2 gobgpd tcpdump iproute2 python3)" >&2; exit 1; }
done

# ---------------------------------------------------------------- topology
log "building topology with namespace prefix $P"
ip netns add "$P-sw"
ip netns exec "$P-sw" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$P-sw" link add br0 type bridge
ip -n "$P-sw" link set br0 up
for h in $HOSTS; do
  n=${NUM[$h]}
  ns="$P-$h"
  ip netns add "$ns"
  # no DAD (addresses usable at once), no automatic link-local: we set fe80::N
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv6.conf.default.addr_gen_mode=1
  ip link add eth0 address "02:00:00:00:00:$n" netns "$ns" type veth peer name "port-$h" netns "$P-sw"
  ip -n "$P-sw" link set dev "port-$h" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "10.255.0.$n/24" dev eth0
  ip -n "$ns" addr add "fd00:255::$n/64" dev eth0 nodad
  ip -n "$ns" addr add "fe80::$n/64" dev eth0 nodad
  ip -n "$ns" link set eth0 up
  mkdir -p "$WORK/$h"
done

# ---------------------------------------------------------------- capture
for h in $HOSTS; do
  ip netns exec "$P-$h" tcpdump -i eth0 -U -s 0 -w "$WORK/$h.pcap" 'tcp port 179' \
    >"$WORK/$h/tcpdump.log" 2>&1 &
  PIDS+=($!)
done
for h in $HOSTS; do
  wait_for "tcpdump on $h" 40 grep -q 'listening on' "$WORK/$h/tcpdump.log"
done

# ---------------------------------------------------------------- daemons
start_frr() {  # host
  local h=$1 ns="$P-$1"
  cp "$HERE/frr-$h.conf" "$WORK/$h/frr.conf"
  mkdir -p "/var/run/frr/$ns"
  chown frr:frr /var/run/frr "/var/run/frr/$ns"
  chown -R frr:frr "$WORK/$h"
  FRR_NS+=("$ns")
  for d in zebra bgpd; do
    ip netns exec "$ns" "/usr/lib/frr/$d" -d -N "$ns" -f "$WORK/$h/frr.conf" \
      --log "file:$WORK/$h/$d.log"
    wait_for "$d pid file on $h" 40 test -s "/var/run/frr/$ns/$d.pid"
  done
}
start_bird() {  # host
  local h=$1
  ip netns exec "$P-$h" bird -f -c "$HERE/bird-$h.conf" -s "$WORK/$h/bird.ctl" \
    >"$WORK/$h/bird.log" 2>&1 &
  PIDS+=($!)
}
start_gobgp() {  # host
  local h=$1
  # own UTS namespace, so the hostname GoBGP may advertise is "gobgp-$h"
  ip netns exec "$P-$h" unshare --uts sh -c "hostname gobgp-$h && exec gobgpd -f '$HERE/gobgp-$h.toml' \
    --api-hosts 127.0.0.1:50051 --pprof-disable -p" >"$WORK/$h/gobgpd.log" 2>&1 &
  PIDS+=($!)
}
vty() {  # vtysh complains about the vtysh.conf that this pathspace lacks; drop that line
  local h=$1; shift
  ip netns exec "$P-$h" vtysh -N "$P-$h" "$@" 2> >(grep -v "Can't open configuration file" >&2)
}
birdc_() { local h=$1; shift; birdc -s "$WORK/$h/bird.ctl" "$@"; }
gobgp_() { local h=$1; shift; ip netns exec "$P-$h" gobgp -u 127.0.0.1 -p 50051 "$@"; }

log "starting daemons"
start_frr f1; start_frr f2
for h in b1 b2 b3 x w; do start_bird $h; done
start_gobgp g1; start_gobgp g2
for h in b1 b2 b3 x w; do wait_for "bird on $h" 40 birdc_ $h show status; done
for h in g1 g2; do wait_for "gobgpd API on $h" 40 gobgp_ $h global; done

# GoBGP's routes (FRR and BIRD originate theirs from their configs)
gobgp_ g1 global rib add -a ipv4 10.13.1.0/24 origin egp med 50 local-pref 250 \
  community 65013:100,65013:200,no-export large-community 4200000001:13:1,4200000001:13:2 rt 65013:100
gobgp_ g1 global rib add -a ipv4 10.13.2.0/24
gobgp_ g1 global rib add -a ipv6 2001:db8:13:1::/64 origin egp med 50 local-pref 250 \
  community 65013:100 large-community 4200000001:13:1 rt 10.255.0.13:7
gobgp_ g1 global rib add -a ipv6 2001:db8:13:2::/64
gobgp_ g2 global rib add -a ipv4 10.23.1.0/24 aspath "4200000402 4200000401" med 40 community 65023:100
gobgp_ g2 global rib add -a ipv4 10.23.2.0/24 aspath "4200000403 {4200000404,4200000405}" \
  aggregator 4200000004:10.255.0.23
gobgp_ g2 global rib add -a ipv6 2001:db8:23:1::/64 aspath "4200000402 4200000401"

# ---------------------------------------------------------------- wait for sessions
frr_established() {  # host count
  [ "$(vty "$1" -c 'show bgp neighbors json' | python3 -c '
import json, sys
print(sum(1 for n in json.load(sys.stdin).values() if n.get("bgpState") == "Established"))')" -ge "$2" ]
}
bird_established() { [ "$(birdc_ "$1" show protocols | grep -c Established)" -ge "$2" ]; }
gobgp_established() { [ "$(gobgp_ "$1" neighbor | grep -c Establ)" -ge "$2" ]; }
log "waiting for sessions"
wait_for "f1 sessions" 120 frr_established f1 4 || true
wait_for "f2 sessions" 120 frr_established f2 7 || true
wait_for "b1 sessions" 60 bird_established b1 4 || true
wait_for "b2 sessions" 60 bird_established b2 7 || true
wait_for "b3 sessions" 60 bird_established b3 3 || true
wait_for "x sessions" 60 bird_established x 6 || true
wait_for "g1 sessions" 60 gobgp_established g1 4 || true
wait_for "g2 sessions" 60 gobgp_established g2 7 || true
for h in f1 f2; do vty $h -c 'show bgp summary' >"$WORK/$h/summary.txt" 2>&1 || true; done
for h in b1 b2 b3 x w; do birdc_ $h show protocols >"$WORK/$h/summary.txt" 2>&1 || true; done
for h in g1 g2; do gobgp_ $h neighbor >"$WORK/$h/summary.txt" 2>&1 || true; done
sleep 6   # initial updates, End-of-RIB markers, keepalives

# From here on a failing command only loses the vectors it would have made;
# make_vectors.py reports those.
set +e

# ---------------------------------------------------------------- withdrawals
log "withdrawals"
vty f1 -c 'configure terminal' -c 'router bgp 4200000001' -c 'address-family ipv4 unicast' \
  -c 'no network 10.11.2.0/24' -c 'exit-address-family' -c 'address-family ipv6 unicast' \
  -c 'no network 2001:db8:11:2::/64'
birdc_ b1 disable st4w; birdc_ b1 disable st6w
gobgp_ g1 global rib del -a ipv4 10.13.2.0/24
gobgp_ g1 global rib del -a ipv6 2001:db8:13:2::/64
sleep 4

# ---------------------------------------------------------------- route refresh
# GoBGP keeps an Adj-RIB-In, so `gobgp neighbor X softresetin` only re-runs
# its import policy and never sends a ROUTE-REFRESH: nothing to do for GoBGP.
log "route refresh"
vty f1 -c 'clear bgp ipv4 unicast 10.255.0.12 soft in'; sleep 1   # FRR asks BIRD (BoRR/EoRR back)
vty f1 -c 'clear bgp ipv4 unicast 10.255.0.13 soft in'; sleep 1   # FRR asks GoBGP
vty f1 -c 'clear bgp ipv6 unicast fd00:255::12 soft in'; sleep 1
birdc_ b1 reload in f1v4; sleep 1                                 # BIRD asks FRR (BoRR/EoRR back)
birdc_ b1 reload in f1v6; sleep 1
birdc_ b1 reload in g1v4; sleep 2                                 # BIRD asks GoBGP

# ---------------------------------------------------------------- notifications
log "notifications"
birdc_ b1 disable g1v4 '"bird-b1 maintenance: shutting down session to g1"'; sleep 1
gobgp_ g1 neighbor 10.255.0.11 shutdown --reason "gobgp-g1 maintenance: shutting down session to f1"; sleep 1
gobgp_ g1 neighbor fd00:255::11 disable; sleep 1
vty f1 -c 'configure terminal' -c 'router bgp 4200000001' \
  -c 'neighbor 10.255.0.12 shutdown message frr-f1 maintenance: shutting down session to b1'; sleep 1
vty f2 -c 'clear bgp 10.255.0.22'; sleep 1
birdc_ b2 restart g2v4; sleep 1
gobgp_ g2 neighbor 10.255.0.21 reset; sleep 1
birdc_ b2 restart g2v6 '"bird-b2 restarting session to g2"'; sleep 1
gobgp_ g2 neighbor fd00:255::21 reset --reason "gobgp-g2 resetting session to f2"; sleep 3

# ---------------------------------------------------------------- versions, vectors
python3 - "$WORK/versions.json" <<'EOF'
import json, subprocess, sys
def run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return (p.stdout + p.stderr).strip()
def deb(pkg):
    return run("dpkg-query", "-W", "-f", "${Version}", pkg)
v = {
    "frr": f"FRR {run('/usr/lib/frr/bgpd', '--version').splitlines()[0].split()[-1]} (Debian package frr {deb('frr')})",
    "bird": f"BIRD {run('bird', '--version').split()[-1]} (Debian package bird2 {deb('bird2')})",
    "gobgp": f"GoBGP {run('gobgpd', '--version').split()[-1]} (Debian package gobgpd {deb('gobgpd')})",
}
json.dump(v, open(sys.argv[1], "w"), indent=1)
EOF
log "stopping tcpdump"
for pid in "${PIDS[@]:0:9}"; do kill -INT "$pid" 2>/dev/null || true; done
sleep 1

set -e
if [ "${NO_VECTORS:-0}" != 1 ]; then
  log "writing vectors"
  python3 -B "$HERE/make_vectors.py" "$WORK" "$VEC"
fi
log "done"
