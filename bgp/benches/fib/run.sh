#!/bin/sh
# The kernel FIB benchmark: 10 iBGP feeders x 100,000 IPv4 /24s of their
# own = 1,000,000 routes, from the sessions coming up to the last route in
# the receiver's kernel, for podbgp, BIRD and FRR in turn; beside them the
# pipelined-netlink limit for the same routes (agent/examples/netlink_limit.rs).
# See README.md here.
#
# Needs root (network namespaces), Debian's packages bird2, frr and python3,
# and release builds of podbgp and the example:
#   cargo build --release -p agent && cargo build --release -p agent --example netlink_limit
# Nothing is installed or downloaded by this script.
#
# Topology: a Linux bridge in a namespace of its own; the feeder (../peers/feed.py)
# in another, with the 10 source addresses 192.168.255.11-20/24 on its one
# interface; each receiver, and each run of the netlink limit, in a fresh
# namespace of its own (192.168.255.1/24). The fed prefixes, 10.0.0.0/24 to
# 25.66.63.0/24, stay clear of that subnet. Nothing gets an address in the
# root namespace. Every name carries a per-run prefix, and everything is
# removed on exit, failed or not.
#
# Environment:
#   RECEIVERS="podbgp podbgp-routes bird frr"   which receivers to measure, in this order
#                                 (podbgp-routes: podbgp with fib.nexthop_objects off, every
#                                 route carrying its gateway, as on a kernel without objects)
#   LIMIT_MODES="batch every handle"  netlink_limit modes to run first (batch: the limit, an
#                                 answer asked for per sendmsg; every: an answer per request;
#                                 handle: rtnetlink's Handle; "": none)
#   PODBGP=target/release/podbgp  the podbgp binary
#   NETLINK_LIMIT=target/release/examples/netlink_limit
#   IN_FLIGHT=512                 netlink_limit's requests in flight
#   BENCH_AS=65000                the AS of both sides (not 64512-64514, the paths' ASNs)
#   PHASE_TIMEOUT=150             seconds allowed for each load
#   KEEP_WORK=1                   keep the work directory (configs, logs)
#   PEERS=10 PREFIXES=100000      feeders, and prefixes of each
#   IDLE_SECONDS=0                after the load, measure each receiver's CPU use and RSS
#                                 this long, its sessions up and nothing changing (the idle
#                                 cost: PEERS=5 PREFIXES=200 IDLE_SECONDS=60 LIMIT_MODES="")
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=fib
. "$HERE/../lib.sh"
ROOT=$(cd "$HERE/../../.." && pwd)
RECEIVERS=${RECEIVERS:-"podbgp podbgp-routes bird frr"}
LIMIT_MODES=${LIMIT_MODES-"batch every handle"}
PODBGP=${PODBGP:-$ROOT/target/release/podbgp}
NETLINK_LIMIT=${NETLINK_LIMIT:-$ROOT/target/release/examples/netlink_limit}
IN_FLIGHT=${IN_FLIGHT:-512}
BENCH_AS=${BENCH_AS:-65000}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-150}
FEED=$HERE/../peers/feed.py
PEERS=${PEERS:-10}
PREFIXES=${PREFIXES:-100000}
IDLE_SECONDS=${IDLE_SECONDS:-0}
ROUTES=$((PEERS * PREFIXES))
SUBNET=192.168.255
DAEMON_IP=$SUBNET.1
FEED_FIRST_IP=$SUBNET.11
SAMPLES=100               # prefixes looked up while waiting, every 10,000th (each peer's last among them)

P="fb$$"                  # per-run prefix of every namespace name
NS_SW="$P-sw"; NS_F="$P-f"
NSS=""                    # every namespace we made, removed on exit
WORK=""
PIDS=""                   # every process we started, by PID
FRR_RUN=""                # FRR pathspace directory, if we made one
FRR_RUN_PARENT_MADE=0

case "$BENCH_AS" in 6451[2-4]) die "BENCH_AS=$BENCH_AS is in the paths' AS_PATH: the receivers would drop them as loops" ;; esac

