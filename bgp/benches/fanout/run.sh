#!/bin/sh
# Fan-out: podbgp, BIRD, FRR and GoBGP each take a table from one iBGP
# feeder and pass it on to 10 eBGP receivers; measured is the time from the
# feeder's first UPDATE until every receiver holds every route. See
# README.md here.
#
# Needs root (network namespaces), Debian's bird2, frr, gobgpd and
# python3, and two binaries built first:
#   cargo build --release -p agent --bin podbgp
#   cargo build --release -p bgp --example sink
#
# Topology: a Linux bridge in a namespace of its own; the daemon under test
# in another (10.255.0.1/24); the feeder (../peers/feed.py, one session
# from 10.255.0.11) in a third; the receivers (examples/sink.rs, one
# session each from 10.255.0.21 on, AS 65101 on) in a fourth. Nothing gets
# an address in the root namespace; everything is removed on exit.
#
# Environment:
#   DAEMONS="podbgp bird frr gobgp"  which daemons to measure, in this order
#   PODBGP=target/release/podbgp     the podbgp binary
#   SINK=target/release/examples/sink
#   ROUTES=1000000             routes the feeder sends (distinct /24s)
#   RECEIVERS=10               eBGP sessions the routes go out to
#   BENCH_AS=65000             the daemon's and the feeder's AS
#   PHASE_TIMEOUT=900          seconds allowed for the fan-out (GoBGP takes ~7 minutes)
#   KEEP_WORK=1                keep the work directory (configs, logs)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=fanout
. "$HERE/../lib.sh"
ROOT=$(cd "$HERE/../../.." && pwd)
DAEMONS=${DAEMONS:-"podbgp bird frr gobgp"}
PODBGP=${PODBGP:-$ROOT/target/release/podbgp}
SINK=${SINK:-$ROOT/target/release/examples/sink}
ROUTES=${ROUTES:-1000000}
RECEIVERS=${RECEIVERS:-10}
BENCH_AS=${BENCH_AS:-65000}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-900}
FIRST_RECEIVER_AS=65101
DAEMON_IP=10.255.0.1
FEED_IP=10.255.0.11
SINK_FIRST=21             # receivers' addresses: 10.255.0.21 on

[ -x "$SINK" ] || die "missing $SINK (cargo build --release -p bgp --example sink)"
[ "$RECEIVERS" -ge 1 ] && [ "$RECEIVERS" -le 200 ] || die "RECEIVERS must be 1 to 200"

P="fo$$"
NS_SW="$P-sw"; NS_D="$P-d"; NS_F="$P-f"; NS_R="$P-r"
WORK=""
PIDS=""
FRR_RUN=""
FRR_RUN_PARENT_MADE=0

