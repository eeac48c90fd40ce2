#!/usr/bin/env bash
# Builds and runs every test (README's second command; .ci/run calls it):
#   1. the Release build and the whole suite (unit and end-to-end) via CTest;
#   2. the AddressSanitizer + UndefinedBehaviorSanitizer build and its unit tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

scripts/install_deps.sh

echo "== build (release)"
scripts/build.sh release
echo "== tests (release: unit + e2e)"
ctest --preset release

if [[ "${WEFT_SKIP_SANITIZERS:-0}" != 1 ]]; then
  echo "== build (asan+ubsan, unit tests)"
  scripts/build.sh asan weft_unit_tests
  echo "== tests (asan+ubsan: unit)"
  ctest --preset asan
fi
echo "== all tests passed"