cleanup() {
  rc=$?
  set +e
  trap - EXIT INT TERM HUP
  exec 3>&-
  for pid in $PIDS; do kill "$pid" 2>/dev/null; done
  for _ in $(seq 1 30); do
    alive=0
    for pid in $PIDS; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in $PIDS; do kill -9 "$pid" 2>/dev/null; done
  for ns in $NSS; do ip netns del "$ns" 2>/dev/null; done
  [ -n "$FRR_RUN" ] && rm -rf "$FRR_RUN"
  [ "$FRR_RUN_PARENT_MADE" = 1 ] && rmdir /var/run/frr 2>/dev/null
  if [ -n "$WORK" ]; then
    if [ "${KEEP_WORK:-0}" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

[ "$(id -u)" = 0 ] || die "needs root for network namespaces"
for tool in ip python3 timeout awk; do
  command -v "$tool" >/dev/null || die "missing $tool (apt-get install -y python3 iproute2)"
done
for r in $RECEIVERS; do
  case $r in
    podbgp|podbgp-routes) [ -x "$PODBGP" ] || die "missing $PODBGP (cargo build --release -p agent, or set PODBGP=path)" ;;
    bird) for t in bird birdc; do command -v $t >/dev/null || die "missing $t (apt-get install -y bird2)"; done ;;
    frr) for f in /usr/lib/frr/zebra /usr/lib/frr/bgpd; do [ -x "$f" ] || die "missing $f (apt-get install -y frr)"; done
         command -v vtysh >/dev/null || die "missing vtysh (apt-get install -y frr)" ;;
    *) die "unknown receiver $r (podbgp, podbgp-routes, bird, frr)" ;;
  esac
done
[ -z "$LIMIT_MODES" ] || [ -x "$NETLINK_LIMIT" ] ||
  die "missing $NETLINK_LIMIT (cargo build --release -p agent --example netlink_limit)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/podbgp-fib.XXXXXX")
chmod 755 "$WORK"         # FRR drops to the frr user and must read its config

hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# settle SECONDS PID...: wait until these processes together use under 5% of
# a CPU (less than 5 ms in a 0.1 s window), at most SECONDS
settle() {
  send=$(( $(date +%s) + $1 )); shift
  sprev=0; for pid in "$@"; do sprev=$(( sprev + $(cpu_ns "$pid") )); done
  while [ "$(date +%s)" -lt "$send" ]; do
    sleep 0.1
    scur=0; for pid in "$@"; do scur=$(( scur + $(cpu_ns "$pid") )); done
    [ $(( scur - sprev )) -lt 5000000 ] && return 0
    sprev=$scur
  done
  log "still busy after the wait"
}

# The whole machine's CPU use over 0.5 s, in % of all CPUs.
machine_busy() {
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
  sleep 0.5
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
  echo "$a $b" | awk '{ t = ($3 - $1) + ($4 - $2); printf "%.0f", (t > 0 ? 100 * ($3 - $1) / t : 0) }'
}
# quiet: let the kernel finish tearing down the last namespace (a million
# routes to free) and the machine calm down: CPU use under 30%, at most 15 s.
quiet() {
  end=$(( $(date +%s) + 15 ))
  while :; do
    busy=$(machine_busy)
    [ "$busy" -lt 30 ] && return 0
    [ "$(date +%s)" -lt "$end" ] || { log "the machine is still ${busy}% busy; measuring anyway"; return 0; }
  done
}

# make_ns NAME: a fresh namespace on the switch, with $DAEMON_IP/24 on eth0
make_ns() {
  ns="$P-$1"
  ip netns add "$ns"
  NSS="$ns $NSS"
  ip link add eth0 netns "$ns" type veth peer name "port-$1" netns "$NS_SW"
  ip -n "$NS_SW" link set dev "port-$1" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  ip -n "$ns" addr add "$DAEMON_IP/24" dev eth0
  # The feeder still knows the last receiver's MAC address for $DAEMON_IP.
  ip -n "$NS_F" neigh flush dev eth0
  NS_D=$ns
}
drop_ns() {
  ip netns del "$1"
  keep=""; for ns in $NSS; do [ "$ns" = "$1" ] || keep="$keep $ns"; done; NSS=$keep
}

