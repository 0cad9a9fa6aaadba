# Shell helpers the benchmark scripts share (POSIX sh, awk, /proc).
# Source it after setting BENCH_TAG, the prefix of log lines.

log() { printf '[%s %s] %s\n' "$BENCH_TAG" "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

now() { date +%s.%N; }
# calc EXPRESSION [DECIMALS]: awk arithmetic, printed with 3 decimals by default
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
# CPU time of a process, all threads, in ns (schedstat: no tick rounding)
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }

# wait_for DESCRIPTION SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds
wait_for() {
  what=$1; end=$(( $(date +%s) + $2 )); shift 2
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    [ "$(date +%s)" -lt "$end" ] || { log "gave up waiting for: $what"; return 1; }
    sleep 0.2
  done
}

# feeder events: `NAME TIME key=value...` lines in $FEED_LOG
event_time() { awk -v e="$1" '$1 == e { print $2; exit }' "$FEED_LOG"; }
has_event() { grep -q "^$1 " "$FEED_LOG"; }

# wait_event NAME SECONDS: wait for the feeder ($FEED_PID) to report NAME
wait_event() {
  end=$(( $(date +%s) + $2 ))
  while ! has_event "$1"; do
    if grep -q '^\(error\|down\) ' "$FEED_LOG"; then log "feeder: $(grep '^\(error\|down\) ' "$FEED_LOG" | head -3)"; return 1; fi
    kill -0 "$FEED_PID" 2>/dev/null || { log "feeder exited: $(tail -3 "$FEED_LOG")"; return 1; }
    [ "$(date +%s)" -lt "$end" ] || { log "no '$1' from the feeder in $2 s"; return 1; }
    sleep 0.02
  done
}

# forget_pids PID...: drop these PIDs from PIDS once they are gone (a PID can be reused)
forget_pids() {
  keep=""
  for pid in $PIDS; do
    case " $* " in *" $pid "*) ;; *) keep="$keep $pid" ;; esac
  done
  PIDS=$keep
}

# frr_start NS DIR: start FRR's zebra and bgpd in namespace NS with
# DIR/frr.conf, their logs in DIR, and wait for bgpd to answer. Sets
# FRR_RUN (FRR's pathspace for NS, for the caller's cleanup to remove),
# FRR_RUN_PARENT_MADE=1 if /var/run/frr had to be made, and FRR_PIDS;
# adds the PIDs to PIDS.
frr_start() {
  if [ ! -d /var/run/frr ]; then mkdir -p /var/run/frr; chown frr:frr /var/run/frr; FRR_RUN_PARENT_MADE=1; fi
  FRR_RUN="/var/run/frr/$1"
  mkdir -p "$FRR_RUN"
  chown frr:frr "$FRR_RUN"
  chown -R frr:frr "$2"
  FRR_PIDS=""
  for dm in zebra bgpd; do
    ip netns exec "$1" "/usr/lib/frr/$dm" -d -N "$1" -f "$2/frr.conf" --log "file:$2/$dm.log" \
      >"$2/$dm.stderr" 2>&1 || die "FRR $dm did not start: $(cat "$2/$dm.stderr")"
    wait_for "FRR $dm pid file" 20 test -s "$FRR_RUN/$dm.pid" || die "FRR $dm did not start"
    FRR_PIDS="$FRR_PIDS $(cat "$FRR_RUN/$dm.pid")"
  done
  PIDS="$PIDS $FRR_PIDS"
  wait_for "FRR vty" 20 timeout 20 vtysh -N "$1" -c 'show bgp summary' || die "FRR bgpd does not answer"
}
