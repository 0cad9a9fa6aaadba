# podbgp: build, test, benchmark.
#
#   make test    every test of the workspace, podbgp against live FRR, BIRD and GoBGP in
#                network namespaces, and the codec on messages they send (installs the
#                Debian packages it needs first; root; PODBGP_INTEROP_OPT_OUT=1 skips the
#                parts that need root and the peers)
#   make bench   the codec benchmarks (podbgp's and GoBGP's on the same messages), the RIB's,
#                podbgp, BIRD, FRR and GoBGP loading the same table over TCP and passing a
#                million routes on to ten receivers, and podbgp,
#                BIRD and FRR installing a million routes into the kernel beside the
#                netlink limit, and convergence in the lab: p50/p99/max from a change on one
#                node to every other kernel, and BFD's idle cost beside BIRD's (root)
#   make fuzz    fuzz the message decoder (FUZZ_SECONDS, default 300)
#   make vectors re-capture the wire test vectors from FRR, BIRD and GoBGP (root)
#   make lab     two clusters, a route server, a VM and pods in network namespaces, joined by
#                podbgp; prints a node's view and the connectivity matrix, and stays up
#                (installs the Debian packages it needs first; root)
#   make lab-down  remove the lab
#   make scale   podbgp at 10 to 1,000 nodes in namespaces, full mesh and reflectors
#                (podbgp's and BIRD's): convergence, joins, Ceases, deaths, group
#                churn, RSS and CPU per size (root; SIZES, REFLECTORS)
#   make soak    the churn soak: twenty peers flapping (Ceases, graceful restarts) while
#                100,000 prefixes come and go in waves; kernel and RIB checked at every
#                quiescent point, RSS, descriptors and tasks sampled each second
#                (root; SOAK_SECONDS, default 600; SOAK_SEED to repeat a run)

CARGO ?= cargo
FUZZ_SECONDS ?= 300
# Debian packages the tests and tools run: the real peers and the kernel tools.
DEBIAN_PACKAGES := frr bird2 gobgpd nftables iproute2 tcpdump python3 bgpdump

.PHONY: all build deps test lint unit interop-wire bench fuzz vectors lab lab-down scale soak

all: build

build:
	$(CARGO) build --workspace --release

# Install whatever of DEBIAN_PACKAGES is missing (needs root and apt).
deps:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

# The codec on messages the installed FRR, BIRD and GoBGP send today: capture
# a fresh set in network namespaces and run the vector tests on it.
interop-wire:
	@if [ "$$(id -u)" != 0 ]; then \
	  if [ "$$PODBGP_INTEROP_OPT_OUT" = 1 ]; then echo "interop-wire: skipped (PODBGP_INTEROP_OPT_OUT=1)"; exit 0; fi; \
	  echo "interop-wire: needs root for network namespaces (PODBGP_INTEROP_OPT_OUT=1 skips it)"; exit 1; \
	fi; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "capturing from FRR, BIRD and GoBGP (about a minute)"; \
	if ! VECTORS_OUT=$$tmp/vectors bgp/tests/vectors/capture/capture.sh >$$tmp/capture.log 2>&1; then \
	  tail -n 40 $$tmp/capture.log; exit 1; \
	fi; \
	PODBGP_VECTORS=$$tmp/vectors $(CARGO) test -p bgp --test vectors

test: deps lint unit interop-wire

lab: deps
	$(CARGO) build --release -p agent --bin podbgp --example lab
	target/release/examples/lab up

SIZES ?= 10,50,100,250,500,1000
REFLECTORS ?= 0,2,4
scale: deps
	$(CARGO) build --release -p agent --bin podbgp --example scale
	target/release/examples/scale $(SIZES) $(REFLECTORS)

SOAK_SECONDS ?= 600
SOAK_SEED ?=
soak: deps
	$(CARGO) build --release -p agent --bin podbgp --example soak
	target/release/examples/soak $(SOAK_SECONDS) $(SOAK_SEED)

lab-down:
	@if [ -x target/release/examples/lab ]; then target/release/examples/lab down; \
	else $(CARGO) run --release -p agent --example lab -- down; fi

# podbgp's codec, then GoBGP's on the same bytes (Debian's golang-go and
# golang-github-osrg-gobgp-dev, installed by the script if missing).
bench:
	$(CARGO) bench -p bgp --bench wire
	sh bgp/benches/gobgp/run.sh
	$(CARGO) bench -p bgp --bench rib
	$(CARGO) build --release -p agent
	$(CARGO) build --release -p agent --example netlink_limit
	$(CARGO) build --release -p bgp --example sink
	@if [ "$$(id -u)" = 0 ]; then sh bgp/benches/peers/run.sh && sh bgp/benches/fanout/run.sh && \
	  sh bgp/benches/fib/run.sh && \
	  $(CARGO) bench -p agent --bench convergence && $(CARGO) bench -p agent --bench bfd_idle; \
	else echo "bench: the daemons in network namespaces need root (bgp/benches/peers/run.sh, bgp/benches/fanout/run.sh, bgp/benches/fib/run.sh, the convergence and bfd_idle benches)"; exit 1; fi

fuzz:
	cd bgp/fuzz && python3 seed.py
	cd bgp && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run decode -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

vectors: deps
	bgp/tests/vectors/capture/capture.sh
