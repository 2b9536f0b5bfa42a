# BEDS — the commands the README names. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BEDS := $(VENV)/bin/beds
ROLE ?= appServer

# Local secrets live in .env (git-ignored), generated on first use; never in the repo.
-include .env
export

.PHONY: install services schema run run-postgres test lint bench clean

.env:
	@echo "BEDS_MYSQL_PASSWORD=$$(python3 -c 'import secrets; print(secrets.token_hex(16))')" > $@
	@echo "BEDS_PG_PASSWORD=$$(python3 -c 'import secrets; print(secrets.token_hex(16))')" >> $@
	@echo "created .env with random passwords for the application accounts"

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,postgres]'
	@touch $@

install: $(VENV)/.installed

services:            ## start RabbitMQ / MariaDB / PostgreSQL on localhost when they are not up
	@bash .ci/services

schema: install services .env
	$(BEDS) schema apply --datasource main

run: schema
	$(BEDS) --role $(ROLE)

run-postgres: install services .env   ## the same node and templates on PostgreSQL
	$(BEDS) schema apply --datasource main --env config/postgres.toml
	$(BEDS) --role $(ROLE) --env config/postgres.toml

test: lint services .env       ## lint + type check, then unit, integration, contract and e2e tests
	$(PY) -m pytest tests -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check beds tests $(wildcard bench)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
