#!/bin/sh
# podbgp, BIRD, FRR and GoBGP loading the table of `cargo bench -p bgp --bench rib`
# over real BGP sessions: 10 iBGP peers x 100,000 IPv4 /24s = 1,000,000
# paths, then one peer withdraws its 100,000 prefixes. See README.md here.
#
# Needs root (network namespaces) and Debian's packages bird2, frr, gobgpd
# and python3. Nothing is installed or downloaded by this script.
#
# Topology: a Linux bridge in a namespace of its own; the daemon under test
# in another (10.255.0.1/24); the feeder (feed.py) in a third, with the 10
# source addresses 10.255.0.11-20/24 on its one interface. Nothing gets an
# address in the root namespace. Every name carries a per-run prefix, and
# everything is removed on exit, failed or not.
#
# Environment:
#   DAEMONS="podbgp bird frr gobgp"  which daemons to measure, in this order
#   PODBGP=target/release/podbgp     the podbgp binary (build it first)
#   BENCH_AS=65000             the AS of both sides (must not be 64512-64514,
#                              the ASNs in the paths, or they are loops)
#   WITHDRAW_BY=updates        `updates`: UPDATEs listing the withdrawn routes;
#                              `close`: close the peer's session instead
#   PHASE_TIMEOUT=150          seconds allowed for each load or withdrawal
#   POLL_MIN=0.005             the shortest wait between two polls of the count
#   ROUNDS=5                   how many times each daemon is measured, in turn;
#                              the table gives each column's median
#   KEEP_WORK=1                keep the work directory (configs, logs)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_TAG=peers
. "$HERE/../lib.sh"
DAEMONS=${DAEMONS:-"podbgp bird frr gobgp"}
# The podbgp binary to measure (a release build).
PODBGP=${PODBGP:-$(cd "$HERE/../../.." && pwd)/target/release/podbgp}
BENCH_AS=${BENCH_AS:-65000}
WITHDRAW_BY=${WITHDRAW_BY:-updates}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-150}
# The shortest wait between two polls of the daemon's count, seconds.
POLL_MIN=${POLL_MIN:-0.005}
# Each daemon is measured this many times, the daemons taking turns.
ROUNDS=${ROUNDS:-5}
PEERS=10
PREFIXES=100000
PATHS=$((PEERS * PREFIXES))
WITHDRAWN_PEER=0          # peer 0 holds the best path of every prefix, as in rib.rs
DAEMON_IP=10.255.0.1
SAMPLE=11.134.159.0/24    # the last prefix of the table, checked after each phase
NEXT_BEST_IP=10.255.0.14  # peer 3: best once peer 0 is gone (one-AS path, MED 3)
FEED_FIRST_IP=10.255.0.11

P="pb$$"                  # per-run prefix of every namespace name
NS_SW="$P-sw"; NS_D="$P-d"; NS_F="$P-f"
WORK=""
PIDS=""                   # every process we started, by PID
FRR_RUN=""                # FRR pathspace directory, if we made one
FRR_RUN_PARENT_MADE=0
WITHDRAW_METHOD=""

case "$BENCH_AS" in 6451[2-4]) die "BENCH_AS=$BENCH_AS is in the paths' AS_PATH: the daemons would drop them as loops" ;; esac
case "$WITHDRAW_BY" in updates|close) ;; *) die "WITHDRAW_BY must be updates or close" ;; esac
case "$ROUNDS" in ''|*[!0-9]*|0) die "ROUNDS must be a whole number of at least 1" ;; esac

