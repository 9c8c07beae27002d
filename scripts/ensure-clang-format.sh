#!/usr/bin/env bash
# Installs Debian's clang-format (`make lint` checks native/ with it) when missing. Idempotent;
# needs root (CI and the dev machines run as root) and the Debian registry.
set -euo pipefail
if command -v clang-format >/dev/null; then exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "clang-format is missing and installing it needs root: apt-get install clang-format" >&2; exit 1; fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-format >/dev/null
