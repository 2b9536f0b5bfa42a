# BEDS — the commands the README names. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
comma := ,
VENV ?= .venv
PY := $(VENV)/bin/python
BEDS := $(VENV)/bin/beds
ROLE ?= appServer

# Local secrets live in .env (git-ignored), generated on first use; never in the repo.
-include .env
export

.PHONY: install services schema run cluster run-postgres test unit check lint docs bench clean

.env:
	@echo "BEDS_MYSQL_PASSWORD=$$(python3 -c 'import secrets; print(secrets.token_hex(16))')" > $@
	@echo "BEDS_PG_PASSWORD=$$(python3 -c 'import secrets; print(secrets.token_hex(16))')" >> $@
	@echo "created .env with random passwords for the application accounts"

# Everything CI and `make install` put in the venv comes from requirements.lock (exact versions,
# hashes checked), so a new release upstream cannot change a clean clone. pyproject.toml keeps the
# compatible ranges for people who install BEDS as a library.
LOCK := requirements.lock
EXTRAS := dev,postgres,mongodb,dynamodb,otel,docs

$(VENV)/.installed: pyproject.toml $(LOCK)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

install: $(VENV)/.installed

# `make upgrade-deps`: re-resolve the lock to the newest releases the ranges in pyproject.toml allow,
# show what moved, install it and run the tests. Commit requirements.lock only if they pass.
.PHONY: upgrade-deps
upgrade-deps: install
	@cp $(LOCK) $(LOCK).old
	$(VENV)/bin/uv pip compile pyproject.toml $(addprefix --extra ,$(subst $(comma), ,$(EXTRAS))) \
	  --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  --upgrade -q -o $(LOCK)
	$(VENV)/bin/uv pip compile bench/requirements.txt -c $(LOCK) --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --upgrade -q \
	  -o bench/requirements.lock
	@diff <(grep -E '^[a-z0-9_.-]+==' $(LOCK).old) <(grep -E '^[a-z0-9_.-]+==' $(LOCK)) \
	  | sed -n 's/^> /upgraded: /p' || true
	$(MAKE) image-lock
	@rm -f $(LOCK).old $(VENV)/.installed
	$(MAKE) install test

# The container image installs only the runtime dependencies and the engine/otel extras, at the
# versions requirements.lock pins (-c): no test or lint tool enters the image. Re-run after any
# change of requirements.lock (upgrade-deps does); tests/unit/test_container.py checks the two agree.
IMAGE_LOCK := requirements-image.lock
.PHONY: image-lock
image-lock:
	$(VENV)/bin/uv pip compile pyproject.toml --extra postgres --extra mongodb --extra dynamodb \
	  --extra otel -c $(LOCK) --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu -q -o $(IMAGE_LOCK)

services:            ## start RabbitMQ / MariaDB / PostgreSQL on localhost when they are not up
	@bash .ci/services

schema: install services .env
	$(BEDS) schema apply --datasource main
	$(BEDS) schema apply --datasource cool

run: schema
	$(BEDS) --role $(ROLE)

# `make cluster`: the four roles on this machine (app1, adm1, seg1, ter1), each with its own HTTP
# port (9464-9467); the dashboard on 127.0.0.1:8480. Ctrl-C stops them all (each drains).
cluster: schema
	@trap 'kill -TERM $$(jobs -p) 2>/dev/null; wait' INT TERM; \
	BEDS_NODE_NAME=app1 BEDS_HTTP_LISTEN=127.0.0.1:9464 $(BEDS) --role appServer & \
	BEDS_NODE_NAME=adm1 BEDS_HTTP_LISTEN=127.0.0.1:9465 $(BEDS) --role admin & \
	BEDS_NODE_NAME=seg1 BEDS_HTTP_LISTEN=127.0.0.1:9466 $(BEDS) --role segundo & \
	BEDS_NODE_NAME=ter1 BEDS_HTTP_LISTEN=127.0.0.1:9467 $(BEDS) --role tercero & \
	wait

# `make scale-lab`: on loopback, in the background: a 3-node RabbitMQ cluster, a MariaDB primary
# + GTID replica, a PostgreSQL primary + streaming standby, and two appServer nodes over them
# (tests/support/scale_lab.py; docs/scale.md). It prints what runs where and how to call it;
# `make scale-lab-stop` ends all of it (pids in .scale-lab/state.json).
.PHONY: scale-lab scale-lab-stop
scale-lab: install
	$(PY) -m tests.support.scale_lab start

scale-lab-stop:
	$(PY) -m tests.support.scale_lab stop