# The prefixes the receiver's namespace holds in its main table (a walk of
# the kernel's trie, about 50 ms at a million routes: used sparingly).
# Local routes share that trie, hence BASE, counted before the feed.
trie_prefixes() {
  ip netns exec "$NS_D" awk '/^Main:/ { m = 1 } m && /Prefixes:/ { print $2; exit }' /proc/net/fib_triestat
}
# How many of the SAMPLES prefixes are in the kernel: one lookup each, cheap.
SAMPLE_BATCH="$WORK/samples.ip"
python3 -c "
import ipaddress
for k in range($SAMPLES):
    i = (k + 1) * ($ROUTES // $SAMPLES) - 1
    print('route get fibmatch', ipaddress.IPv4Address(0x0A000000 + (i << 8) + 1))
" >"$SAMPLE_BATCH"
samples_present() {
  ip -n "$NS_D" -force -batch "$SAMPLE_BATCH" 2>/dev/null | grep -c '/24 ' || true
}
# The receiver's routes, counted once at the end by dumping the table.
full_count() {  # PROTOCOL
  ip -n "$NS_D" -4 route show table main proto "$1" | wc -l
}

# wait_loaded: poll until all ROUTES are in the kernel; set LOADED to the
# time of the answer that showed them. First the sample lookups, until all
# are there; then the trie's prefix count. Polls every 1/20 of the time
# waited so far, at least 0.02 s and at most 0.2 s apart; gives up after
# PHASE_TIMEOUT seconds or when the receiver dies (fails). Runs in this
# shell, not in a $(...), so a signal stops it at once.
wait_loaded() {
  pstart=$(now); end=$(( $(date +%s) + PHASE_TIMEOUT ))
  gate=0
  while :; do
    if [ $gate = 0 ] && [ "$(samples_present)" -ge $SAMPLES ]; then gate=1; fi
    if [ $gate = 1 ]; then
      c=$(trie_prefixes); t=$(now)
      if [ $(( c - BASE )) -ge $ROUTES ]; then LOADED=$t; return 0; fi
    else
      t=$(now)
    fi
    [ "$(date +%s)" -lt "$end" ] || return 1
    for pid in $RPIDS; do kill -0 "$pid" 2>/dev/null || { log "the receiver (PID $pid) is gone"; return 1; }; done
    sleep "$(awk -v s="$pstart" -v t="$t" 'BEGIN {
      e = (t - s) / 20; if (e < 0.02) e = 0.02; if (e > 0.2) e = 0.2; printf "%.3f", e }')"
  done
}

kill_pids() {  # SIGKILL these PIDs and wait (bounded) until they are gone
  for pid in "$@"; do kill -9 "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  forget_pids "$@"
}

# ---------------------------------------------------------------- topology
log "topology: namespaces $NS_SW (bridge), $NS_F (feeder, $PEERS addresses), one per receiver ($DAEMON_IP)"
ip netns add "$NS_SW"
NSS="$NS_SW"
ip -n "$NS_SW" link add br0 type bridge
ip -n "$NS_SW" link set br0 up
ip netns add "$NS_F"
NSS="$NS_F $NSS"
ip link add eth0 netns "$NS_F" type veth peer name port-f netns "$NS_SW"
ip -n "$NS_SW" link set dev port-f master br0 up
ip -n "$NS_F" link set lo up
ip -n "$NS_F" link set eth0 up
FEED_IPS=""
i=0
while [ $i -lt $PEERS ]; do
  a="$SUBNET.$((11 + i))"
  ip -n "$NS_F" addr add "$a/24" dev eth0
  FEED_IPS="$FEED_IPS $a"
  i=$((i + 1))
done

# ---------------------------------------------------------------- receivers
# Each start_X starts the receiver in $NS_D and sets RPIDS (the processes
# whose peak RSS is measured, the first being the one whose name is shown),
# RNAMES (their names), VERSION and PROTO (the kernel protocol of its routes).