cleanup() {
  rc=$?
  set +e
  trap - EXIT INT TERM HUP
  exec 3>&-
  for pid in $PIDS; do kill "$pid" 2>/dev/null; done
  for _ in $(seq 1 50); do
    alive=0
    for pid in $PIDS; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in $PIDS; do kill -9 "$pid" 2>/dev/null; done
  for ns in "$NS_F" "$NS_D" "$NS_SW"; do ip netns del "$ns" 2>/dev/null; done
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
for tool in ip python3 bird birdc vtysh gobgpd gobgp timeout awk; do
  command -v "$tool" >/dev/null || die "missing $tool (apt-get install -y bird2 frr gobgpd python3 iproute2)"
done
for f in /usr/lib/frr/zebra /usr/lib/frr/bgpd; do [ -x "$f" ] || die "missing $f (apt-get install -y frr)"; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/podbgp-peers.XXXXXX")
chmod 755 "$WORK"         # FRR drops to the frr user and must read its config

CLK_TCK=$(getconf CLK_TCK)
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# Private anonymous memory (the heap, not code or other file pages)
anon_kb() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }
# CPU time of the whole process: clock ticks (utime + stime, all threads, dead ones too)
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# settle PID MAX_SECONDS: print the time the daemon's CPU use fell below 5%
# (less than 5 ms of CPU in a 0.1 s window)
settle() {
  spid=$1; send=$(( $(date +%s) + $2 ))
  sprev=$(cpu_ns "$spid"); stprev=$(now)
  while [ "$(date +%s)" -lt "$send" ]; do
    sleep 0.1
    scur=$(cpu_ns "$spid"); stcur=$(now)
    if [ $(( scur - sprev )) -lt 5000000 ]; then echo "$stprev"; return 0; fi
    sprev=$scur; stprev=$stcur
  done
  log "daemon still busy after $2 s"
  echo "$stprev"
}

# wait_count ge|le TARGET SAMPLE_PATHS: poll the daemon's path count until
# it is >= or <= TARGET; print the time of the answer that got there.
# SAMPLE_PATHS is the sample prefix's path count once done, for daemons whose
# count is costly. Polls every 1/20 of the time waited so far, at least
# POLL_MIN and at most 0.2 s apart; gives up after PHASE_TIMEOUT seconds, or
# when the feeder reports an error or a session down.
wait_count() {
  op=$1; target=$2; GATE=$3
  pstart=$(now); end=$(( $(date +%s) + PHASE_TIMEOUT )); polls=0
  while :; do
    c=$(count_paths || true); t=$(now)
    if [ -n "$c" ]; then
      if [ "$op" = ge ] && [ "$c" -ge "$target" ]; then echo "$t"; return 0; fi
      if [ "$op" = le ] && [ "$c" -le "$target" ]; then echo "$t"; return 0; fi
    fi
    [ "$(date +%s)" -lt "$end" ] || { log "path count still ${c:-unknown} after $PHASE_TIMEOUT s (want $op $target)"; return 1; }
    # The feeder failing ends the wait (looked at every tenth poll: each
    # look is a process, CPU the daemon under test would not get).
    polls=$((polls + 1))
    if [ $((polls % 10)) = 0 ] && grep -q '^\(error\|down\) ' "$FEED_LOG"; then log "feeder: $(grep '^\(error\|down\) ' "$FEED_LOG" | head -3)"; return 1; fi
    sleep "$(awk -v s="$pstart" -v t="$t" -v m="$POLL_MIN" 'BEGIN {
      e = (t - s) / 20; if (e < m) e = m; if (e > 0.2) e = 0.2; printf "%.3f", e }')"
  done
}

# ---------------------------------------------------------------- topology
log "topology: namespaces $NS_SW (bridge), $NS_D (daemon $DAEMON_IP), $NS_F (feeder, $PEERS addresses)"
ip netns add "$NS_SW"
ip -n "$NS_SW" link add br0 type bridge
ip -n "$NS_SW" link set br0 up
for h in d f; do
  ip netns add "$P-$h"
  ip link add eth0 netns "$P-$h" type veth peer name "port-$h" netns "$NS_SW"
  ip -n "$NS_SW" link set dev "port-$h" master br0 up
  ip -n "$P-$h" link set lo up
  ip -n "$P-$h" link set eth0 up
