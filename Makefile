# certify: build, test, benchmark, demo and model training.
# `make test` is what CI runs (.ci/run): it installs what it needs first.

GO      ?= go
PKGS    := ./...
# Debian packages (installed by `make deps`, which demo and test run first): OpenBLAS (the default BLAS) and COIN-OR CLP (the LP solver); `-tags
# purego` builds without either;
# the ONNX backend conformance suite,
# python3-onnx for onnx.checker on exported models, and Chromium, in which the
# tests open the HTML report (headless).
APT_PKGS := libopenblas-dev coinor-libclp-dev pkg-config libonnx-testdata python3-onnx chromium
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build test deps vet bench demo models zoo fuzz vnncomp clean

all: build

# -buildvcs=auto: the reports name the git revision certify was built from (tool),
# whatever GOFLAGS says.
build:
	$(GO) build -buildvcs=auto -o bin/ ./cmd/...

# deps installs the Debian packages above when any is missing, and fetches Go modules.
deps:
	@missing=""; for p in $(APT_PKGS); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(GO) mod download

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# CERTIFY_REQUIRE_BROWSER: the HTML report's browser tests fail, not skip, without
# Chromium.
test: deps vet
	CERTIFY_REQUIRE_BROWSER=1 $(GO) test -count=1 -timeout 20m $(PKGS)

bench:
	$(GO) test -run XXX -bench . -benchtime 2s ./nets/ ./bounds/ ./attacks/

demo: deps build
	./bin/certify --radius 0.02 -n 100 --methods ibp,crown,alpha-crown --attacks default testdata/mnist_mlp.onnx

# vnncomp runs every VNN-COMP instance of ../shared/benchmarks/vnncomp with a
# per-instance timeout and prints solved / wrong (must be 0) per family beside the
# best published tool.
VNN_TIMEOUT ?= 60s
vnncomp:
	$(GO) run ./cmd/vnncomp --timeout $(VNN_TIMEOUT)

# models re-trains the shipped models and the defense zoo (testdata/zoo/)
# reproducibly (same seed, same bytes); MODELS picks some of them, e.g.
# `make models MODELS=mnist_cnn_noise025,mnist_cnn_noise050` or MODELS=pgd_at,zoo_wrappers.
MODELS ?=
models:
	$(GO) run ./cmd/models $(if $(MODELS),--models $(MODELS))

# zoo evaluates every defense of testdata/zoo/ (train them with `make models`) on
# the shipped 1000 test images and writes testdata/zoo.md and testdata/zoo.json.
zoo:
	$(GO) run ./cmd/zoo

# fuzz runs each parser fuzz target for FUZZTIME.
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run XXX -fuzz FuzzDecodeONNX -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./nets/
	$(GO) test -run XXX -fuzz FuzzDecodeNPY -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./nets/
	$(GO) test -run XXX -fuzz FuzzDecodeIDX -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./nets/
	$(GO) test -run XXX -fuzz FuzzParseRadii -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./cmd/certify/
	$(GO) test -run XXX -fuzz FuzzParseShard -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./cmd/certify/

clean:
	rm -rf bin/