start_podbgp() {
  objects=${1:-true}
  d="$WORK/$name"; mkdir -p "$d"; PODBGP_DIR=$d
  {
    echo "[global]"
    echo "asn = $BENCH_AS"
    echo "router_id = \"$DAEMON_IP\""
    echo "listen_addresses = [\"$DAEMON_IP\"]"
    echo "[api]"
    echo "listen = \"unix:$d/api.sock\""
    echo "[metrics]"
    echo "listen = \"\""
    echo "[fib]"
    echo "enabled = true"
    echo "table = 254"
    echo "protocol = 200"
    echo "accept = [\"0.0.0.0/1\"]"
    echo "nexthop_objects = $objects"
    echo "[snat]"
    echo "enabled = false"
    for a in $FEED_IPS; do
      echo "[[neighbor]]"
      echo "address = \"$a\""
      echo "asn = $BENCH_AS"
      echo "passive = true"
    done
  } >"$d/podbgp.toml"
  ip netns exec "$NS_D" "$PODBGP" run --config "$d/podbgp.toml" >"$d/podbgp.log" 2>&1 &
  pid=$!; PIDS="$PIDS $pid"
  PODBGP_API="unix:$d/api.sock"
  wait_for "podbgp API" 20 "$PODBGP" --api "$PODBGP_API" global || die "podbgp did not start: $(tail -5 "$d/podbgp.log")"
  RPIDS=$pid; RNAMES=podbgp; PROTO=200
  VERSION=$("$PODBGP" --version | awk '{ print $2 }')
}
diagnose_podbgp() {
  log "podbgp log (last 20 lines):"; tail -n 20 "$PODBGP_DIR/podbgp.log" >&2
  timeout 60 "$PODBGP" --api "$PODBGP_API" fib -j >"$PODBGP_DIR/fib.json" 2>&1 || true
  log "podbgp --api $PODBGP_API fib -j (the first 600 bytes):"
  head -c 600 "$WORK/podbgp/fib.json" >&2; echo >&2
  log "podbgp fib: prefixes by state:"
  python3 -c '
import collections, json, sys
try:
    entries = json.load(open(sys.argv[1]))
except ValueError as e:
    sys.exit(f"  unreadable: {e}")
print(" ", dict(collections.Counter(e["state"] for e in entries)))' "$PODBGP_DIR/fib.json" >&2 || true
}

start_bird() {
  d="$WORK/bird"; mkdir -p "$d"
  {
    echo "log \"$d/bird.log\" { info, warning, error, fatal };"
    echo "router id $DAEMON_IP;"
    echo "protocol device { }"
    echo "protocol kernel {     # the namespace's main table"
    echo "  ipv4 { import none; export all; };"
    echo "}"
    echo "template bgp feeder {"
    echo "  local $DAEMON_IP as $BENCH_AS;"
    echo "  direct;                # one hop: the feeders share our subnet"
    echo "  passive on;"
    echo "  ipv4 { import all; export none; gateway direct; };"
    echo "}"
    n=0
    for a in $FEED_IPS; do echo "protocol bgp f$n from feeder { neighbor $a as $BENCH_AS; }"; n=$((n + 1)); done
  } >"$d/bird.conf"
  ip netns exec "$NS_D" bird -f -c "$d/bird.conf" -s "$d/bird.ctl" >"$d/stderr.log" 2>&1 &
  pid=$!; PIDS="$PIDS $pid"
  wait_for "BIRD control socket" 20 birdc -s "$d/bird.ctl" show status || die "BIRD did not start: $(cat "$d/stderr.log")"
  RPIDS=$pid; RNAMES=bird; PROTO=bird
  VERSION=$(bird --version 2>&1 | awk '{ print $3 }')
}
diagnose_bird() {
  log "BIRD log (last 20 lines):"; tail -n 20 "$WORK/bird/bird.log" >&2
}

start_frr() {
  d="$WORK/frr"; mkdir -p "$d"
  {
    echo "frr version 8.4"
    echo "frr defaults traditional"
    echo "hostname bench"
    echo "!"
    echo "router bgp $BENCH_AS"
    echo " bgp router-id $DAEMON_IP"
    echo " no bgp default ipv4-unicast"
    echo " neighbor FEED peer-group"
    echo " neighbor FEED remote-as $BENCH_AS"
    echo " neighbor FEED passive"
    for a in $FEED_IPS; do echo " neighbor $a peer-group FEED"; done
    echo " address-family ipv4 unicast"
    echo "  neighbor FEED activate"
    echo " exit-address-family"
    echo "!"
  } >"$d/frr.conf"
  frr_start "$NS_D" "$d"
  RPIDS=$FRR_PIDS
  RNAMES="zebra bgpd"; PROTO=bgp
  VERSION=$(/usr/lib/frr/bgpd --version | awk 'NR == 1 { print $3 }')
}
diagnose_frr() {
  log "FRR bgpd and zebra logs (last 10 lines each):"
  tail -n 10 "$WORK/frr/bgpd.log" "$WORK/frr/zebra.log" >&2
  timeout 20 vtysh -N "$NS_D" -c 'show ip route summary' >&2 2>/dev/null || true
}

