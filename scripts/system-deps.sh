#!/usr/bin/env bash
# Installs what the browser tests need beyond Python packages: Debian's Chromium.
# Without root or apt-get (a developer laptop), it says so and the browser tests skip,
# unless FEEDBACK_TEST_STRICT=1 (CI), where they fail instead.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "chromium is not installed and cannot be installed here (needs root and apt-get): browser tests will skip"
if [ "${FEEDBACK_TEST_STRICT:-0}" = 1 ]; then
  echo "FEEDBACK_TEST_STRICT=1: chromium is required" >&2
  exit 1
fi
