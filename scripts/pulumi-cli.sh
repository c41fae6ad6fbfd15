#!/usr/bin/env bash
# Prints the path of the Pulumi CLI this project tests with, building it first if needed.
#
# No registry this project installs from serves a Pulumi CLI binary, but the Go module
# proxy serves its source: a throwaway wrapper module requires
# github.com/pulumi/pulumi/pkg/v3 at PULUMI_CLI_VERSION, copies that module's `replace`
# directives (except its local ../sdk one: the wrapper requires sdk/v3 at the same
# version instead) and builds cmd/pulumi. The binary is cached per version under
# ${XDG_CACHE_HOME:-~/.cache}/clickstream/pulumi-cli/, so only the first run pays for the
# build (minutes and a few hundred MB of module downloads, see README).
set -euo pipefail

PULUMI_CLI_VERSION=v3.274.1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/clickstream/pulumi-cli/$PULUMI_CLI_VERSION"
bin="$cache/bin/pulumi"

if [ ! -x "$bin" ]; then
  if ! command -v go >/dev/null; then
    echo "pulumi-cli: error: the Go toolchain (go) is needed to build the Pulumi CLI; install Go 1.24+ and re-run" >&2
    exit 1
  fi
  echo "pulumi-cli: building the Pulumi CLI $PULUMI_CLI_VERSION from the Go module proxy (first time only)" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  pkg=github.com/pulumi/pulumi/pkg/v3
  sdk=github.com/pulumi/pulumi/sdk/v3
  (
    cd "$work"
    go mod init clickstream.invalid/pulumi-cli >/dev/null 2>&1
    upstream_mod=$(go mod download -json "$pkg@$PULUMI_CLI_VERSION" | python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')
    go mod edit -json "$upstream_mod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    old, new = r["Old"], r["New"]
    if new["Path"].startswith((".", "/")):
        continue  # a path inside the upstream repository, not a module
    lhs = old["Path"] + ("@" + old["Version"] if old.get("Version") else "")
    rhs = new["Path"] + ("@" + new["Version"] if new.get("Version") else "")
    print(f"-replace={lhs}={rhs}")
' | xargs -r go mod edit
    go mod edit -require="$pkg@$PULUMI_CLI_VERSION" -require="$sdk@$PULUMI_CLI_VERSION"
    mkdir -p "$cache/bin"
    GOFLAGS=-mod=mod go build -o "$bin.partial" \
      -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_CLI_VERSION" \
      "$pkg/cmd/pulumi"
  )
  mv "$bin.partial" "$bin"
fi
echo "$bin"
