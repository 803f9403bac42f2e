#!/usr/bin/env bash
# Creates a complete development PKI in DIR, with openssl, the way an operator would script it.
#
#   ops/dev-pki.sh DIR [--factory F1] [--mirror-url http://127.0.0.1:8080] [--env dev]
#
# DIR receives (keys are unencrypted PKCS#8 PEM, mode 0600; certificates PEM):
#   root-ca            offline root (P-384), certifies the issuing CA and the delegated signers
#   issuing-ca-F1      the factory issuing CA (P-256, pathLen 0); the mirror holds a clone of this key
#   journal-signer-F1  signs journal checkpoints only (EKU offlinepki journal signer)
#   mirror-receipt     the mirror's countersignature key (EKU offlinepki mirror receipt)
#   order-signer       the OEM's production-order signer (EKU offlinepki order signing); see ops/sign-order.sh
#   ocsp-F1            delegated OCSP responder (RFC 6960 §4.2.2.2: id-kp-OCSPSigning + ocsp-nocheck), short-lived
#   tls-ca             a separate TLS/RA CA: a station certificate can never pass as a device certificate
#   est-server, station-01, station-02, mirror-sync-server, factory-F1-sync-client   TLS end entities
# and factoryca.json / mirrorca.json configs (from ops/config/*.sample.json) pointing at them.
# Running it again for another --factory adds that factory's CA, signer, responder and sync client, writes
# factoryca-ID.json for it and appends it to mirrorca.json's Factories.
set -euo pipefail

usage() { echo "usage: $0 DIR [--factory ID] [--mirror-url URL] [--env dev|test|staging|production]" >&2; exit 2; }
[ $# -ge 1 ] || usage
dir=$1; shift
factory=F1
mirror_url=http://127.0.0.1:8080
envname=dev
while [ $# -gt 0 ]; do
  case "$1" in
    --factory) factory=$2; shift 2 ;;
    --mirror-url) mirror_url=$2; shift 2 ;;
    --env) envname=$2; shift 2 ;;
    *) usage ;;
  esac
done
[[ "$factory" =~ ^[A-Za-z0-9_-]{1,32}$ ]] || { echo "--factory must be 1-32 of [A-Za-z0-9_-]" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
umask 077
ext="$here/certificate-profiles.cnf"


# key NAME CURVE: a fresh PKCS#8 key unless one is already there.
key() {
  [ -f "$dir/$1.key" ] || openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$2" -out "$dir/$1.key" 2>/dev/null
}
# selfsigned NAME SUBJECT DAYS SECTION
selfsigned() {
  [ -f "$dir/$1.crt" ] && return 0
  openssl req -new -x509 -key "$dir/$1.key" -subj "$2" -days "$3" -sha384 \
    -config "$ext" -extensions "$4" -out "$dir/$1.crt" 2>/dev/null
}
# issue NAME SUBJECT DAYS SECTION ISSUER
issue() {
  [ -f "$dir/$1.crt" ] && return 0
  openssl req -new -key "$dir/$1.key" -subj "$2" -out "$dir/$1.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$1.csr" -CA "$dir/$5.crt" -CAkey "$dir/$5.key" \
    -set_serial "0x$(openssl rand -hex 16 | sed 's/^./4/')" -days "$3" -sha256 \
    -extfile "$ext" -extensions "$4" -out "$dir/$1.crt" 2>/dev/null
  rm -f "$dir/$1.csr"
}

# Device-identity hierarchy.
key root-ca secp384r1;            selfsigned root-ca "/O=OfflinePki $envname/CN=OfflinePki $envname Root CA" 7300 root
key "issuing-ca-$factory" prime256v1; issue "issuing-ca-$factory" "/O=OfflinePki $envname/CN=Factory $factory Issuing CA" 3650 issuing root-ca
key "journal-signer-$factory" prime256v1; issue "journal-signer-$factory" "/O=OfflinePki $envname/CN=Factory $factory Journal Signer" 3650 journal_signer root-ca
key mirror-receipt prime256v1;    issue mirror-receipt "/O=OfflinePki $envname/CN=Mirror Receipt Signer" 3650 mirror_receipt root-ca
key order-signer prime256v1;      issue order-signer "/O=OfflinePki $envname/CN=OEM Production Order Signer" 3650 order_signer root-ca
key "ocsp-$factory" prime256v1;   issue "ocsp-$factory" "/O=OfflinePki $envname/CN=Factory $factory OCSP Responder" 30 ocsp "issuing-ca-$factory"

# TLS/RA hierarchy, separate from the device hierarchy.
key tls-ca prime256v1;            selfsigned tls-ca "/O=OfflinePki $envname/CN=OfflinePki $envname TLS and RA CA" 3650 root
key est-server prime256v1;        issue est-server "/O=OfflinePki $envname/CN=localhost" 825 tls_server tls-ca
key mirror-sync-server prime256v1; issue mirror-sync-server "/O=OfflinePki $envname/CN=localhost" 825 tls_server tls-ca
for st in station-01 station-02; do
  key "$st" prime256v1;           issue "$st" "/O=OfflinePki $envname/CN=$st" 825 tls_client tls-ca
done
# Mirror admin API clients (MirrorCa:Admin:Clients): one may revoke, one may only read.
for adm in admin-revoker admin-auditor; do
  key "$adm" prime256v1;          issue "$adm" "/O=OfflinePki $envname/CN=$adm" 825 tls_client tls-ca
done
key "factory-$factory-sync-client" prime256v1; issue "factory-$factory-sync-client" "/O=OfflinePki $envname/CN=factory-$factory-sync" 825 tls_client tls-ca

# Daemon configs, from the committed samples, with this factory and mirror URL filled in.
# A second factory in the same DIR gets its own factoryca-ID.json, and is appended to the existing mirrorca.json's
# Factories (one mirror serves several factories, each pushing only its own journal).
# The samples say "Environment": "dev"; --env writes its own, or the daemons would refuse the root (environments never mix).
fill() { sed -e "s|@FACTORY@|$factory|g" -e "s|@MIRROR_URL@|$mirror_url|g" -e "s|\"Environment\": \"dev\"|\"Environment\": \"$envname\"|" "$here/config/$1.sample.json"; }
if [ ! -f "$dir/factoryca.json" ]; then
  fill factoryca > "$dir/factoryca.json"
elif ! grep -q "\"FactoryId\": \"$factory\"" "$dir/factoryca.json"; then
  [ -f "$dir/factoryca-$factory.json" ] || fill factoryca > "$dir/factoryca-$factory.json"
fi
if [ ! -f "$dir/mirrorca.json" ]; then
  fill mirrorca > "$dir/mirrorca.json"
else
  fill mirrorca | /usr/bin/env python3 -c '
import json, sys
path = sys.argv[1]
mine = json.load(sys.stdin)["MirrorCa"]["Factories"][0]
with open(path) as f:
    cfg = json.load(f)
factories = cfg["MirrorCa"].setdefault("Factories", [])
if all(x.get("FactoryId") != mine["FactoryId"] for x in factories):
    factories.append(mine)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
' "$dir/mirrorca.json"
fi
rm -f "$dir"/*.srl
chmod 0644 "$dir"/*.crt "$dir"/*.json
echo "dev PKI for factory $factory ($envname) in $dir"
