#!/usr/bin/env bash
# Key ceremony into PKCS#11 tokens (SoftHSM2 here; any PKCS#11 HSM with the same tools), as an operator runs it.
#
#   ops/ceremony/ceremony.sh WORKDIR --env dev|test|staging|production --operator NAME [--factory F1]... [--module SO]
#
# WORKDIR (the operator names it; never commit it) receives:
#   softhsm2.conf, tokens/         SoftHSM2 token store (SOFTHSM2_CONF=WORKDIR/softhsm2.conf)
#   pins/TOKEN.pin, pins/TOKEN.so-pin   generated PINs, mode 0600: hand each to its daemon's PinFile, keep SO PINs offline
#   certs/*.crt                    root, issuing CA, journal signer, OCSP responder and mirror receipt certificates
#   ceremony-record.txt(.sig)      what was created, key fingerprints, time, operator; signed with the root key (no secrets)
# Tokens: ceremony-root (root key, kept offline), factory-F (issuing CA + journal signer of factory F),
#         mirror (every factory's issuing CA clone, each OCSP responder, the mirror receipt key).
# Every CA certificate carries O="OfflinePki ENV"; daemons refuse a root of another environment.
#
# Issuing CA key into both the factory and the mirror token: generated ONCE in the ceremony in a private tmpfs
# directory, imported into both tokens with pkcs11-tool --write-object (non-extractable, sensitive there), then
# shredded. Trade-off: simple and vendor-neutral (factory and mirror HSMs need not share a wrapping key or be of
# one vendor), at the price of the key existing in clear for seconds on the (air-gapped, witnessed) ceremony
# machine. Wrap/unwrap would keep it inside HSM boundaries but needs a shared KEK and one vendor; see docs/hsm.md.
set -euo pipefail
umask 077

usage() { echo "usage: $0 WORKDIR --env ENV --operator NAME [--factory ID]... [--module PATH]" >&2; exit 2; }
[ $# -ge 1 ] || usage
work=$1; shift
envname=""; operator=""; factories=(); module=/usr/lib/softhsm/libsofthsm2.so
while [ $# -gt 0 ]; do
  case "$1" in
    --env) envname=$2; shift 2 ;;
    --operator) operator=$2; shift 2 ;;
    --factory) factories+=("$2"); shift 2 ;;
    --module) module=$2; shift 2 ;;
    *) usage ;;
  esac