cleanup() {
  rc=$?
  set +e
  trap - EXIT INT TERM HUP
  exec 3>&- 4>&-
  for pid in $PIDS; do kill "$pid" 2>/dev/null; done
  for _ in $(seq 1 50); do
    alive=0
    for pid in $PIDS; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in $PIDS; do kill -9 "$pid" 2>/dev/null; done
  for ns in "$NS_R" "$NS_F" "$NS_D" "$NS_SW"; do ip netns del "$ns" 2>/dev/null; done
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

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/podbgp-fanout.XXXXXX")
chmod 755 "$WORK"         # FRR drops to the frr user and must read its config
CLK_TCK=$(getconf CLK_TCK)
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# sink_event NAME: the time of the receivers' event NAME, if it came
sink_event() { awk -v e="$1" '$1 == e { print $2; exit }' "$SINK_LOG"; }

RECEIVER_IPS=""
i=0
while [ $i -lt "$RECEIVERS" ]; do
  RECEIVER_IPS="$RECEIVER_IPS 10.255.0.$((SINK_FIRST + i))"
  i=$((i + 1))
done

# ---------------------------------------------------------------- topology
log "topology: $NS_SW (bridge), $NS_D (daemon $DAEMON_IP), $NS_F (feeder $FEED_IP), $NS_R ($RECEIVERS receivers)"
ip netns add "$NS_SW"
ip -n "$NS_SW" link add br0 type bridge
ip -n "$NS_SW" link set br0 up
for h in d f r; do
  ip netns add "$P-$h"
  ip link add eth0 netns "$P-$h" type veth peer name "port-$h" netns "$NS_SW"
  ip -n "$NS_SW" link set dev "port-$h" master br0 up
  ip -n "$P-$h" link set lo up
  ip -n "$P-$h" link set eth0 up
done
ip -n "$NS_D" addr add "$DAEMON_IP/24" dev eth0
ip -n "$NS_F" addr add "$FEED_IP/24" dev eth0
for a in $RECEIVER_IPS; do ip -n "$NS_R" addr add "$a/24" dev eth0; done

# ---------------------------------------------------------------- daemons
# Each start_X sets DPID (the process measured) and VERSION.

start_podbgp() {
  d="$WORK/podbgp"; mkdir -p "$d"
  [ -x "$PODBGP" ] || die "missing $PODBGP (cargo build --release -p agent --bin podbgp)"
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
    echo "enabled = false"
    echo "[snat]"
    echo "enabled = false"
    echo "[[neighbor]]"
    echo "address = \"$FEED_IP\""
    echo "asn = $BENCH_AS"
    echo "passive = true"
    n=0
    for a in $RECEIVER_IPS; do
      echo "[[neighbor]]"
      echo "address = \"$a\""
      echo "asn = $((FIRST_RECEIVER_AS + n))"
      echo "passive = true"
      echo "families = [\"ipv4\"]"
      n=$((n + 1))
    done
  } >"$d/podbgp.toml"
  ip netns exec "$NS_D" "$PODBGP" run --config "$d/podbgp.toml" >"$d/podbgp.log" 2>&1 &
  DPID=$!; PIDS="$PIDS $DPID"
  wait_for "podbgp API" 20 "$PODBGP" --api "unix:$d/api.sock" global || die "podbgp did not start: $(tail -5 "$d/podbgp.log")"
  VERSION=$("$PODBGP" --version | awk '{ print $2 }')
}

start_bird() {
  d="$WORK/bird"; mkdir -p "$d"
  {
    echo "log \"$d/bird.log\" { info, warning, error, fatal };"
    echo "router id $DAEMON_IP;"
    echo "protocol device { }"
    echo "protocol bgp feeder {"
    echo "  local $DAEMON_IP as $BENCH_AS; neighbor $FEED_IP as $BENCH_AS;"
    echo "  direct; passive on;"
    echo "  ipv4 { import all; export none; gateway direct; };"
    echo "}"
    n=0
    for a in $RECEIVER_IPS; do
      echo "protocol bgp r$n {"
      echo "  local $DAEMON_IP as $BENCH_AS; neighbor $a as $((FIRST_RECEIVER_AS + n));"
      echo "  passive on;"
      echo "  ipv4 { import none; export all; };"
      echo "}"
      n=$((n + 1))
    done
  } >"$d/bird.conf"
  ip netns exec "$NS_D" bird -f -c "$d/bird.conf" -s "$d/bird.ctl" >"$d/stderr.log" 2>&1 &
  DPID=$!; PIDS="$PIDS $DPID"
  wait_for "BIRD control socket" 20 birdc -s "$d/bird.ctl" show status || die "BIRD did not start: $(cat "$d/stderr.log")"
  VERSION=$(bird --version 2>&1 | awk '{ print $3 }')
}

start_frr() {
  d="$WORK/frr"; mkdir -p "$d"
  {
    echo "frr version 8.4"
    echo "frr defaults traditional"
    echo "hostname bench"
    echo "bgp no-rib"
    echo "!"
    echo "router bgp $BENCH_AS"
    echo " bgp router-id $DAEMON_IP"
    echo " no bgp default ipv4-unicast"
    echo " no bgp ebgp-requires-policy"
    echo " neighbor $FEED_IP remote-as $BENCH_AS"
    echo " neighbor $FEED_IP passive"
    n=0
    for a in $RECEIVER_IPS; do
      echo " neighbor $a remote-as $((FIRST_RECEIVER_AS + n))"
      echo " neighbor $a passive"
      n=$((n + 1))
    done
    echo " address-family ipv4 unicast"
    echo "  neighbor $FEED_IP activate"
    for a in $RECEIVER_IPS; do echo "  neighbor $a activate"; done
    echo " exit-address-family"
    echo "!"
  } >"$d/frr.conf"
  frr_start "$NS_D" "$d"
  DPID=$(cat "$FRR_RUN/bgpd.pid")
  VERSION=$(/usr/lib/frr/bgpd --version | awk 'NR == 1 { print $3 }')
}