done
ip -n "$NS_D" addr add "$DAEMON_IP/24" dev eth0
FEED_IPS=""
i=0
while [ $i -lt $PEERS ]; do
  a="10.255.0.$((11 + i))"
  ip -n "$NS_F" addr add "$a/24" dev eth0
  FEED_IPS="$FEED_IPS $a"
  i=$((i + 1))
done

# ---------------------------------------------------------------- daemons
# Each start_X works in $DIR and sets DPID (the process whose RSS is
# measured), VERSION, and count_paths (prints the number of paths the
# daemon holds, or nothing).

start_bird() {
  d="$DIR"; mkdir -p "$d"
  {
    echo "log \"$d/bird.log\" { info, warning, error, fatal };"
    echo "router id $DAEMON_IP;"
    echo "protocol device { }     # interfaces, for the feeders' next hops (no kernel protocol: nothing is installed)"
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
  DPID=$!; PIDS="$PIDS $DPID"
  BIRDC="$d/bird.ctl"
  wait_for "BIRD control socket" 20 birdc -s "$BIRDC" show status || die "BIRD did not start: $(cat "$d/stderr.log")"
  VERSION=$(bird --version 2>&1 | awk '{ print $3 }')
}
count_bird() {  # sum of the BGP channels' imported routes: counters, no table walk
  timeout 20 birdc -s "$BIRDC" show protocols all 2>/dev/null |
    awk '$1 == "Routes:" { s += $2; n++ } END { if (n) print s }'
}

best_bird() {  # SAMPLE's paths: "COUNT BEST_NEXT_HOP"
  timeout 20 birdc -s "$BIRDC" show route "$SAMPLE" 2>/dev/null | awk '
    / unicast \[/ { n++; best = ($0 ~ / \* /) }
    best && $1 == "via" { hop = $2; best = 0 }
    END { print n + 0, (hop == "" ? "-" : hop) }'
}

start_frr() {
  d="$DIR"; mkdir -p "$d"
  {
    echo "frr version 8.4"
    echo "frr defaults traditional"
    echo "hostname bench"
    echo "! no route goes to zebra, so none to the kernel"
    echo "bgp no-rib"
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
  DPID=$(cat "$FRR_RUN/bgpd.pid")
  VERSION=$(/usr/lib/frr/bgpd --version | awk 'NR == 1 { print $3 }')
}
vty() {  # vtysh finds its sockets under /var/run/frr/NAME; it misses a vtysh.conf there, harmlessly
  timeout 20 vtysh -N "$NS_D" "$@" 2>/dev/null
}
count_frr() {  # sum of the peers' pfxRcd (Adj-RIB-In after import)
  vty -c 'show bgp ipv4 unicast summary json' |
    grep -o '"pfxRcd": *[0-9]*' | awk -F: '{ s += $2; n++ } END { if (n) print s }'
}

best_frr() {
  vty -c "show bgp ipv4 unicast $SAMPLE json" | python3 -c '
import json, sys
try:
    paths = json.load(sys.stdin).get("paths", [])
except ValueError:
    paths = []
best = [p["nexthops"][0]["ip"] for p in paths if p.get("bestpath", {}).get("overall")]
print(len(paths), best[0] if best else "-")'
}

start_gobgp() {
  d="$DIR"; mkdir -p "$d"
  {
    echo "[global.config]"
    echo "  as = $BENCH_AS"
    echo "  router-id = \"$DAEMON_IP\""
    echo "  local-address-list = [\"$DAEMON_IP\"]"
    for a in $FEED_IPS; do
      echo "[[neighbors]]"
      echo "  [neighbors.config]"
      echo "    neighbor-address = \"$a\""
      echo "    peer-as = $BENCH_AS"
      echo "  [neighbors.transport.config]"
      echo "    passive-mode = true"
      echo "  [[neighbors.afi-safis]]"
      echo "    [neighbors.afi-safis.config]"
      echo "      afi-safi-name = \"ipv4-unicast\""
    done
  } >"$d/gobgp.toml"
  GOBGP_API="unix://$d/api.sock"
  ip netns exec "$NS_D" gobgpd -f "$d/gobgp.toml" --api-hosts "$GOBGP_API" --pprof-disable -p \
    >"$d/gobgpd.log" 2>&1 &
  DPID=$!; PIDS="$PIDS $DPID"
  wait_for "GoBGP API" 20 gobgp --target "$GOBGP_API" global || die "GoBGP did not start: $(tail -5 "$d/gobgpd.log")"
  VERSION=$(gobgpd --version | awk '{ print $3 }')
}
count_gobgp() {  # paths in the global RIB
  # gobgpd counts by walking all 100,000 destinations in its main loop, about
  # 50 ms of its CPU at 1,000,000 paths: ask only once the sample prefix, the
  # last one each peer sends and withdraws, has the number of paths wanted
  # (an exact lookup, about 1 ms).
  if [ -n "${GATE:-}" ] && [ "$(best_gobgp | cut -d' ' -f1)" != "$GATE" ]; then return 0; fi
  timeout 20 gobgp --target "$GOBGP_API" global rib summary -a ipv4 2>/dev/null |
    sed -n 's/.*Path: *\([0-9]*\).*/\1/p'
}

best_gobgp() {
  timeout 20 gobgp --target "$GOBGP_API" global rib -a ipv4 "$SAMPLE" 2>/dev/null |
    awk '$1 ~ /^\*/ { n++ } $1 == "*>" { hop = $3 } END { print n + 0, (hop == "" ? "-" : hop) }'
}

stop_pids() {  # stop these PIDs: SIGTERM, then SIGKILL after 10 s; fails if SIGKILL was needed
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  for pid in "$@"; do kill -9 "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- one run
# One line per daemon and round: LABEL|VERSION|ROUND|then the table's columns.
ROWS="$WORK/rows"
: >"$ROWS"
# median(" 0.2 0.1 0.3"): the middle value, as written (of an even number,
# the mean of the two middle ones, to as many decimals).
MEDIAN='function median(list,   v, n, i, j, x, d) {
  n = split(list, v, " ")
  for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
  if (n % 2) return v[(n + 1) / 2]
  d = index(v[n / 2], ".") ? length(v[n / 2]) - index(v[n / 2], ".") : 0
  return sprintf("%." d "f", (v[n / 2] + v[n / 2 + 1]) / 2)
}'
FORMAT='%-6s %-7s %7s %9s %7s %7s %11s %12s %12s %10s %11s %7s  %s\n'

start_podbgp() {
  d="$DIR"; mkdir -p "$d"
  [ -x "$PODBGP" ] || die "missing $PODBGP (cargo build --release -p agent, or set PODBGP=path)"
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
    for a in $FEED_IPS; do
      echo "[[neighbor]]"
      echo "address = \"$a\""
      echo "asn = $BENCH_AS"
      echo "passive = true"
    done
  } >"$d/podbgp.toml"
  ip netns exec "$NS_D" "$PODBGP" run --config "$d/podbgp.toml" >"$d/podbgp.log" 2>&1 &
  DPID=$!; PIDS="$PIDS $DPID"
  PODBGP_API="unix:$d/api.sock"
  wait_for "podbgp API" 20 "$PODBGP" --api "$PODBGP_API" global || die "podbgp did not start: $(tail -5 "$d/podbgp.log")"
  VERSION=$("$PODBGP" --version | awk '{ print $2 }')
}
count_podbgp() {  # the peers' accepted routes: counters, no table walk
  # The table's last column, summed by awk: a Python start per poll would
  # take CPU from the daemon on a small machine, as BIRD's and FRR's polls
  # (birdc or vtysh, and awk) do not.
  timeout 20 "$PODBGP" --api "$PODBGP_API" neighbor 2>/dev/null |
    awk 'NR > 1 { s += $NF; n++ } END { if (n) print s }'
}

best_podbgp() {
  timeout 20 "$PODBGP" --api "$PODBGP_API" -j global rib "$SAMPLE" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
paths = d[0]["paths"] if d else []
best = [p["next_hop"] for p in paths if p["best"]]
print(len(paths), best[0] if best else "-")'
}

measure() {
  name=$1; round=$2
  DIR="$WORK/$name-$round"   # the daemon's config and logs, and the feeder's log
  log "$name: starting (round $round of $ROUNDS)"
  case $name in
    bird) start_bird; label=BIRD ;;
    frr) start_frr; label=FRR ;;
    gobgp) start_gobgp; label=GoBGP ;;
    podbgp) start_podbgp; label=podbgp ;;
    *) die "unknown daemon $name" ;;
  esac
  count_paths() { "count_$name"; }

  FEED_LOG="$DIR/feed.log"
  FIFO="$DIR/feed.in"
  mkfifo "$FIFO"
  : >"$FEED_LOG"
  ip netns exec "$NS_F" python3 "$HERE/feed.py" --daemon "$DAEMON_IP" --local "$FEED_FIRST_IP" \
    --peers "$PEERS" --prefixes "$PREFIXES" --local-as "$BENCH_AS" --max-seconds 600 \
    <"$FIFO" >"$FEED_LOG" 2>&1 &
  FEED_PID=$!; PIDS="$PIDS $FEED_PID"
  exec 3<>"$FIFO"           # read-write: never blocks; the feeder sees EOF when we close it

  wait_event established 40 || die "$name: the sessions did not come up"
  log "$name $VERSION: $PEERS sessions established"
  settle "$DPID" 20 >/dev/null
  rss0=$(rss_kb "$DPID"); anon0=$(anon_kb "$DPID")
  c0=$(count_paths); [ "${c0:-0}" = 0 ] || die "$name holds $c0 paths before the feed"

  cpu0=$(cpu_ticks "$DPID")
  # Polling starts at once, not after the feeder's start is seen: the
  # times run from the feeder's own stamp of its first write.
  echo feed >&3
  t1=$(wait_count ge "$PATHS" "$PEERS") || die "$name: did not load $PATHS paths"
  wait_event feed-start 10 || die "$name: the feed did not start"
  t0=$(event_time feed-start)
  ts=$(settle "$DPID" 60)
  cpu1=$(cpu_ticks "$DPID")
  rss1=$(rss_kb "$DPID"); anon1=$(anon_kb "$DPID")
  # What the daemon holds once the load is over: a second after it went
  # idle (buffers of the burst let go, freed heap given back).
  sleep 1; anonh=$(anon_kb "$DPID")
  tsent=$(event_time feed-sent); [ -n "$tsent" ] || tsent=$t1
  c1=$(count_paths)
  log "$name: $c1 paths after $(calc "$t1 - $t0") s (all sent after $(calc "$tsent - $t0") s, daemon idle after $(calc "$ts - $t0") s); RSS $rss0 -> $rss1 kB (anonymous $anon0 -> $anon1 kB), anonymous $anonh kB a second later"
  [ "$c1" -le "$PATHS" ] || die "$name holds $c1 paths, more than $PATHS"

  # Checks: the kernel holds only the connected subnet; the sample prefix has
  # all its paths and the best is peer 0's (lowest MED of the shortest paths).
  checks=""
  kroutes=$(ip -n "$NS_D" -4 route show table all | grep -vc 'table local' || true)
  [ "$kroutes" = 1 ] || checks="$checks kernel-routes=$kroutes"
  best=$("best_$name")
  [ "$best" = "$PEERS $FEED_FIRST_IP" ] || checks="$checks after-load:$(echo "$best" | tr ' ' /)"

  target=$(( PATHS - PREFIXES ))
  if [ "$WITHDRAW_BY" = close ]; then
    echo "close $WITHDRAWN_PEER" >&3
    w1=$(wait_count le "$target" "$((PEERS - 1))") || die "$name: did not drop to $target paths"
    wait_event close 10 || die "$name: the close did not start"
    w0=$(event_time close)
    method="peer $WITHDRAWN_PEER's session is closed (NOTIFICATION Cease)"
  else
    echo "withdraw $WITHDRAWN_PEER" >&3
    w1=$(wait_count le "$target" "$((PEERS - 1))") || die "$name: did not drop to $target paths"
    wait_event withdraw-start 10 || die "$name: the withdrawal did not start"
    w0=$(event_time withdraw-start)
    method="peer $WITHDRAWN_PEER withdraws its $PREFIXES prefixes in UPDATEs (withdrawn routes)"
  fi
  ws=$(settle "$DPID" 60)
  c2=$(count_paths)
  log "$name: $c2 paths $(calc "$w1 - $w0") s after the withdrawal started (daemon idle after $(calc "$ws - $w0") s)"
  best=$("best_$name")
  [ "$best" = "$((PEERS - 1)) $NEXT_BEST_IP" ] || checks="$checks after-withdraw:$(echo "$best" | tr ' ' /)"
  log "$name: checks ${checks:-ok}"

  # Stop the daemon first (by PID), so it does not spend time on sessions going down.
  tstop=$(now)
  case $name in
    frr) set -- "$DPID" "$(cat "$FRR_RUN/zebra.pid")" ;;
    *) set -- "$DPID" ;;
  esac
  if stop_pids "$@"; then how="SIGTERM"; else how="SIGKILL, 10 s after SIGTERM"; fi
  forget_pids "$@"
  log "$name: stopped by $how in $(calc "$(now) - $tstop" 1) s"
  echo quit >&3
  exec 3>&-
  stop_pids "$FEED_PID" || log "feeder needed SIGKILL"
  forget_pids "$FEED_PID"
  [ "$name" = frr ] && { rm -rf "$FRR_RUN"; FRR_RUN=""; }

  # The round's row: the table's columns, with '|' between them.
  {
    printf '%s|' "$label" "$VERSION" "$round" "$(calc "$t1 - $t0")" "$(calc "$PATHS / ($t1 - $t0)" 0)" \
      "$(calc "$ts - $t0" 2)" "$(calc "($cpu1 - $cpu0) / $CLK_TCK" 2)" \
      "$(calc "($rss1 - $rss0) * 1024 / $PATHS" 1)" "$(calc "($anon1 - $anon0) * 1024 / $PATHS" 1)" \
      "$(calc "($anonh - $anon0) * 1024 / $PATHS" 1)" "$(calc "$w1 - $w0")" \
      "$(calc "$PREFIXES / ($w1 - $w0)" 0)" "$(calc "$ws - $w0" 2)"
    echo "${checks:-ok}" | sed 's/^ //; s/ /,/g'
  } >>"$ROWS"
  WITHDRAW_METHOD=$method
}

