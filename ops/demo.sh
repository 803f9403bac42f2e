#!/usr/bin/env bash
# The main job, end to end on loopback, with real standard clients:
#   1. build, and create a development PKI (ops/dev-pki.sh)
#   2. start MirrorCa and FactoryCa
#   3. enroll DEVICES devices: each CSR made by `openssl req` with its own key, sent by `curl` over mTLS (EST)
#   4. verify every certificate with `openssl verify`
#   5. sync the journal to the mirror, revoke a few devices, fetch the CRL
#   6. show with `openssl verify -crl_check` and `openssl ocsp` that revoked devices are revoked, good ones
#      are good, and a certificate minted outside the journal with the CA key is reported revoked
#   7. verify the journal against the root alone
#   8. a production order: the OEM signs it (openssl cms), the mirror delivers it by sync, and the station tool
#      drives simulated devices (keys in a SoftHSM2 token) through enroll, write and challenge-response under it;
#      faulty devices are caught; the mirror writes the order's batch report. Then a summary, and the daemons stop.
#
#   bash ops/demo.sh [--soft-keys] [WORKDIR]      (default: .demo; DEVICES=100 by default)
#
# By default the CA, journal-signer, OCSP and receipt keys are moved into SoftHSM2 tokens first (step 1b,
# ops/demo-hsm-setup.sh); --soft-keys (or SOFT_KEYS=1) keeps them in PEM files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --soft-keys ]; then SOFT_KEYS=1; shift; fi   # keep CA keys in PEM files (quick run; default: SoftHSM2)
work=${1:-$root/.demo}
devices=${DEVICES:-100}
est=https://127.0.0.1:8443/.well-known/est
mirror=http://127.0.0.1:8080

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
bash "$root/ops/install-deps.sh"

say "1. build and create a development PKI in $work/pki"
rm -rf "$work"; mkdir -p "$work/devices" "$work/logs"
dotnet build "$root/OfflinePki.sln" -c Release -v quiet -nologo 2>&1 | grep -E "error|Warn|Elapsed" || true
factory_bin="$root/src/FactoryCa/bin/Release/net10.0/FactoryCa.dll"
mirror_bin="$root/src/MirrorCa/bin/Release/net10.0/MirrorCa.dll"
bash "$root/ops/dev-pki.sh" "$work/pki"
pki=$work/pki
[ "${SOFT_KEYS:-0}" = 1 ] || { say "1b. keys into SoftHSM2 tokens (SOFT_KEYS=1 skips; see docs/hsm.md)"; eval "$(bash "$root/ops/demo-hsm-setup.sh" "$pki")"; }