run-postgres: install services .env   ## the same node and templates on PostgreSQL
	$(BEDS) schema apply --datasource main --env config/postgres.toml
	$(BEDS) --role $(ROLE) --env config/postgres.toml

test: check docs services .env  ## `make check`, the docs site (strict), then unit, integration, contract and e2e tests
	$(PY) -m pytest tests -q $(PYTEST_ARGS)

# `make unit`: tests/unit alone, in seconds, with no service running (no RabbitMQ, no database;
# tests/unit/test_no_services.py keeps it so). `make check`: every static check, no service
# either: ruff, mypy strict over beds and tests, the container files and the editor schemas.
unit: install
	$(PY) -m pytest tests/unit -q -m "not slow" $(PYTEST_ARGS)

check: lint container-check editor-check

# `make docs`: the documentation site (mkdocs + material, mkdocs.yml) into site/ (git-ignored).
# --strict: a link to a missing page, file or anchor, or a generated reference block that cannot
# be built (docs/_hooks.py), fails the build and so `make test`. Serve while writing:
# .venv/bin/mkdocs serve
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# JSON Schemas of a template and of the config, generated from the loaders (beds/jsonschemas.py),
# for editors (taplo.toml, docs/editor.md). tests/unit/test_jsonschemas.py fails when they are stale.
.PHONY: jsonschema editor-check
jsonschema: install
	$(PY) -m beds.jsonschemas docs/schemas

# taplo checks every template and config file against those schemas, as the editor would.
editor-check: install
	$(VENV)/bin/taplo lint --no-auto-config --config taplo.toml

# `make container-test`: build the image with podman and run it against the local RabbitMQ and
# MariaDB (tests/container; minutes, so not part of `make test`). On our machines Docker Hub is
# unreachable and the sandbox has no systemd cgroups or CAP_SYS_RESOURCE:
#   make container-test PODMAN="podman --storage-driver vfs --cgroup-manager cgroupfs --runtime runc" \
#        PYTHON_IMAGE=localhost/beds-python-standin:bookworm
# after `bash tests/container/standin-base.sh "$$PODMAN"` imported a Debian bookworm python3 base
# (docs/container.md says what was run here).
PODMAN ?= podman
PYTHON_IMAGE ?= python:3.11-slim-bookworm
.PHONY: container-test
container-test: install services .env
	BEDS_CONTAINER_TEST=1 BEDS_PODMAN="$(PODMAN)" BEDS_PYTHON_IMAGE="$(PYTHON_IMAGE)" \
	  $(PY) -m pytest tests/container -q $(PYTEST_ARGS)

# No Docker engine runs on our machines: the container files are checked statically (seconds).
# hadolint lints the Dockerfile; check-jsonschema validates compose.yaml against the Compose
# Specification's schema (vendored in the package, no download).
.PHONY: container-check
container-check: install
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec compose.yaml

lint: install
	$(VENV)/bin/ruff check beds tests docs $(wildcard bench)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site

# -- benchmarks: bench/ (load generator, peer servers, results in bench/results/) ---------------
# `make bench`: BEDS vs hand-written aio-pika (quorum + confirms, and classic without confirms) vs
# FastStream, CPU-µs per request per process, < 10 min; PROFILE=1 adds a py-spy profile of BEDS
# at 16 in flight (libraries-vs-BEDS split in bench/results/profile.md; `python -m bench.profile`
# re-summarises a raw profile); BENCH_ARGS passes options (python -m bench.run --help).
# `make soak`: steady load on film.fetch for SOAK_SECONDS (default 600), RSS and fds sampled.
.PHONY: soak
SOAK_SECONDS ?= 600

$(VENV)/.bench-installed: bench/requirements.lock $(VENV)/.installed
	$(PY) -m pip install -q --require-hashes --no-deps -r bench/requirements.lock
	@touch $@

bench: $(VENV)/.bench-installed services
	$(PY) -m bench.run $(if $(PROFILE),--profile) $(BENCH_ARGS)

soak: $(VENV)/.bench-installed services
	$(PY) -m bench.soak --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

# The fault-injection suite (tests/chaos): every scenario against real nodes, RabbitMQ
# and MariaDB, under 15 minutes; the results table goes to tests/chaos/results/latest.md. Without
# BEDS_CHAOS=1 (as in `make test`) only its fast scenarios run. hypothesis drives the fuzzing
# scenario; it is installed here until the dev extra carries it.
.PHONY: chaos
chaos: install services .env
	@$(PY) -c 'import hypothesis' 2>/dev/null || $(PY) -m pip install -q hypothesis
	BEDS_CHAOS=1 $(PY) -m pytest tests/chaos -q $(PYTEST_ARGS)