log "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
LOADAVG0=$(cut -d' ' -f1-3 /proc/loadavg)
# The daemons take turns, round after round, so that a slow spell of the
# machine falls on all of them alike.
round=1
while [ "$round" -le "$ROUNDS" ]; do
  for name in $DAEMONS; do
    measure "$name" "$round"
  done
  round=$((round + 1))
done

echo "# $PEERS iBGP peers (AS $BENCH_AS) x $PREFIXES IPv4 /24s = $PATHS paths over TCP in 4 KB UPDATEs of 1000 prefixes, all peers at once;"
echo "# then $WITHDRAW_METHOD; peer $WITHDRAWN_PEER holds every best path."
echo "# CPUs: $(nproc) ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); load average at start: $LOADAVG0"
echo "# each daemon measured $ROUNDS times, the daemons taking turns; each figure is the median of its rounds"
echo "# Debian packages: $(dpkg-query -W -f '${Package} ${Version}, ' bird2 frr gobgpd 2>/dev/null | sed 's/, $//')"
echo "# load s: first UPDATE sent -> daemon reports $PATHS paths; idle s: -> daemon CPU below 5%; cpu s: daemon CPU time in that span"
echo "# RSS B/path: growth of the daemon process's VmRSS (FRR: bgpd) over the load / $PATHS; RSS growth, not allocator-counted heap"
echo "# anon B/path: the same of RssAnon, its private anonymous part: the heap, without code or other pages of files"
echo "# held B/path: the RssAnon growth one second after the daemon went idle: what holding the table costs once the load is over"
echo "# withdraw s: first withdrawal sent -> daemon reports $((PATHS - PREFIXES)) paths; idle s: -> daemon CPU below 5%"
echo "# checks: no route in the daemon's kernel table but the connected subnet; $SAMPLE has $PEERS paths, best via $FEED_FIRST_IP,"
echo "#   then $((PEERS - 1)) paths, best via $NEXT_BEST_IP (\"ok\", or what differed)"
printf "$FORMAT" daemon version "load s" "paths/s" "idle s" "cpu s" \
  "RSS B/path" "anon B/path" "held B/path" "withdraw s" "prefixes/s" "idle s" "checks"