start_gobgp() {
  d="$WORK/gobgp"; mkdir -p "$d"
  {
    echo "[global.config]"
    echo "  as = $BENCH_AS"
    echo "  router-id = \"$DAEMON_IP\""
    echo "  local-address-list = [\"$DAEMON_IP\"]"
    n=0
    for a in $FEED_IP $RECEIVER_IPS; do
      if [ "$a" = "$FEED_IP" ]; then asn=$BENCH_AS; else asn=$((FIRST_RECEIVER_AS + n)); n=$((n + 1)); fi
      echo "[[neighbors]]"
      echo "  [neighbors.config]"
      echo "    neighbor-address = \"$a\""
      echo "    peer-as = $asn"
      echo "  [neighbors.transport.config]"
      echo "    passive-mode = true"
      echo "  [[neighbors.afi-safis]]"
      echo "    [neighbors.afi-safis.config]"
      echo "      afi-safi-name = \"ipv4-unicast\""
    done
  } >"$d/gobgp.toml"
  ip netns exec "$NS_D" gobgpd -f "$d/gobgp.toml" --api-hosts "unix://$d/api.sock" --pprof-disable -p \
    >"$d/gobgpd.log" 2>&1 &
  DPID=$!; PIDS="$PIDS $DPID"
  wait_for "GoBGP API" 20 gobgp --target "unix://$d/api.sock" global || die "GoBGP did not start: $(tail -5 "$d/gobgpd.log")"
  VERSION=$(gobgpd --version | awk '{ print $3 }')
}

# ---------------------------------------------------------------- one run
RESULTS="$WORK/results"; : >"$RESULTS"
SECONDS_OF="$WORK/seconds"; : >"$SECONDS_OF"
FORMAT='%-6s %-7s %8s %8s %11s %7s %9s  %s\n'

