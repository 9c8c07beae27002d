#!/usr/bin/env bash
# Installs Debian's headless Chromium (for the HTML and VS Code end-to-end tests) when missing.
# Idempotent; needs root (CI and the dev machines run as root) and the Debian package registry.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "chromium is missing and installing it needs root: apt-get install chromium" >&2; exit 1; fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
