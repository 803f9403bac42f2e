#!/usr/bin/env bash
# Runs the whole test suite (unit, protocol tests against openssl/curl/python3-grpcio/SoftHSM2, and
# whole-system tests), after installing any missing system packages. Prints "N passed, N failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash ops/install-deps.sh
results=$(mktemp -d)
set +e
dotnet test OfflinePki.sln -c Release --logger "trx;LogFileName=results.trx" --results-directory "$results" "$@"
rc=$?
set -e
trx=$(find "$results" -name '*.trx' | head -n 1)
if [ -n "$trx" ]; then
  passed=$(grep -o 'passed="[0-9]*"' "$trx" | head -n1 | tr -dc 0-9)
  failed=$(grep -o 'failed="[0-9]*"' "$trx" | head -n1 | tr -dc 0-9)
  echo "tests: ${passed:-0} passed, ${failed:-0} failed"
fi
rm -rf "$results"
exit $rc