# move_next_hop: the first feeder's next hop moves to a second device of
# the receiver's (a more specific route to it, as when a link is re-cabled);
# MOVED: the seconds until the receiver's routes to all the samples of that
# feeder's 100,000 go out of the new device, checked in full after.
MOVE_BATCH="$WORK/move.ip"
python3 -c "
import ipaddress
for k in range($SAMPLES):
    i = (k + 1) * ($ROUTES // $SAMPLES) - 1
    if i < $PREFIXES:
        print('route get', ipaddress.IPv4Address(0x0A000000 + (i << 8) + 1))
" >"$MOVE_BATCH"
MOVE_SAMPLES=$(wc -l <"$MOVE_BATCH")
# measure_idle: the receiver's CPU use over IDLE_SECONDS (% of one CPU)
# and its RSS at the end (MB), all its processes together.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
measure_idle() {
  # shellcheck disable=SC2086
  settle 10 $RPIDS
  c0=0; for pid in $RPIDS; do c0=$(( c0 + $(cpu_ns "$pid") )); done
  i0=$(now)
  sleep "$IDLE_SECONDS"
  c1=0; for pid in $RPIDS; do c1=$(( c1 + $(cpu_ns "$pid") )); done
  i1=$(now)
  kb=0; for pid in $RPIDS; do kb=$(( kb + $(rss_kb "$pid") )); done
  idle_cpu=$(calc "($c1 - $c0) / 1e7 / ($i1 - $i0)" 3)
  idle_rss=$(calc "$kb / 1024" 1)
  log "$name: idle for $(calc "$i1 - $i0" 1) s: ${idle_cpu}% of a CPU, RSS $idle_rss MB"
}

second_device() {  # made before the receiver starts: a new link makes it read its table again
  ip -n "$NS_D" link add eth1 type veth peer name eth1p
  ip -n "$NS_D" link set eth1 up
  ip -n "$NS_D" link set eth1p up
}
move_next_hop() {
  mt0=$(now); mend=$(( $(date +%s) + 30 ))
  ip -n "$NS_D" route add "$FEED_FIRST_IP/32" dev eth1 proto static
  while :; do
    c=$(ip -n "$NS_D" -force -batch "$MOVE_BATCH" 2>/dev/null | grep -c 'dev eth1' || true)
    mt1=$(now)
    if [ "$c" -ge "$MOVE_SAMPLES" ]; then moved=$(calc "$mt1 - $mt0" 3); break; fi
    [ "$(date +%s)" -lt "$mend" ] || { checks="$checks move:$c-of-$MOVE_SAMPLES-samples"; break; }
    sleep 0.01
  done
  on=$(ip -n "$NS_D" -4 route show table main proto "$PROTO" dev eth1 | wc -l)
  [ "$on" = $PREFIXES ] || checks="$checks moved-routes=$on"
  log "$name: the first feeder's $PREFIXES routes out of eth1 after ${moved}s ($on routes there)"
  # Back as it was: the session with that feeder goes through eth1 now, and
  # its socket, unable to say goodbye when the receiver is killed, would
  # keep the namespace (and its address on the bridge) for minutes.
  ip -n "$NS_D" route del "$FEED_FIRST_IP/32" dev eth1 proto static
}

# ---------------------------------------------------------------- one run
RESULTS="$WORK/results"
SECONDS_OF="$WORK/seconds"   # LABEL|SECONDS of each row, for the ratios
: >"$SECONDS_OF"
FORMAT='%-18s %-7s %8s %9s %7s %12s %7s %7s %7s %7s  %s\n'
: >"$RESULTS"
LIMIT_S=""

row() {  # LABEL VERSION SECONDS RSS_KB SENT CHECKS [MOVED IDLE_CPU IDLE_RSS]
  if [ -n "$3" ]; then
    secs=$3; rate=$(calc "$ROUTES / $3" 0)
    if [ -n "$LIMIT_S" ]; then ratio=$(calc "$3 / $LIMIT_S" 2); else ratio=-; fi
  else
    secs=-; rate=-; ratio=-
  fi
  if [ -n "$4" ]; then mb=$(calc "$4 / 1024" 0); else mb=-; fi
  printf "$FORMAT" "$1" "$2" "$secs" "$rate" "$ratio" "$mb" "$5" "${7:--}" "${8:--}" "${9:--}" "$6" >>"$RESULTS"
  [ -z "$3" ] || echo "$1|$3" >>"$SECONDS_OF"
}

# The pipelined-netlink limit: the same routes, one gateway, in a fresh namespace.
limit() {
  mode=$1
  quiet
  make_ns "nl-$mode"
  log "netlink limit ($mode): $ROUTES routes via $FEED_FIRST_IP, $IN_FLIGHT in flight"
  case $mode in
    batch) how="--mode batch --acks last" ;;
    every) how="--mode batch --acks every" ;;
    *) how="--mode $mode" ;;
  esac
  # shellcheck disable=SC2086
  ip netns exec "$NS_D" timeout "$PHASE_TIMEOUT" "$NETLINK_LIMIT" $how \
    --routes $ROUTES --gateway "$FEED_FIRST_IP" --in-flight "$IN_FLIGHT" \
    >"$WORK/limit-$mode.out" 2>"$WORK/limit-$mode.err" &
  lpid=$!; PIDS="$PIDS $lpid"
  wait "$lpid" || die "netlink_limit ($mode) failed: $(cat "$WORK/limit-$mode.out" "$WORK/limit-$mode.err")"
  forget_pids "$lpid"
  out=$(cat "$WORK/limit-$mode.out")
  log "netlink limit ($mode): $out"
  secs=$(echo "$out" | sed -n 's/.* seconds=\([0-9.]*\).*/\1/p')
  n=$(full_count 200)
  checks=ok; [ "$n" = $ROUTES ] || checks="kernel-routes=$n"
  case $mode in
    batch) label="netlink limit"; [ -n "$LIMIT_S" ] || LIMIT_S=$secs ;;
    every) label="netlink, every ack" ;;
    handle) label="rtnetlink Handle" ;;
    *) label="netlink $mode" ;;
  esac
  batchn=$(echo "$out" | sed -n 's/.* batch=\([0-9]*\).*/\1/p')
  acks=$(echo "$out" | sed -n 's/.* acks=\([a-z]*\).*/\1/p')
  row "$label" - "$secs" "" - "$checks ($IN_FLIGHT in flight, $batchn per sendmsg, answers: $acks)"
  drop_ns "$NS_D"
}

