# The two commands of the README's quick start, and the pieces they are made of.
.PHONY: setup up down reset run lint test

setup:
	./scripts/setup.sh

up: setup
	.venv/bin/devstack up

down:
	.venv/bin/devstack down

reset:
	.venv/bin/devstack reset

run: up
	.venv/bin/pipeline run

# Lint, format and types: fast, so they run before the suite and fail it first.
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: export SETUP_TEST_TOOLS = 1
test: lint up
	.venv/bin/pytest