# Per daemon, each column's median over the rounds; checks: ok if every
# round's were.
awk -F'|' -v fmt="$FORMAT" "$MEDIAN"'
  !($1 in ver) { order[++k] = $1; ver[$1] = $2 }
  { for (c = 4; c <= 13; c++) col[$1, c] = col[$1, c] " " $c
    if ($14 != "ok") bad[$1] = bad[$1] (bad[$1] == "" ? "" : ",") "round" $3 ":" $14 }
  END { for (i = 1; i <= k; i++) { d = order[i]
    printf fmt, d, ver[d], median(col[d, 4]), median(col[d, 5]), median(col[d, 6]), median(col[d, 7]),
      median(col[d, 8]), median(col[d, 9]), median(col[d, 10]), median(col[d, 11]), median(col[d, 12]),
      median(col[d, 13]), (bad[d] == "" ? "ok" : bad[d]) } }' "$ROWS"
if [ "$ROUNDS" -gt 1 ]; then
  echo "# every round (load s, withdraw s, held B/path, checks):"
  awk -F'|' '{ r[$1] = r[$1] sprintf("  %s %s %s %s", $4, $11, $10, $14) } !($1 in r0) { r0[$1]; o[++k] = $1 }
    END { for (i = 1; i <= k; i++) printf "#   %-6s%s\n", o[i], r[o[i]] }' "$ROWS"
