#!/usr/bin/env bash
# Format check: the code must be as `swift format` (configured by .swift-format) leaves it.
# Fix with: swift format format -i --recursive Sources Tests
set -euo pipefail
cd "$(dirname "$0")/.."
if ! swift format --version >/dev/null 2>&1; then
    echo "lint: swift format not available in this toolchain; skipping" >&2
    exit 0
fi
swift format lint --strict --recursive Sources Tests
echo "lint: swift format clean"
