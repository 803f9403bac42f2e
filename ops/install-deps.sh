#!/usr/bin/env bash
# Installs the system packages OfflinePki's demo and tests use, if any is missing (Debian 12).
#   openssl, curl            real peers: CSRs, certificates, CRLs, OCSP, the EST client
#   python3-grpcio           an independent gRPC peer for wire-compatibility tests
#   softhsm2, opensc,        a PKCS#11 token, pkcs11-tool, and OpenSSL's pkcs11 engine (libp11)
#   libengine-pkcs11-openssl
#   wrk                      HTTP load generator for the benchmarks
#   socat                    a pty standing in for a device's serial port (station tool tests and demo)
#   prometheus               a real Prometheus scraping both daemons, and promtool for metrics and alert rules
#   afl++                    afl-fuzz, driving the SharpFuzz harnesses (ops/fuzz.sh, docs/testing/fuzzing.md)
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v softhsm2-util >/dev/null || need+=(softhsm2)
command -v pkcs11-tool >/dev/null || need+=(opensc)
[ -e /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ] || [ -e /usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so ] || need+=(libengine-pkcs11-openssl)
/usr/bin/python3 -c "import grpc" 2>/dev/null || need+=(python3-grpcio python3-protobuf)
command -v wrk >/dev/null || need+=(wrk)
command -v socat >/dev/null || need+=(socat)
command -v afl-fuzz >/dev/null || need+=(afl++)
command -v promtool >/dev/null || need+=(prometheus)
command -v dotnet >/dev/null || { echo "install-deps: the .NET 10 SDK (dotnet) is required" >&2; exit 1; }
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${need[*]}; run: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
