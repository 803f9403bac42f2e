#!/usr/bin/env bash
# Key ceremony into SoftHSM2 tokens, as an operator runs it: prepares a SoftHSM2 token store in WORKDIR and runs
# `factoryca ceremony` (PKCS#11 through Pkcs11Interop; any PKCS#11 HSM works the same with --module and its own store).
#
#   ops/ceremony/ceremony.sh WORKDIR --env dev|test|staging|production --operator NAME [--factory F1]... [--module SO]
#
# WORKDIR (the operator names it; never commit it) receives:
#   softhsm2.conf, tokens/         SoftHSM2 token store (SOFTHSM2_CONF=WORKDIR/softhsm2.conf)
#   pins/TOKEN.pin, pins/TOKEN.so-pin   generated PINs, mode 0600: hand each to its daemon's PinFile, keep SO PINs offline
#   certs/*.crt, certs/*.csr       root, issuing CA, journal signer, OCSP responder and mirror receipt certificates (and CSRs)
#   ceremony-record.txt(.sig)      what was created, key fingerprints, time, operator; signed with the root key (no secrets)
# Tokens are initialised with C_InitToken/C_InitPIN and keys generated with C_GenerateKeyPair; no PIN is ever put on a
# command line. The issuing CA key (in both the factory and the mirror token) exists in the ceremony process's memory
# only, for the two imports. See src/Shared/Pkcs11/KeyCeremony.cs and docs/hsm.md.
#
# The factoryca binary: OFFLINEPKI_FACTORYCA=/path/FactoryCa.dll, else `dotnet run` of src/FactoryCa.
set -euo pipefail
umask 077
usage() { echo "usage: $0 WORKDIR --env ENV --operator NAME [--factory ID]... [--module PATH]" >&2; exit 2; }
[ $# -ge 1 ] || usage
work=$1; shift
[ -e "$work/tokens" ] && [ -n "$(ls -A "$work/tokens" 2>/dev/null)" ] && { echo "$work/tokens is not empty: refusing to run a second ceremony over it" >&2; exit 1; }
mkdir -p "$work/tokens"
work=$(cd "$work" && pwd)
export SOFTHSM2_CONF="$work/softhsm2.conf"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" > "$SOFTHSM2_CONF"
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -n "${OFFLINEPKI_FACTORYCA:-}" ]; then
  exec dotnet "$OFFLINEPKI_FACTORYCA" ceremony --work "$work" "$@"
fi
exec dotnet run --project "$root/src/FactoryCa" -c Release -- ceremony --work "$work" "$@"
