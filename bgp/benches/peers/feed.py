#!/usr/bin/env python3
"""A small BGP feeder for benchmarking other BGP daemons.

Opens one iBGP session per source address to a daemon, waits for all of
them to be Established, and then, on command, sends every peer's table
and withdraws one peer's table. Standard library only.

The table is the one of `cargo bench -p bgp --bench rib`: prefix i is
(10.0.0.0 + (i << 8))/24 for i in 0..PREFIXES, the same prefixes from
every peer; peer n (0-based) uses ORIGIN IGP, an AS_PATH of (n % 3 + 1)
ASNs 64512, 64513, ..., MED n, LOCAL_PREF 100, and its own address as
NEXT_HOP. Prefixes are packed PER_UPDATE to an UPDATE (1000 /24s make an
UPDATE of about 4 KB). Every message is encoded before the first
connection is made, so the feeder only copies bytes into sockets.

With --unique, every peer sends prefixes of its own instead: peer n sends
prefixes i = n * PREFIXES to (n + 1) * PREFIXES - 1 of the same sequence,
PEERS * PREFIXES distinct prefixes in all, each with one path (the FIB
benchmark, ../fib). With --feed-when-established the feed starts by itself
the moment every session is Established, as if `feed` had come then.

Commands, one a line on stdin:
  feed          send every peer's UPDATEs, all sessions at once
  withdraw N    send UPDATEs withdrawing all of peer N's prefixes
  close N       close peer N's session instead (NOTIFICATION Cease)
  quit          close every session and exit (also on end of input)

Events, one a line on stdout, each `EVENT UNIX_TIME key=value...`:
  encoded, established, feed-start, feed-sent, withdraw-start,
  withdraw-sent, close, down, error, quit.
"""

import argparse
import errno
import ipaddress
import os
import selectors
import socket
import struct
import sys
import time

MARKER = b"\xff" * 16
OPEN, UPDATE, NOTIFICATION, KEEPALIVE = 1, 2, 3, 4
MAX_MESSAGE = 4096
AS_TRANS = 23456
FIRST_PATH_AS = 64512


def now():
    return time.time()


def event(name, **kv):
    fields = " ".join(f"{k}={v}" for k, v in kv.items())
    sys.stdout.write(f"{name} {now():.6f} {fields}".rstrip() + "\n")
    sys.stdout.flush()


def message(kind, body):
    length = 19 + len(body)
    if length > MAX_MESSAGE:
        raise ValueError(f"message of {length} bytes")
    return MARKER + struct.pack("!HB", length, kind) + body


def open_message(asn, hold, router_id):
    caps = b"".join([
        struct.pack("!BBHBB", 1, 4, 1, 0, 1),  # multiprotocol: IPv4 unicast
        struct.pack("!BB", 2, 0),  # route refresh
        struct.pack("!BBI", 65, 4, asn),  # 4-octet AS number
    ])
    params = struct.pack("!BB", 2, len(caps)) + caps
    my_as = asn if asn <= 0xFFFF else AS_TRANS
    body = struct.pack("!BHH4sB", 4, my_as, hold, router_id.packed, len(params)) + params
    return message(OPEN, body)


KEEPALIVE_MESSAGE = message(KEEPALIVE, b"")
CEASE_SHUTDOWN = message(NOTIFICATION, bytes([6, 2]))