measure() {
  name=$1
  quiet
  case $name in
    podbgp-routes) make_ns podbgp-r; second_device ;;
    podbgp) make_ns "$name"; second_device ;;
    *) make_ns "$name" ;;
  esac
  BASE=$(trie_prefixes)
  log "$name: starting in $NS_D"
  case $name in
    podbgp) start_podbgp; label=podbgp ;;
    podbgp-routes) start_podbgp false; label="podbgp (routes)" ;;
    bird) start_bird; label=BIRD ;;
    frr) start_frr; label=FRR ;;
  esac

  mkdir -p "$WORK/$name"
  FEED_LOG="$WORK/$name/feed.log"
  : >"$FEED_LOG"
  # stdin from /dev/null would be an immediate `quit`: give it a pipe we hold open
  mkfifo "$WORK/$name/feed.in"
  exec 3<>"$WORK/$name/feed.in"
  ip netns exec "$NS_F" python3 "$FEED" --daemon "$DAEMON_IP" --local "$FEED_FIRST_IP" \
    --peers $PEERS --prefixes $PREFIXES --unique --feed-when-established \
    --local-as "$BENCH_AS" --max-seconds $((PHASE_TIMEOUT + 120)) \
    <"$WORK/$name/feed.in" >"$FEED_LOG" 2>&1 &
  FEED_PID=$!; PIDS="$PIDS $FEED_PID"

  wait_event established 40 || { "diagnose_$(echo "$name" | sed 's/-routes$//')" || true; die "$name: the sessions did not come up"; }
  t0=$(event_time established)
  log "$name $VERSION: $PEERS sessions established; the feed started by itself"
  checks=""
  if wait_loaded; then
    secs=$(calc "$LOADED - $t0")
    log "$name: $ROUTES routes in the kernel $secs s after the sessions came up"
  else
    secs=""
    have=$(( $(trie_prefixes) - BASE ))
    log "$name: only $have of $ROUTES routes in the kernel when the wait ended"
    checks="incomplete:$have-routes"
    "diagnose_$(echo "$name" | sed 's/-routes$//')" || true
  fi
  tsent=$(event_time feed-sent)
  if [ -n "$tsent" ]; then sent=$(calc "$tsent - $t0" 2); else sent=-; checks="$checks feed-not-all-sent"; fi

  # Peak RSS once the receiver has finished what the load gave it to do.
  # shellcheck disable=SC2086
  settle 30 $RPIDS
  total=0; detail=""
  set -- $RNAMES
  for pid in $RPIDS; do
    kb=$(hwm_kb "$pid"); [ -n "$kb" ] || { checks="$checks $1-gone"; kb=0; }
    total=$((total + kb))
    detail="$detail $1 $(calc "$kb / 1024" 0) MB +"
    shift
  done
  n=$(full_count "$PROTO")
  [ "$n" = $ROUTES ] || checks="$checks kernel-routes=$n"
  idle_cpu=-; idle_rss=-
  [ "$IDLE_SECONDS" -gt 0 ] && measure_idle
  moved=-
  case $name in podbgp*) [ -n "$secs" ] && move_next_hop ;; esac
  if grep -q '^\(error\|down\) ' "$FEED_LOG"; then checks="$checks feeder:$(grep -c '^\(error\|down\) ' "$FEED_LOG")-errors"; fi
  log "$name: peak RSS$(echo "$detail" | sed 's/ +$//'); $n routes of protocol $PROTO in the kernel; checks ${checks:-ok}"
  checks=$(echo "${checks:-ok}" | sed 's/^ //; s/ /,/g')
  [ "$name" = frr ] && checks="$checks ($(echo "$detail" | sed 's/^ //; s/ +$//'))"

  # Stop without letting the receiver remove its million routes (many
  # seconds, and nothing is measured then): SIGKILL, then the namespace goes.
  # shellcheck disable=SC2086
  kill_pids $RPIDS "$FEED_PID"
  exec 3>&-
  [ "$name" = frr ] && { rm -rf "$FRR_RUN"; FRR_RUN=""; }
  drop_ns "$NS_D"
  row "$label" "$VERSION" "$secs" "$total" "$sent" "$checks" "$moved" "$idle_cpu" "$idle_rss"
}