done
[[ "$envname" =~ ^(dev|test|staging|production)$ ]] || { echo "--env must be dev, test, staging or production" >&2; exit 2; }
[ -n "$operator" ] || { echo "--operator is required (it goes into the signed ceremony record)" >&2; exit 2; }
[ ${#factories[@]} -gt 0 ] || factories=(F1)
for f in "${factories[@]}"; do [[ "$f" =~ ^[A-Za-z0-9_-]{1,32}$ ]] || { echo "--factory '$f' must be 1-32 of [A-Za-z0-9_-]" >&2; exit 2; }; done
for t in softhsm2-util pkcs11-tool openssl; do command -v $t >/dev/null || { echo "$t not found (bash ops/install-deps.sh)" >&2; exit 1; }; done
[ -e "$module" ] || { echo "PKCS#11 module $module not found" >&2; exit 1; }
[ -e "$work/tokens" ] && [ -n "$(ls -A "$work/tokens" 2>/dev/null)" ] && { echo "$work/tokens is not empty: refusing to run a second ceremony over it" >&2; exit 1; }

mkdir -p "$work"/{tokens,pins,certs}
work=$(cd "$work" && pwd)
export SOFTHSM2_CONF="$work/softhsm2.conf"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" > "$SOFTHSM2_CONF"
scratch=$(mktemp -d /dev/shm/ceremony.XXXXXX 2>/dev/null || mktemp -d)
trap 'find "$scratch" -type f -exec shred -u {} + 2>/dev/null; rm -rf "$scratch"' EXIT
ext="$(cd "$(dirname "$0")/.." && pwd)/certificate-profiles.cnf"

p11() { pkcs11-tool --module "$module" "$@"; }
newpin() { openssl rand -hex 12 > "$work/pins/$1.pin"; openssl rand -hex 16 > "$work/pins/$1.so-pin"; }
pin() { cat "$work/pins/$1.pin"; }

# init_token LABEL
init_token() {
  newpin "$1"
  softhsm2-util --init-token --free --label "$1" --so-pin "$(cat "$work/pins/$1.so-pin")" --pin "$(pin "$1")" >/dev/null
  echo "token $1 initialised"
}
# genkey TOKEN LABEL ID CURVE: key pair generated inside the token (private: sensitive, non-extractable)
genkey() {
  p11 --token-label "$1" --login --pin "$(pin "$1")" --keypairgen --key-type "EC:$4" --label "$2" --id "$3" >/dev/null
}
# importkey TOKEN LABEL ID PEMKEY: private (sensitive) + public object, same CKA_ID
importkey() {
  openssl pkey -in "$4" -outform DER -out "$scratch/k.der"
  openssl pkey -in "$4" -pubout -outform DER -out "$scratch/p.der"
  p11 --token-label "$1" --login --pin "$(pin "$1")" --write-object "$scratch/k.der" --type privkey --label "$2" --id "$3" --usage-sign --sensitive >/dev/null
  p11 --token-label "$1" --login --pin "$(pin "$1")" --write-object "$scratch/p.der" --type pubkey --label "$2" --id "$3" >/dev/null
  shred -u "$scratch/k.der"; rm -f "$scratch/p.der"
}
# engine_conf TOKEN: an OpenSSL config (0600, in the private scratch dir, removed at exit) loading the pkcs11 engine
# with the token's PIN, so no PIN appears on a command line or in a URI.
engine_conf() {
  cat > "$scratch/openssl-$1.cnf" <<CNF
openssl_conf = init
[ init ]
engines = engines
[ engines ]
pkcs11 = pkcs11
[ pkcs11 ]
engine_id = pkcs11
MODULE_PATH = $module
PIN = $(pin "$1")
init = 0
CNF
  echo "$scratch/openssl-$1.cnf"
}
uri() { echo "pkcs11:token=$1;object=$2;type=private"; }
serial() { echo "0x$(openssl rand -hex 16 | sed 's/^./4/')"; }
# csr_in_token TOKEN LABEL SUBJECT OUT
csr_in_token() {
  OPENSSL_CONF=$(engine_conf "$1") openssl req -new -engine pkcs11 -keyform engine -key "$(uri "$1" "$2")" -subj "$3" -out "$4" 2>/dev/null
}
# sign_with_token CATOKEN CALABEL CACERT CSR DAYS SECTION OUT
sign_with_token() {
  OPENSSL_CONF=$(engine_conf "$1") openssl x509 -req -engine pkcs11 -CAkeyform engine -CAkey "$(uri "$1" "$2")" -CA "$3" \
    -in "$4" -set_serial "$(serial)" -days "$5" -sha256 -extfile "$ext" -extensions "$6" -out "$7" 2>/dev/null
}
fingerprint() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1; }

org="OfflinePki $envname"
record="$work/ceremony-record.txt"
{
  echo "OfflinePki key ceremony"
  echo "environment: $envname"
  echo "operator: $operator"
  echo "started: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "module: $module"
} > "$record"
add() { echo "$*" >> "$record"; }

# 1. Root in the ceremony token, self-signed.
init_token ceremony-root
genkey ceremony-root root-ca 01 secp384r1
OPENSSL_CONF=$(engine_conf ceremony-root) openssl req -new -x509 -engine pkcs11 -keyform engine -key "$(uri ceremony-root root-ca)" \
  -subj "/O=$org/CN=$org Root CA" -days 7300 -sha384 -config "$ext" -extensions root -out "$work/certs/root-ca.crt" 2>/dev/null
add "key root-ca token=ceremony-root spki-sha256=$(fingerprint "$work/certs/root-ca.crt") cert=certs/root-ca.crt subject=$(openssl x509 -in "$work/certs/root-ca.crt" -noout -subject -nameopt RFC2253 | cut -d= -f2-)"

# 2. Mirror token: receipt key (certified by the root).
init_token mirror
genkey mirror mirror-receipt 10 prime256v1
csr_in_token mirror mirror-receipt "/O=$org/CN=Mirror Receipt Signer" "$scratch/r.csr"
sign_with_token ceremony-root root-ca "$work/certs/root-ca.crt" "$scratch/r.csr" 3650 mirror_receipt "$work/certs/mirror-receipt.crt"
add "key mirror-receipt token=mirror spki-sha256=$(fingerprint "$work/certs/mirror-receipt.crt") cert=certs/mirror-receipt.crt"

# 3. Per factory: issuing CA (generated once, imported into factory and mirror tokens), journal signer, OCSP responder.
n=0
for f in "${factories[@]}"; do
  n=$((n + 1))
  init_token "factory-$f"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$scratch/issuing.key" 2>/dev/null
  importkey "factory-$f" "issuing-ca" 01 "$scratch/issuing.key"
  importkey mirror "issuing-ca-$f" "$(printf '20%02x' $n)" "$scratch/issuing.key"
  shred -u "$scratch/issuing.key"
  csr_in_token "factory-$f" issuing-ca "/O=$org/CN=Factory $f Issuing CA" "$scratch/i.csr"
  sign_with_token ceremony-root root-ca "$work/certs/root-ca.crt" "$scratch/i.csr" 3650 issuing "$work/certs/issuing-ca-$f.crt"
  add "key issuing-ca-$f tokens=factory-$f,mirror spki-sha256=$(fingerprint "$work/certs/issuing-ca-$f.crt") cert=certs/issuing-ca-$f.crt (generated in ceremony scratch, imported into both, shredded)"

  genkey "factory-$f" journal-signer 02 prime256v1
  csr_in_token "factory-$f" journal-signer "/O=$org/CN=Factory $f Journal Signer" "$scratch/j.csr"
  sign_with_token ceremony-root root-ca "$work/certs/root-ca.crt" "$scratch/j.csr" 3650 journal_signer "$work/certs/journal-signer-$f.crt"
  add "key journal-signer-$f token=factory-$f spki-sha256=$(fingerprint "$work/certs/journal-signer-$f.crt") cert=certs/journal-signer-$f.crt"

  genkey mirror "ocsp-$f" "$(printf '30%02x' $n)" prime256v1
  csr_in_token mirror "ocsp-$f" "/O=$org/CN=Factory $f OCSP Responder" "$scratch/o.csr"
  sign_with_token "factory-$f" issuing-ca "$work/certs/issuing-ca-$f.crt" "$scratch/o.csr" 30 ocsp "$work/certs/ocsp-$f.crt"
  add "key ocsp-$f token=mirror spki-sha256=$(fingerprint "$work/certs/ocsp-$f.crt") cert=certs/ocsp-$f.crt"
done

for f in "${factories[@]}"; do
  openssl verify -CAfile "$work/certs/root-ca.crt" "$work/certs/issuing-ca-$f.crt" "$work/certs/journal-signer-$f.crt" >/dev/null
  openssl verify -CAfile "$work/certs/root-ca.crt" -untrusted "$work/certs/issuing-ca-$f.crt" "$work/certs/ocsp-$f.crt" >/dev/null
done
add "tokens: $(softhsm2-util --show-slots 2>/dev/null | awk -F': *' '/Label:/ && $2 != "" {printf "%s ", $2}' | tr -s ' ')"
add "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# 4. Sign the record with the root key (detached, ECDSA-SHA384 over the text); verify with certs/root-ca.crt:
#    openssl dgst -sha384 -verify <(openssl x509 -in certs/root-ca.crt -pubkey -noout) -signature ceremony-record.txt.sig ceremony-record.txt
OPENSSL_CONF=$(engine_conf ceremony-root) openssl dgst -sha384 -engine pkcs11 -keyform engine -sign "$(uri ceremony-root root-ca)" \
  -out "$record.sig" "$record" 2>/dev/null
openssl dgst -sha384 -verify <(openssl x509 -in "$work/certs/root-ca.crt" -pubkey -noout) -signature "$record.sig" "$record" >/dev/null
echo "ceremony complete: $record (signed: $record.sig)"
