#!/usr/bin/env bash
# Signs a production order as the OEM does: the order JSON embedded in a DER CMS SignedData (RFC 5652), signed by the
# order-signer key whose certificate chains to the OEM root and carries the order-signing EKU
# (2.25.283822409315536431916575349474893134402.1.3).
#
#   ops/sign-order.sh ORDER.json OUT.p7 [--signer DIR/order-signer]    (default signer: ./order-signer.{crt,key})
#
# ORDER.json (UTF-8; unknown members are refused by FactoryCa and MirrorCa):
#   { "orderId": "PO-0042", "sku": "GW-100", "profile": "idevid", "quantity": 5000,
#     "deviceIds": { "from": "GW100-000001", "to": "GW100-005000" },      (or { "pattern": "GW100-[0-9]{6}" })
#     "notBefore": "2026-11-01T00:00:00Z", "notAfter": "2027-02-01T00:00:00Z",
#     "factoryId": "F1", "reworkWindowHours": 72 }                       (both optional)
# Then: MirrorCa order add --config mirrorca.json OUT.p7  (delivered at the next sync)
#   or: FactoryCa import-order --config factoryca.json OUT.p7
set -euo pipefail
usage() { echo "usage: $0 ORDER.json OUT.p7 [--signer PATH-WITHOUT-EXTENSION]" >&2; exit 2; }
[ $# -ge 2 ] || usage
in=$1; out=$2; shift 2
signer=./order-signer
while [ $# -gt 0 ]; do
  case "$1" in
    --signer) signer=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -f "$in" ] || { echo "order file '$in' not found" >&2; exit 2; }
[ -f "$signer.crt" ] && [ -f "$signer.key" ] || { echo "signer '$signer.crt' / '$signer.key' not found (ops/dev-pki.sh makes order-signer.*)" >&2; exit 2; }
/usr/bin/env python3 -c 'import json,sys; d=json.load(open(sys.argv[1], encoding="utf-8")); assert isinstance(d, dict), "the order must be a JSON object"' "$in" \
  || { echo "'$in' is not a JSON object" >&2; exit 1; }
openssl cms -sign -nodetach -binary -outform DER -md sha256 -in "$in" -signer "$signer.crt" -inkey "$signer.key" -out "$out"
echo "signed order $in -> $out"