LOADAVG0=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine: $(nproc) CPUs, load average $LOADAVG0"
for mode in $LIMIT_MODES; do limit "$mode"; done
for name in $RECEIVERS; do measure "$name"; done
LOADAVG1=$(cut -d' ' -f1-3 /proc/loadavg)

echo "# $PEERS iBGP feeders (AS $BENCH_AS) x $PREFIXES IPv4 /24s of their own = $ROUTES routes, each with one path,"
echo "# all feeders at once from the moment every session is Established; each receiver installs them in its namespace's main table."
echo "# CPUs: $(nproc) ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); load average at start: $LOADAVG0, at end: $LOADAVG1"
echo "# Debian packages: $(dpkg-query -W -f '${Package} ${Version}, ' bird2 frr 2>/dev/null | sed 's/, $//'); kernel $(uname -r)"
echo "# seconds: receivers: all sessions Established -> all $ROUTES routes seen in the kernel (polled, up to 0.2 s late);"
echo "#   netlink rows: netlink_limit's first request -> last answer, the same routes via one gateway in a fresh namespace"
echo "# x limit: seconds / the netlink limit's seconds; peak RSS MB: VmHWM (FRR: zebra + bgpd); sent s: Established -> the feeder's last byte written"
echo "# checks: exactly $ROUTES routes of the receiver's protocol in the kernel at the end, and no feeder error (\"ok\", or what differed)"
echo "# move s: the first feeder's next hop moved to a second device -> its $PREFIXES routes all out of it (podbgp rows)"
[ "$IDLE_SECONDS" -gt 0 ] && echo "# idle %, idle MB: over $IDLE_SECONDS s after the load, sessions up, nothing changing: CPU in % of one CPU, RSS at the end"
printf "$FORMAT" receiver version seconds "routes/s" "x limit" "peak RSS MB" "sent s" "move s" "idle %" "idle MB" checks
cat "$RESULTS"
# podbgp against each other row of the same run: how many times faster.
awk -F'|' '$1 == "podbgp" { p = $2 } { s[NR] = $2; l[NR] = $1 }
  END { if (p == "") exit; for (i = 1; i <= NR; i++) if (l[i] != "podbgp")
    printf "# podbgp vs %s: %.2fx as fast (%s s / %s s)\n", l[i], s[i] / p, s[i], p }' "$SECONDS_OF"
