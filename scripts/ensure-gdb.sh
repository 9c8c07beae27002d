#!/usr/bin/env bash
# Installs Debian's gdb (memlens attach injects its start with it; tests/attach drives it) when
# missing. Idempotent; needs root (CI and the dev machines run as root) and the Debian registry.
set -euo pipefail
if command -v gdb >/dev/null; then exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "gdb is missing and installing it needs root: apt-get install gdb" >&2; exit 1; fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gdb >/dev/null