say "2. start MirrorCa (CRL/OCSP on $mirror, sync on :9443) and FactoryCa (EST on :8443)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
dotnet "$mirror_bin" serve --config "$pki/mirrorca.json" > "$work/logs/mirror.log" 2>&1 & pids+=($!)
dotnet "$factory_bin" serve --config "$pki/factoryca.json" > "$work/logs/factory.log" 2>&1 & pids+=($!)
station=(--cert "$pki/station-01.crt" --key "$pki/station-01.key" --cacert "$pki/tls-ca.crt")
for i in $(seq 1 100); do
  if curl -sf "${station[@]}" "$est/cacerts" -o /dev/null && curl -sf "$mirror/ca/F1.crt" -o /dev/null; then break; fi
  [ "$i" -lt 100 ] || { echo "daemons did not start; see $work/logs" >&2; tail -n 30 "$work"/logs/*.log >&2; exit 1; }
  sleep 0.2
done
curl -s "${station[@]}" "$est/cacerts" | base64 -d | openssl pkcs7 -inform DER -print_certs -noout | grep subject

say "3. enroll $devices devices: openssl req makes each key and CSR, curl sends it over EST/mTLS"
enroll() {
  local n=$1 id dir
  id=$(printf 'DEV-%06d' "$n"); dir="$WORK/devices/$id"; mkdir -p "$dir"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/device.key" \
    -subj "/CN=$id/serialNumber=$id" -outform DER -out "$dir/device.csr" 2>/dev/null
  base64 -w 64 "$dir/device.csr" > "$dir/device.csr.b64"
  curl -sS --fail-with-body --cert "$PKI/station-01.crt" --key "$PKI/station-01.key" --cacert "$PKI/tls-ca.crt" \
    -H 'Content-Type: application/pkcs10' -H 'X-Operator-Id: demo-op' \
    --data-binary @"$dir/device.csr.b64" "$EST/simpleenroll" -o "$dir/device.p7.b64"
  base64 -d "$dir/device.p7.b64" | openssl pkcs7 -inform DER -print_certs -out "$dir/device.crt"
}
export -f enroll; export WORK=$work PKI=$pki EST=$est
start=$(date +%s%N)
seq 1 "$devices" | xargs -P 4 -I{} bash -c 'enroll {}'
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "enrolled $devices devices in ${elapsed_ms} ms (process spawning dominates; see bench/ for the issuance rate)"
openssl x509 -in "$work/devices/DEV-000001/device.crt" -noout -subject -serial -dates -ext subjectAltName,keyUsage,crlDistributionPoints,authorityInfoAccess

say "4. verify every certificate with openssl verify against the root and the issuing CA"
ok=0
for d in "$work"/devices/*/; do
  openssl verify -CAfile "$pki/root-ca.crt" -untrusted "$pki/issuing-ca-F1.crt" "$d/device.crt" >/dev/null && ok=$((ok+1))
done
echo "openssl verify: $ok of $devices OK"; [ "$ok" -eq "$devices" ]

say "5. sync the journal to the mirror, revoke three devices, fetch the CRL"
dotnet "$factory_bin" sync-now --config "$pki/factoryca.json"
revoked=(DEV-000002 DEV-000003 DEV-000005)
for id in "${revoked[@]}"; do
  serial=$(openssl x509 -in "$work/devices/$id/device.crt" -noout -serial | cut -d= -f2)
  dotnet "$mirror_bin" revoke --config "$pki/mirrorca.json" --serial "$serial" --reason keyCompromise
done
dotnet "$mirror_bin" status --config "$pki/mirrorca.json"
crl_url=$(openssl x509 -in "$work/devices/DEV-000001/device.crt" -noout -ext crlDistributionPoints | grep -o 'http[^ ]*')
curl -sf "$crl_url" -o "$work/crl.der"
openssl crl -inform DER -in "$work/crl.der" -out "$work/crl.pem"
openssl crl -in "$work/crl.pem" -noout -CAfile "$pki/issuing-ca-F1.crt" -crlnumber -lastupdate -nextupdate 2>&1
openssl crl -in "$work/crl.pem" -noout -text | grep -A2 "Serial Number" | head -n 9

say "6a. openssl verify -crl_check: revoked devices fail, good devices pass"
for id in DEV-000001 DEV-000002 DEV-000004 DEV-000005; do
  out=$(openssl verify -crl_check -CRLfile "$work/crl.pem" -CAfile "$pki/root-ca.crt" -untrusted "$pki/issuing-ca-F1.crt" \
    "$work/devices/$id/device.crt" 2>&1 || true)
  if grep -q "certificate revoked" <<<"$out"; then echo "$id: certificate revoked"; else echo "$id: $(tail -n 1 <<<"$out" | sed "s|$work/||")"; fi
done

say "6b. openssl ocsp against the mirror's responder (delegated responder certificate)"
ocsp_url=$(openssl x509 -in "$work/devices/DEV-000001/device.crt" -noout -ocsp_uri)
ocsp() {
  openssl ocsp -issuer "$pki/issuing-ca-F1.crt" -cert "$1" -url "$ocsp_url" -CAfile "$pki/root-ca.crt" \
    -verify_other "$pki/ocsp-F1.crt" 2>&1 | grep -E "$1|Response verify" | sed "s|$work/||"
}
for id in DEV-000001 DEV-000002 DEV-000004; do ocsp "$work/devices/$id/device.crt"; done

say "6c. a certificate minted outside the journal with the issuing CA key"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/rogue.key" \
  -subj "/CN=ROGUE-1/serialNumber=ROGUE-1" -out "$work/rogue.csr" 2>/dev/null
if [ -f "$pki/issuing-ca-F1.key" ]; then
  ca_key=(-CAkey "$pki/issuing-ca-F1.key")
else
  # The key is in the factory token: sign through OpenSSL's pkcs11 engine, as an insider with the PIN could.
  printf 'openssl_conf = init\n[init]\nengines = engines\n[engines]\npkcs11 = p11\n[p11]\nengine_id = pkcs11\nMODULE_PATH = %s\nPIN = %s\ninit = 0\n' \
    /usr/lib/softhsm/libsofthsm2.so "$(cat "$pki/hsm/pins/factory-F1.pin")" > "$work/rogue-engine.cnf"
  export OPENSSL_CONF="$work/rogue-engine.cnf"
  ca_key=(-engine pkcs11 -CAkeyform engine -CAkey "pkcs11:token=factory-F1;object=issuing-ca;type=private")
fi
openssl x509 -req -in "$work/rogue.csr" -CA "$pki/issuing-ca-F1.crt" "${ca_key[@]}" \
  -set_serial "0x$(openssl rand -hex 16)" -days 365 -out "$work/rogue.crt" 2>/dev/null
unset OPENSSL_CONF; rm -f "$work/rogue-engine.cnf"
printf 'openssl verify (chain only, no revocation): '
openssl verify -CAfile "$pki/root-ca.crt" -untrusted "$pki/issuing-ca-F1.crt" "$work/rogue.crt" | sed "s|$work/||"
ocsp "$work/rogue.crt"

say "7. verify the factory journal with nothing but the journal and the root certificate"
journal=$(find "$pki" -name journal.log | head -n 1)
dotnet "$factory_bin" verify --journal "$journal" --root "$pki/root-ca.crt"

say "8. a production order through the station tool and the device simulator"
now=$(date -u +%s)
cat > "$work/po-demo.json" <<JSON
{ "orderId": "PO-DEMO-1", "sku": "GW-100", "profile": "$(/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["FactoryCa"]; print(c.get("Profile",{}).get("Name") or "idevid")' "$pki/factoryca.json")",
  "quantity": 10, "deviceIds": { "from": "GW-0001", "to": "GW-0010" },
  "notBefore": "$(date -u -d "@$((now - 3600))" +%Y-%m-%dT%H:%M:%SZ)", "notAfter": "$(date -u -d "@$((now + 30 * 86400))" +%Y-%m-%dT%H:%M:%SZ)",
  "factoryId": "F1" }
JSON
bash "$root/ops/sign-order.sh" "$work/po-demo.json" "$work/po-demo.p7" --signer "$pki/order-signer"
dotnet "$mirror_bin" order add --config "$pki/mirrorca.json" "$work/po-demo.p7"
dotnet "$factory_bin" sync-now --config "$pki/factoryca.json"      # the order travels to the factory in the sync answer
dotnet "$factory_bin" orders --config "$pki/factoryca.json"
ORDER=PO-DEMO-1 OPERATOR=line-2-op DEVICE_IDS="GW-0001 GW-0002 GW-0003" FAULT_IDS="GW-0004 GW-0005 GW-0006 GW-0007" ROOT="$pki/root-ca.crt" \
  bash "$root/ops/station-demo.sh" "https://127.0.0.1:8443" "$pki/station-01.crt" "$pki/station-01.key" "$pki/tls-ca.crt" "$work/station"
dotnet "$factory_bin" orders --config "$pki/factoryca.json"
dotnet "$factory_bin" sync-now --config "$pki/factoryca.json"
dotnet "$mirror_bin" report orders --config "$pki/mirrorca.json"
dotnet "$mirror_bin" report order PO-DEMO-1 --format csv --out "$work/po-demo-report.csv" --config "$pki/mirrorca.json"
echo "batch report $work/po-demo-report.csv:"; sed "s|^|  |" "$work/po-demo-report.csv"

say "summary"
echo "devices enrolled over EST/mTLS: $devices, verified by openssl: $ok"
echo "revoked: ${revoked[*]} (CRL and OCSP agree); rogue certificate outside the journal: reported revoked by OCSP"
echo "order PO-DEMO-1: 3 good simulated devices passed the station tool, 4 faulty ones were caught; evidence: $work/station/evidence.jsonl"
echo "logs: $work/logs   PKI: $pki"
