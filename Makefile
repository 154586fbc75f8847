# Tern's front door. `make run` starts a broker on localhost:9092 with data in ./data;
# `make test` runs every test (unit + interop with real Kafka clients).
SHELL := /bin/bash
SHARED ?= ../shared
APT_PACKAGES := liburing-dev liblz4-dev zlib1g-dev libzstd-dev libsnappy-dev etcd-server
TEST_APT_PACKAGES := kcat python3-pip iproute2
PIP_PACKAGES := pytest confluent-kafka kafka-python aiokafka lz4 python-snappy zstandard crc32c
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TERN_DEBUG := .build/debug/tern

.PHONY: cluster run build deps test-deps test unit-test interop-test generate clean bench fuzz fuzz-build fuzz-live tsan asan bench-replication verify

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

test-deps: deps
	@missing=""; for p in $(TEST_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
	@python3 -c "import pytest, confluent_kafka, kafka, aiokafka, lz4, snappy, zstandard, crc32c" 2>/dev/null || \
	  python3 -m pip install -q $(PIP_PACKAGES)

build: deps
	swift build -c release --product tern
	swift build -c release --product TernClockShim

run: build
	mkdir -p data
	.build/release/tern broker --config config/broker.properties

# etcd + three brokers on 127.0.0.1:9092-9094 with data in ./cluster-data; Ctrl-C stops them
# (controlled shutdown), and running it again brings the same cluster back.
cluster: build
	scripts/cluster.sh

# Produce throughput and latency, RF=1 against RF=3 (acks=1 and acks=all), on a fresh 3-broker cluster.
bench-replication: build
	scripts/bench-replication.sh

# The long fault-injection run (CI runs a 60 s one among the interop tests): etcd + 3 brokers,
# kill -9, SIGSTOP, etcd outages, wall-clock jumps, and as root full disks and network partitions,
# VERIFY_SECONDS of the queue, txn and groups workloads; report in verify.html.
VERIFY_SECONDS ?= 300
verify: build
	.build/release/tern verify --local-cluster 3 --workload queue,txn,groups --nemesis kill,pause,etcd,clock$$([ "$$(id -u)" = 0 ] && echo ,disk-full,partition) \
	  --duration $(VERIFY_SECONDS) --report verify.html --json verify.json

unit-test: deps
	swift build --build-tests
	swift test --skip-build
	.build/debug/tern-fuzz request Tests/Fuzz/corpus/request
	.build/debug/tern-fuzz batch Tests/Fuzz/corpus/batch
	.build/debug/tern-fuzz segment Tests/Fuzz/corpus/segment
	.build/debug/tern-fuzz response Tests/Fuzz/corpus/response
	.build/debug/tern-fuzz broker Tests/Fuzz/regressions/broker

interop-test: test-deps
	swift build --product tern
	swift build --product tern-fuzz
	swift build --product TernClockShim
	TERN_BIN=$(CURDIR)/$(TERN_DEBUG) python3 -m pytest -q Tests/Interop

test: test-deps unit-test interop-test

# The unit tests under ThreadSanitizer and AddressSanitizer (own build folders; CI runs both).
tsan: deps
	swift build --build-tests --sanitize=thread --scratch-path .build-tsan
	swift test --skip-build --sanitize=thread --scratch-path .build-tsan

# Leak detection is off: event loop groups and XCTest keep process-lifetime allocations that
# LeakSanitizer reports; memory errors (overflows, use after free) still fail the run.
asan: deps
	swift build --build-tests --sanitize=address --scratch-path .build-asan
	ASAN_OPTIONS=detect_leaks=0 swift test --skip-build --sanitize=address --scratch-path .build-asan

# libFuzzer (Sources/tern-fuzz) over request framing + every request decoder, produced-batch
# validation, log recovery, every response decoder with a follower's and the client's record
# handling, and a live in-process broker handling generated request sequences (`broker`, with
# topics, groups and a transaction in place); seeded from Tests/Fuzz/corpus (captured from real
# clients) and the broker regressions; each target runs FUZZ_SECONDS. New corpus entries stay in
# .build-fuzz/work, findings fail the run. The broker target keeps a broker (and its growing state)
# across inputs on purpose, so leak detection is off for it.
FUZZ_SECONDS ?= 60
FUZZ_BIN := .build-fuzz/debug/tern-fuzz
fuzz-build: deps
	set -o pipefail; swift build --product tern-fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address \
	  -Xswiftc -DTERN_FUZZING -Xcc -fsanitize=fuzzer-no-link,address 2>&1 | grep -v "Cannot export local symbol"

fuzz: fuzz-build
	python3 Tests/Fuzz/broker_seeds.py Tests/Fuzz/corpus/request .build-fuzz/seeds/broker
	cp Tests/Fuzz/regressions/broker/* .build-fuzz/seeds/broker/
	@for t in request batch segment response broker; do \
	  mkdir -p .build-fuzz/work/$$t .build-fuzz/findings; \
	  seeds=Tests/Fuzz/corpus/$$t; leaks=1; \
	  if [ $$t = broker ]; then seeds=.build-fuzz/seeds/broker; leaks=0; fi; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=$$leaks TERN_FUZZ_TARGET=$$t $(FUZZ_BIN) .build-fuzz/work/$$t $$seeds -max_total_time=$(FUZZ_SECONDS) -detect_leaks=$$leaks \
	    -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 -artifact_prefix=.build-fuzz/findings/$$t- 2>&1 \
	    | grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|ERROR|SUMMARY|Test unit written" || true; \
	  if ls .build-fuzz/findings/$$t-* >/dev/null 2>&1; then echo "fuzz $$t: finding in .build-fuzz/findings"; exit 1; fi; \
	done

# Long live fuzzing (the issue's 1 000 000 cases against a single broker, 200 000 against a broker
# of a 3-broker cluster) with a new seed each run, on the release build; CI runs a short slice
# among the interop tests. A finding leaves the last cases under the test's temporary root.
FUZZ_LIVE_CASES ?= 1000000
FUZZ_LIVE_CLUSTER_CASES ?= 200000
# The brokers are the release build; the driver is the debug tern-fuzz (its speed does not
# matter: it only writes requests).
fuzz-live: build test-deps
	swift build --product tern-fuzz
	TERN_BIN=$(CURDIR)/.build/release/tern TERN_FUZZ_BIN=$(CURDIR)/.build/debug/tern-fuzz \
	  TERN_FUZZ_LIVE_CASES=$(FUZZ_LIVE_CASES) TERN_FUZZ_LIVE_CLUSTER_CASES=$(FUZZ_LIVE_CLUSTER_CASES) \
	  TERN_FUZZ_LIVE_SEED=$${TERN_FUZZ_LIVE_SEED:-$$(date +%s)} python3 -m pytest -s -q Tests/Interop/test_fuzz_live.py

# Regenerates the protocol codecs from Kafka's JSON schemas (needs ../shared beside the checkout).
generate:
	swift run tern-protocol-gen $(SHARED)/kafka-protocol/messages Sources/TernProtocol/Generated Tests/TernProtocolTests/Generated Sources/tern-fuzz/Generated

clean:
	rm -rf .build

# Log append/fetch benchmarks (ordo-one/benchmark, own package in Benchmarks/), preceded by dd on
# the same directory so results can be read as ratios of the disk's bandwidth in the same run.
bench: deps
	mkdir -p Benchmarks/.bench-data
	@echo "== dd baseline (2 GiB, 1 MiB blocks, fdatasync) =="
	dd if=/dev/zero of=Benchmarks/.bench-data/dd.bin bs=1M count=2048 conv=fdatasync 2>&1 | tail -1
	rm -f Benchmarks/.bench-data/dd.bin
	cd Benchmarks && TERN_BENCH_DIR=$(CURDIR)/Benchmarks/.bench-data swift package --allow-writing-to-package-directory benchmark
