#!/usr/bin/env bash
# Differential ECDSA verify run (issue 16 finding 5): the table verifier, the runtime behind the strict-DER gate and
# OpenSSL libcrypto must give one verdict on valid, mutated and malleated signatures (P-256/P-384, SHA-256/384/512).
# Usage: ops/fuzz-verify.sh [CASES] [SEED]   (default 1000000 cases; CI runs 20000 through the same NUnit test)
set -euo pipefail
cd "$(dirname "$0")/.."
export OFFLINEPKI_VERIFY_DIFF_CASES="${1:-1000000}"
export OFFLINEPKI_VERIFY_DIFF_SEED="${2:-16005}"
dotnet test tests/OfflinePki.Tests -c Release \
  --filter "FullyQualifiedName~SignatureDifferentialTests" \
  --logger "console;verbosity=detailed" | grep -E "cases \(seed|Passed!|Failed!|case [0-9]" | sort -u