def attribute(flags, code, value):
    if len(value) > 255:
        return struct.pack("!BBH", flags | 0x10, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value


def path_attributes(n, next_hop):
    path = [FIRST_PATH_AS + i for i in range(n % 3 + 1)]
    as_path = struct.pack("!BB", 2, len(path)) + b"".join(struct.pack("!I", a) for a in path)
    return b"".join([
        attribute(0x40, 1, b"\x00"),  # ORIGIN IGP
        attribute(0x40, 2, as_path),  # AS_PATH, one AS_SEQUENCE, 4-octet ASNs
        attribute(0x40, 3, next_hop.packed),  # NEXT_HOP
        attribute(0x80, 4, struct.pack("!I", n)),  # MULTI_EXIT_DISC
        attribute(0x40, 5, struct.pack("!I", 100)),  # LOCAL_PREF
    ])


def prefix_chunks(prefixes, per_update, first=0):
    """The NLRI encoding of prefixes FIRST to FIRST + PREFIXES - 1, PER_UPDATE at a time."""
    chunks = []
    last = first + prefixes
    for start in range(first, last, per_update):
        end = min(start + per_update, last)
        chunks.append(b"".join(
            struct.pack("!B", 24) + struct.pack("!I", 0x0A000000 + (i << 8))[:3]
            for i in range(start, end)))
    return chunks


def announcements(attrs, chunks):
    head = struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs
    return b"".join(message(UPDATE, head + nlri) for nlri in chunks)


def withdrawals(chunks):
    return b"".join(
        message(UPDATE, struct.pack("!H", len(nlri)) + nlri + struct.pack("!H", 0))
        for nlri in chunks)


class Peer:
    def __init__(self, index, local, args):
        self.index = index
        self.local = local
        self.sock = None
        self.state = "Idle"
        self.inbuf = bytearray()
        self.out = []  # memoryviews still to send, in order
        self.pending = 0  # bytes still to send
        self.hold = args.hold
        self.last_sent = 0.0
        self.last_received = 0.0
        self.next_connect = 0.0
        self.received = {OPEN: 0, UPDATE: 0, NOTIFICATION: 0, KEEPALIVE: 0}
        self.feed = b""
        self.withdraw = b""
        self.hold_warned = False

    def queue(self, data):
        if data:
            self.out.append(memoryview(data))
            self.pending += len(data)


class Feeder:
    def __init__(self, args):
        self.args = args
        self.sel = selectors.DefaultSelector()
        first = ipaddress.IPv4Address(args.local)
        self.peers = [Peer(n, first + n, args) for n in range(args.peers)]
        self.daemon = (args.daemon, args.port)
        self.stdin_buf = b""
        self.established_reported = False
        self.feeding = False
        self.withdrawing = None
        self.done = False
        self.status = 0

        t = now()
        if args.unique:
            for p in self.peers:
                chunks = prefix_chunks(args.prefixes, args.per_update, p.index * args.prefixes)
                p.feed = announcements(path_attributes(p.index, p.local), chunks)
                p.withdraw = withdrawals(chunks)
            withdraw_bytes = sum(len(p.withdraw) for p in self.peers)
        else:
            chunks = prefix_chunks(args.prefixes, args.per_update)
            shared = withdrawals(chunks)
            for p in self.peers:
                p.feed = announcements(path_attributes(p.index, p.local), chunks)
                p.withdraw = shared
            withdraw_bytes = len(shared)
        event("encoded", peers=len(self.peers), updates_per_peer=len(chunks),
              feed_bytes=sum(len(p.feed) for p in self.peers),
              withdraw_bytes=withdraw_bytes, seconds=f"{now() - t:.3f}")

    # ---------------------------------------------------------------- sockets
    def connect(self, p):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.bind((str(p.local), 0))
        s.setblocking(False)
        err = s.connect_ex(self.daemon)
        if err not in (0, errno.EINPROGRESS):
            s.close()
            p.next_connect = now() + 0.5
            return
        p.sock = s
        p.state = "Connect"
        self.sel.register(s, selectors.EVENT_WRITE, p)

    def drop(self, p, reason):
        if p.sock is not None:
            try:
                self.sel.unregister(p.sock)
            except (KeyError, ValueError):
                pass
            p.sock.close()
        was = p.state
        p.sock = None
        p.state = "Idle"
        p.out.clear()
        p.pending = 0
        if was in ("OpenConfirm", "Established") or reason.startswith("notification"):
            event("down", peer=p.index, address=p.local, was=was, reason=reason)
            if self.established_reported:
                self.status = 1
        else:
            p.next_connect = now() + 0.5

    def update_interest(self, p):
        if p.sock is None:
            return
        mask = selectors.EVENT_READ
        if p.out or p.state == "Connect":
            mask |= selectors.EVENT_WRITE
        self.sel.modify(p.sock, mask, p)

    def send_some(self, p, budget=262144):
        while p.out and budget > 0:
            view = p.out[0]
            try:
                n = p.sock.send(view[:budget])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self.drop(p, f"send:{e.strerror}")
                return
            p.last_sent = now()
            p.pending -= n
            budget -= n
            if n == len(view):
                p.out.pop(0)
            else:
                p.out[0] = view[n:]
                break
        self.update_interest(p)
        self.check_sent()

    def send_message(self, p, data):
        p.queue(data)
        self.send_some(p)

    # ---------------------------------------------------------------- BGP
    def handle_writable(self, p):
        if p.state == "Connect":
            err = p.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.drop(p, f"connect:{os.strerror(err)}")
                return
            p.state = "OpenSent"
            p.last_received = now()
            self.send_message(p, open_message(self.args.local_as, self.args.hold, p.local))
            return
        self.send_some(p)

    def handle_readable(self, p):
        try:
            data = p.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.drop(p, f"recv:{e.strerror}")
            return
        if not data:
            self.drop(p, "closed by daemon")
            return
        p.last_received = now()
        p.inbuf += data
        while len(p.inbuf) >= 19 and p.sock is not None:
            if p.inbuf[:16] != MARKER:
                self.drop(p, "bad marker")
                return
            length, kind = struct.unpack_from("!HB", p.inbuf, 16)
            if length < 19 or length > 65535:
                self.drop(p, f"bad length {length}")
                return
            if len(p.inbuf) < length:
                break
            body = bytes(p.inbuf[19:length])
            del p.inbuf[:length]
            self.handle_message(p, kind, body)

    def handle_message(self, p, kind, body):
        p.received[kind] = p.received.get(kind, 0) + 1
        if kind == OPEN:
            if p.state != "OpenSent" or len(body) < 10:
                self.drop(p, "unexpected OPEN")
                return
            _version, _as2, hold, _rid, plen = struct.unpack_from("!BHH4sB", body)
            if not self.has_as4(body[10:10 + plen]):
                event("error", peer=p.index, reason="daemon-lacks-4-octet-AS-capability")
                self.drop(p, "no 4-octet AS")
                return
            p.hold = min(self.args.hold, hold)
            p.state = "OpenConfirm"
            self.send_message(p, KEEPALIVE_MESSAGE)
        elif kind == KEEPALIVE:
            if p.state == "OpenConfirm":
                p.state = "Established"
                self.check_established()
            elif p.state == "Established" and now() - p.last_sent > 1.0 and not p.out:
                # answer, so the daemon hears from us even while we are idle
                self.send_message(p, KEEPALIVE_MESSAGE)
        elif kind == NOTIFICATION:
            code = body[0] if body else 0
            sub = body[1] if len(body) > 1 else 0
            self.drop(p, f"notification:{code}/{sub}")
        elif kind == UPDATE:
            pass  # iBGP: the daemon has nothing to send us but End-of-RIB
        else:
            self.drop(p, f"unknown message type {kind}")

    @staticmethod
    def has_as4(params):
        i = 0
        while i + 2 <= len(params):
            ptype, plen = params[i], params[i + 1]
            value = params[i + 2:i + 2 + plen]
            i += 2 + plen
            if ptype != 2:
                continue
            j = 0
            while j + 2 <= len(value):
                code, clen = value[j], value[j + 1]
                if code == 65:
                    return True
                j += 2 + clen
        return False

    def check_established(self):
        if self.established_reported:
            return
        if all(p.state == "Established" for p in self.peers):
            self.established_reported = True
            event("established", peers=len(self.peers))
            if self.args.feed_when_established:
                self.command("feed")

    def check_sent(self):
        if self.feeding and all(p.pending == 0 for p in self.peers):
            self.feeding = False
            event("feed-sent", bytes=sum(len(p.feed) for p in self.peers))
        if self.withdrawing is not None and self.peers[self.withdrawing].pending == 0:
            event("withdraw-sent", peer=self.withdrawing,
                  bytes=len(self.peers[self.withdrawing].withdraw))
            self.withdrawing = None

    def keepalives(self):
        t = now()
        for p in self.peers:
            if p.state != "Established" or p.hold == 0:
                continue
            if t - p.last_sent >= p.hold / 3 and not p.out:
                self.send_message(p, KEEPALIVE_MESSAGE)
            if t - p.last_received > p.hold and not p.hold_warned:
                # Tell, but keep the session: the run decides what to do.
                p.hold_warned = True
                event("error", peer=p.index, reason="nothing-heard-for-hold-time")

    # ---------------------------------------------------------------- commands
    def command(self, line):
        words = line.split()
        if not words:
            return
        cmd, arg = words[0], (words[1] if len(words) > 1 else None)
        if cmd == "feed":
            if not self.established_reported:
                event("error", reason="feed-before-established")
                return
            self.feeding = True
            event("feed-start", peers=len(self.peers))
            for p in self.peers:
                p.queue(p.feed)
            for p in self.peers:
                self.send_some(p)
        elif cmd in ("withdraw", "close"):
            try:
                p = self.peers[int(arg)]
            except (TypeError, ValueError, IndexError):
                event("error", reason=f"bad-peer:{arg}")
                return
            if p.state != "Established":
                event("error", reason=f"peer-{p.index}-not-established")
                return
            if cmd == "withdraw":
                self.withdrawing = p.index
                event("withdraw-start", peer=p.index, method="withdrawn-routes-in-updates",
                      prefixes=self.args.prefixes)
                self.send_message(p, p.withdraw)
            else:
                event("close", peer=p.index, method="session-close-with-cease")
                self.close_peer(p)
        elif cmd == "quit":
            self.quit()
        else:
            event("error", reason=f"unknown-command:{cmd}")

    def close_peer(self, p):
        if p.sock is None:
            return
        p.sock.setblocking(True)
        p.sock.settimeout(2)
        try:
            for v in p.out:
                p.sock.sendall(v)
            p.sock.sendall(CEASE_SHUTDOWN)
        except OSError:
            pass
        p.out.clear()
        p.pending = 0
        try:
            self.sel.unregister(p.sock)
        except (KeyError, ValueError):
            pass
        p.sock.close()
        p.sock = None
        p.state = "Closed"

    def quit(self):
        for p in self.peers:
            if p.sock is not None and p.state in ("OpenConfirm", "Established"):
                p.out.clear()
                self.close_peer(p)
            elif p.sock is not None:
                self.sel.unregister(p.sock)
                p.sock.close()
                p.sock = None
        event("quit", status=self.status)
        self.done = True

    def handle_stdin(self):
        try:
            data = os.read(sys.stdin.fileno(), 4096)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            self.sel.unregister(sys.stdin.fileno())
            self.quit()
            return
        self.stdin_buf += data
        while b"\n" in self.stdin_buf and not self.done:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            self.command(line.decode(errors="replace"))

    # ---------------------------------------------------------------- main loop
    def run(self):
        os.set_blocking(sys.stdin.fileno(), False)
        self.sel.register(sys.stdin.fileno(), selectors.EVENT_READ, None)
        start = now()
        deadline = start + self.args.max_seconds
        while not self.done:
            t = now()
            if t > deadline:
                event("error", reason="max-seconds-reached")
                self.status = 1
                self.quit()
                break
            if not self.established_reported and t - start > self.args.connect_timeout:
                states = ",".join(p.state for p in self.peers)
                event("error", reason="not-established-in-time", states=states)
                self.status = 1
                self.quit()
                break
            for p in self.peers:
                if p.sock is None and p.state == "Idle" and t >= p.next_connect \
                        and not self.established_reported:
                    self.connect(p)
            for key, mask in self.sel.select(timeout=0.2):
                p = key.data
                if p is None:
                    self.handle_stdin()
                    if self.done:
                        break
                    continue
                if p.sock is None:
                    continue
                if mask & selectors.EVENT_READ:
                    self.handle_readable(p)
                if p.sock is not None and mask & selectors.EVENT_WRITE:
                    self.handle_writable(p)
            self.keepalives()
        return self.status


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--daemon", required=True, help="address of the daemon under test")
    ap.add_argument("--port", type=int, default=179, help="the daemon's BGP port (179)")
    ap.add_argument("--local", required=True,
                    help="first source address; peer n uses this address + n")
    ap.add_argument("--peers", type=int, default=10, help="sessions, one per address (10)")
    ap.add_argument("--local-as", type=int, default=65000,
                    help="our AS and the daemon's (iBGP; 65000); not one of the paths' "
                         "ASNs 64512-64514, or the daemon drops the paths as loops")
    ap.add_argument("--prefixes", type=int, default=100000, help="prefixes per peer (100000)")
    ap.add_argument("--unique", action="store_true",
                    help="every peer sends prefixes of its own (peer n: n * PREFIXES onwards), "
                         "not the same PREFIXES as every other peer")
    ap.add_argument("--feed-when-established", action="store_true",
                    help="start the feed as soon as every session is Established")
    ap.add_argument("--per-update", type=int, default=1000, help="prefixes per UPDATE (1000)")
    ap.add_argument("--hold", type=int, default=90, help="hold time we offer (90 s)")
    ap.add_argument("--connect-timeout", type=float, default=30.0,
                    help="seconds for all sessions to reach Established (30)")
    ap.add_argument("--max-seconds", type=float, default=600.0,
                    help="the feeder exits after this many seconds whatever happens (600)")
    args = ap.parse_args()
    if not 0 < args.prefixes <= (0xFFFFFFFF - 0x0A000000) >> 8:
        ap.error("--prefixes out of range")
    if args.unique and args.peers * args.prefixes > ((0xFFFFFFFF - 0x0A000000) >> 8) + 1:
        ap.error("--unique: PEERS * PREFIXES /24s from 10.0.0.0 run past 255.255.255.0")
    if not 0 < args.per_update <= 1000:
        ap.error("--per-update must be 1..1000 (an UPDATE holds at most 4096 bytes)")
    if not 0 < args.peers <= 200:
        ap.error("--peers must be 1..200")
    sys.exit(Feeder(args).run())


if __name__ == "__main__":
    main()