measure() {
  name=$1
  log "$name: starting"
  case $name in
    bird) start_bird; label=BIRD ;;
    frr) start_frr; label=FRR ;;
    gobgp) start_gobgp; label=GoBGP ;;
    podbgp) start_podbgp; label=podbgp ;;
    *) die "unknown daemon $name" ;;
  esac
  FEED_LOG="$WORK/$name/feed.log"; SINK_LOG="$WORK/$name/sink.log"
  mkfifo "$WORK/$name/feed.in" "$WORK/$name/sink.in"
  : >"$FEED_LOG"; : >"$SINK_LOG"
  ip netns exec "$NS_F" python3 "$HERE/../peers/feed.py" --daemon "$DAEMON_IP" --local "$FEED_IP" \
    --peers 1 --prefixes "$ROUTES" --unique --local-as "$BENCH_AS" --max-seconds 900 \
    <"$WORK/$name/feed.in" >"$FEED_LOG" 2>&1 &
  FEED_PID=$!; PIDS="$PIDS $FEED_PID"
  exec 3<>"$WORK/$name/feed.in"
  ip netns exec "$NS_R" "$SINK" --daemon "$DAEMON_IP" --local "10.255.0.$SINK_FIRST" \
    --sessions "$RECEIVERS" --first-as "$FIRST_RECEIVER_AS" --target "$ROUTES" \
    <"$WORK/$name/sink.in" >"$SINK_LOG" 2>&1 &
  SINK_PID=$!; PIDS="$PIDS $SINK_PID"
  exec 4<>"$WORK/$name/sink.in"

  wait_event established 60 || die "$name: the feeder's session did not come up"
  end=$(( $(date +%s) + 60 ))
  until [ -n "$(sink_event established)" ]; do
    [ "$(date +%s)" -lt "$end" ] || die "$name: the receivers' sessions did not come up: $(head -3 "$SINK_LOG")"
    sleep 0.1
  done
  log "$name $VERSION: feeder and $RECEIVERS receivers established"
  sleep 1
  rss0=$(rss_kb "$DPID"); cpu0=$(cpu_ticks "$DPID")

  echo feed >&3
  wait_event feed-start 60 || die "$name: the feed did not start"
  t0=$(event_time feed-start)
  end=$(( $(date +%s) + PHASE_TIMEOUT ))
  until [ -n "$(sink_event all-full)" ]; do
    if grep -q '^down ' "$SINK_LOG"; then die "$name: a receiver's session went down: $(grep '^down ' "$SINK_LOG" | head -3)"; fi
    [ "$(date +%s)" -lt "$end" ] || die "$name: not every receiver had $ROUTES routes after $PHASE_TIMEOUT s: $(grep -c '^full ' "$SINK_LOG") did"
    sleep 0.05
  done
  t1=$(sink_event all-full)
  tfirst=$(sink_event full)
  cpu1=$(cpu_ticks "$DPID"); rss1=$(rss_kb "$DPID")
  tsent=$(event_time feed-sent); [ -n "$tsent" ] || tsent=$t1
  log "$name: every receiver full after $(calc "$t1 - $t0") s (first after $(calc "$tfirst - $t0") s; the feed was sent after $(calc "$tsent - $t0") s); RSS $rss0 -> $rss1 kB"

  # Checks: every receiver reported full once, and none went down (before the daemon is stopped).
  fulls=$(grep -c '^full ' "$SINK_LOG" || true)
  downs=$(grep -c '^down ' "$SINK_LOG" || true)
  checks=""
  [ "$fulls" = "$RECEIVERS" ] || checks="$checks full=$fulls"
  [ "$downs" = 0 ] || checks="$checks down=$downs"
  case $name in
    frr) set -- "$DPID" "$(cat "$FRR_RUN/zebra.pid")" ;;
    *) set -- "$DPID" ;;
  esac
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    alive=0; for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  for pid in "$@"; do kill -9 "$pid" 2>/dev/null || true; done
  forget_pids "$@"
  echo quit >&3; echo quit >&4
  exec 3>&- 4>&-
  for pid in "$FEED_PID" "$SINK_PID"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  forget_pids "$FEED_PID" "$SINK_PID"
  [ "$name" = frr ] && { rm -rf "$FRR_RUN"; FRR_RUN=""; }
  # Let the sockets of this run go before the next daemon takes the addresses.
  sleep 2

  all=$(calc "$t1 - $t0")
  printf "$FORMAT" "$label" "$VERSION" "$all" "$(calc "$tfirst - $t0")" \
    "$(calc "$ROUTES * $RECEIVERS / ($t1 - $t0)" 0)" "$(calc "($cpu1 - $cpu0) / $CLK_TCK" 2)" \
    "$(calc "($rss1 - $rss0) / 1024" 1)" "$(echo "${checks:-ok}" | sed 's/^ //; s/ /,/g')" >>"$RESULTS"
  echo "$label|$all" >>"$SECONDS_OF"
}

log "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
LOADAVG0=$(cut -d' ' -f1-3 /proc/loadavg)
for name in $DAEMONS; do
  measure "$name"
done

echo "# 1 iBGP feeder (AS $BENCH_AS) sends $ROUTES IPv4 /24s in 4 KB UPDATEs; the daemon passes them on to $RECEIVERS eBGP receivers (AS $FIRST_RECEIVER_AS on)"
echo "# CPUs: $(nproc) ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); load average at start: $LOADAVG0"
echo "# Debian packages: $(dpkg-query -W -f '${Package} ${Version}, ' bird2 frr gobgpd 2>/dev/null | sed 's/, $//')"
echo "# all s: first UPDATE sent -> the last receiver holds $ROUTES routes (announced minus withdrawn NLRI); first s: -> the first one does"
echo "# routes/s: $ROUTES x $RECEIVERS / all s; cpu s: the daemon's CPU time over that span; RSS MB: growth of its VmRSS (FRR: bgpd)"
printf "$FORMAT" daemon version "all s" "first s" "routes/s" "cpu s" "RSS MB" "checks"
cat "$RESULTS"
awk -F'|' '$1 == "podbgp" { p = $2 } { l[NR] = $1; a[NR] = $2 }
  END { if (p == "") exit; for (i = 1; i <= NR; i++) if (l[i] != "podbgp")
    printf "# podbgp vs %s: fan-out %.2fx as fast (%s s / %s s)\n", l[i], a[i] / p, a[i], p }' "$SECONDS_OF"
