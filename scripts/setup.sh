#!/usr/bin/env bash
# Installs everything the project needs on a Debian/Ubuntu machine, idempotently:
# OS packages (PostgreSQL, a Java 17 JDK, Maven, openssl) when missing and the Python
# virtualenv .venv with exactly the packages of requirements.lock and the project. With
# SETUP_TEST_TOOLS=1 (what `make test` sets) also the tools only the tests use: Go and the
# Pulumi CLI built from the Go module proxy once per version (scripts/pulumi-cli.sh), and
# Debian's Chromium.
# Kafka and OpenSearch are fetched from Maven Central by `devstack up` and cached in ~/.m2.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v openssl >/dev/null || missing+=(openssl)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# A JDK, not only a runtime: a test runs a single-file Java program (Kafka's own client).
command -v javac >/dev/null || compgen -G "/usr/lib/jvm/java-17-openjdk*/bin/javac" >/dev/null \
  || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
# Debian's Go is older than the Pulumi CLI's go.mod asks for; with GOTOOLCHAIN=auto (the
# default) it fetches the newer toolchain from the Go module proxy by itself.
test_tools="${SETUP_TEST_TOOLS:-0}"
if [ "$test_tools" = 1 ]; then
  command -v go >/dev/null || missing+=(golang-go ca-certificates)
  # The report's browser test drives Debian's Chromium.
  [ -x /usr/bin/chromium ] || missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing OS packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: error: need root (or sudo) to install ${missing[*]}; install them and re-run" >&2; exit 1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "setup: error: Python 3.11 or newer is needed (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
# .venv holds exactly what requirements.lock names (`make lock` writes it), each package checked
# against its hashes, and the project itself, editable; again whenever the lock or pyproject changes.
lock=requirements.lock
stamp=.venv/.installed-$(cat pyproject.toml "$lock" | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "setup: installing the locked Python dependencies into .venv"
  # uv installs the lock; the venv's own pip brings uv in, at its locked version and hashes.
  awk '/^uv==/ {on = 1} on {print} on && !/\\$/ {exit}' "$lock" > .venv/uv-requirement.txt
  if [ ! -s .venv/uv-requirement.txt ]; then
    echo "setup: error: $lock pins no uv; restore it from git or write it again with 'make lock'" >&2; exit 1
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes --only-binary :all: --no-deps \
    -r .venv/uv-requirement.txt
  # sync: what the lock does not name is removed, so an older lock leaves nothing behind.
  .venv/bin/uv pip sync -q --python .venv/bin/python --require-hashes "$lock"
  # The build backend is in the lock: building the editable project fetches nothing more.
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps --no-build-isolation -e .
  rm -f .venv/.installed-* && touch "$stamp"
fi
if [ "$test_tools" = 1 ]; then ./scripts/pulumi-cli.sh >/dev/null; fi
echo "setup: done"
