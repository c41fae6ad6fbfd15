# The two commands of the README's quick start, and the pieces they are made of.
.PHONY: setup up down reset run lint test lock

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

# Writes requirements.lock, the exact version and hashes of every Python package .venv gets:
# the project's dependencies, all its extras, the `setup` group and the build backend, for
# CPython 3.11 on Linux x86_64, wheels only. Versions already locked stay unless pyproject.toml
# rules them out; LOCK_ARGS=--upgrade (or "--upgrade-package NAME") moves to the newest allowed.
LOCK_ARGS ?=
lock: setup
	.venv/bin/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | .venv/bin/uv pip compile --quiet --generate-hashes --all-extras --group setup \
	    --python-version 3.11 --python-platform x86_64-manylinux_2_28 --only-binary :all: --emit-build-options \
	    --custom-compile-command "make lock" $(LOCK_ARGS) -o requirements.lock pyproject.toml -
