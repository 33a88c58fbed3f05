# InFuSe grant ledger. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/infuse
PKGS  := ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/infuse
	$(GO) build -o $(BIN) ./cmd/infuse

.PHONY: run
run: build ## run the service on an embedded PostgreSQL in ./var (demo data on first start)
	./$(BIN) demo --if-empty
	./$(BIN) serve

.PHONY: test
test: ## every test, with the race detector, against a private PostgreSQL
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# The web's latency and the ledger's posting rates are measured first: for some 30 s after a
# benchmark that churns gigabytes (the 1,000,000-row import, the 2,000,000-entry claim) this VM
# runs slower, which shows in the tail of a latency measured over 5 s and in a rate measured
# over a few seconds, not in the bulk figures.
.PHONY: bench
BENCH := INFUSE_BENCH_DURABLE=1 $(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 60m
FIRST := ./web ./ledger
bench: ## the speed and memory targets, measured on a durable (fsync on) local PostgreSQL, one package at a time
	@echo "machine: $$(nproc) cores; load average before the run (1, 5, 15 min): $$(cut -d' ' -f1-3 /proc/loadavg)"
	@status=0; \
	$(BENCH) $(FIRST) || status=1; \
	$(BENCH) $$($(GO) list $(PKGS) | grep -v -x -F $(addprefix -e $(shell $(GO) list -m)/,$(FIRST:./%=%))) || status=1; \
	exit $$status

.PHONY: soak
soak: ## the long resilience runs: kill -9 crash tests and the load test on infuse serve (INFUSE_LOAD_SECONDS, default 60)
	INFUSE_SOAK=1 $(GO) test -count=1 -timeout 60m -run 'TestCrash|TestLoad' ./cmd/infuse

FUZZTIME ?= 20s

.PHONY: fuzz
fuzz: ## run every fuzz target (found in the sources) for FUZZTIME each (default 20s)
	@failed=; n=0; for pkg in $$($(GO) list -f '{{.ImportPath}}:{{.Dir}}' $(PKGS)); do dir=$${pkg#*:}; pkg=$${pkg%%:*}; \
	  for t in $$(cat $$dir/*_test.go 2>/dev/null | sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p'); do \
	    n=$$((n+1)); echo "== $$t ($$pkg)"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg || failed="$$failed $$t"; done; done; \
	if [ -n "$$failed" ]; then echo "fuzz targets that failed:$$failed"; exit 1; fi; echo "$$n fuzz targets ran for $(FUZZTIME) each"

.PHONY: reliability
reliability: ## run the resilience tests and regenerate RELIABILITY.md from their figures
	@mkdir -p var && rm -f var/reliability.jsonl
	INFUSE_SOAK=1 INFUSE_RELIABILITY_OUT=$(CURDIR)/var/reliability.jsonl $(GO) test -p 1 -count=1 -timeout 60m \
	  -run 'Hostile|Injection|Reference|Crash|Load|AllOrNothing|BackupRoundTrip' ./web ./claims ./match ./internal/backup ./cmd/infuse
	$(GO) run ./internal/reliability/render -in var/reliability.jsonl -out RELIABILITY.md

.PHONY: clean
clean: ## remove build output (keeps ./var, the embedded database)
	rm -rf bin