fi
# podbgp against each other daemon: how many times as fast, from the
# medians, and the least and most of the rounds (each round's podbgp
# against the same round's other daemon, measured moments apart).
awk -F'|' "$MEDIAN"'
  !($1 in seen) { seen[$1]; order[++k] = $1 }
  { load[$1, $3] = $4; wd[$1, $3] = $11; loads[$1] = loads[$1] " " $4; wds[$1] = wds[$1] " " $11; if ($3 > rounds) rounds = $3 }
  END { if (!("podbgp" in seen)) exit
    pl = median(loads["podbgp"]); pw = median(wds["podbgp"])
    for (i = 1; i <= k; i++) { d = order[i]; if (d == "podbgp") continue
      dl = median(loads[d]); dw = median(wds[d])
      printf "# podbgp vs %s: load %.2fx as fast (%s s / %s s), withdraw %.2fx (%s s / %s s)", d, dl / pl, dl, pl, dw / pw, dw, pw
      if (rounds > 1) {
        lmin = lmax = wmin = wmax = ""
        for (r = 1; r <= rounds; r++) if ((d, r) in load && ("podbgp", r) in load) {
          x = load[d, r] / load["podbgp", r]; y = wd[d, r] / wd["podbgp", r]
          if (lmin == "" || x < lmin) lmin = x; if (lmax == "" || x > lmax) lmax = x
          if (wmin == "" || y < wmin) wmin = y; if (wmax == "" || y > wmax) wmax = y }
        printf "; by round: load %.2fx to %.2fx, withdraw %.2fx to %.2fx", lmin, lmax, wmin, wmax }
      printf "\n" } }' "$ROWS"
