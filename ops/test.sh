#!/usr/bin/env bash
# Runs the whole test suite (unit, protocol tests against openssl/curl/python3-grpcio/SoftHSM2, and
# whole-system tests), after installing any missing system packages. Prints "N passed, N failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash ops/install-deps.sh
results=$(mktemp -d)
set +e
# One test project per layer (tests/*.Tests); -m:1 runs them one after another, as the suite ran before the split,
# so timing-sensitive system tests do not compete for the two cores.
dotnet test OfflinePki.sln -c Release -m:1 --logger trx --results-directory "$results" "$@"
rc=$?
set -e
passed=0
failed=0
for trx in $(find "$results" -name '*.trx'); do
  p=$(grep -o 'passed="[0-9]*"' "$trx" | head -n1 | tr -dc 0-9)
  f=$(grep -o 'failed="[0-9]*"' "$trx" | head -n1 | tr -dc 0-9)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
done
echo "tests: ${passed} passed, ${failed} failed"
rm -rf "$results"
exit $rc
