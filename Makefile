# podbgp: build, test, benchmark.
#
#   make test    every test of the workspace (installs the Debian packages it needs first)
#   make bench   the codec benchmarks
#   make fuzz    fuzz the message decoder (FUZZ_SECONDS, default 300)
#   make vectors re-capture the wire test vectors from FRR, BIRD and GoBGP (root)

CARGO ?= cargo
FUZZ_SECONDS ?= 300
# Debian packages the tests and tools run: the real peers and the kernel tools.
DEBIAN_PACKAGES := frr bird2 gobgpd nftables iproute2 tcpdump python3

.PHONY: all build deps test lint unit bench fuzz vectors

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

test: deps lint unit

bench:
	$(CARGO) bench -p bgp --bench wire

fuzz:
	cd bgp/fuzz && python3 seed.py
	cd bgp && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run decode -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

vectors: deps
	bgp/tests/vectors/capture/capture.sh
