#!/usr/bin/env bash
# The production line against a running FactoryCa: device simulators whose keys live in a SoftHSM2 token, driven
# one by one by the station tool (identify, CSR, EST enroll over mTLS, verify, write, challenge-response, finalize),
# then one simulator per fault mode, each of which must be caught at the right step.
#
#   bash ops/station-demo.sh EST_URL STATION_CERT STATION_KEY TLS_CA [WORKDIR]
#   e.g. bash ops/station-demo.sh https://127.0.0.1:8443 .demo/pki/station-01.crt .demo/pki/station-01.key .demo/pki/tls-ca.crt .demo/station
#
# Environment (all optional):
#   DEVICES=3                   good devices to enroll (device 1 goes through a pty made by socat, as a serial port)
#   DEVICE_IDS="A B C"          device IDs to use instead of generated SIM-<time>-<n> (must satisfy the factory's rules)
#   FAULT_IDS="D E F G"         device IDs for the four fault-mode devices (default: generated SIM-<time>-F<n>)
#   ORDER=ID  OPERATOR=ID       sent as X-Order-Id / X-Operator-Id    EST_LABEL=L   EST label (RFC 7030 §3.2.2)
#   ROOT=root-ca.crt            pin the device-identity root (default: trust the root EST cacerts returns)
#   FAULTS=0                    skip the fault-mode runs
#   STATION_BIN_DIR             where station.dll and device-sim.dll are (default: Release build output; built if missing)
# Writes WORKDIR/evidence.jsonl (default WORKDIR: .demo/station). Exits non-zero if a good device fails or a faulty
# one passes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 4 ] || { awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
est=$1; cert=$2; key=$3; ca=$4; work=${5:-$root/.demo/station}
devices=${DEVICES:-3}
bin=${STATION_BIN_DIR:-$root/src/Station/bin/Release/net10.0}
simbin=${STATION_BIN_DIR:-$root/src/DeviceSimulator/bin/Release/net10.0}
if [ ! -f "$bin/station.dll" ] || [ ! -f "$simbin/device-sim.dll" ]; then
  dotnet build "$root/src/Station" -c Release -v quiet -nologo >/dev/null
  dotnet build "$root/src/DeviceSimulator" -c Release -v quiet -nologo >/dev/null
fi
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
mkdir -p "$work/logs"
evidence=$work/evidence.jsonl
stamp=$(date -u +%H%M%S)
if [ -n "${DEVICE_IDS:-}" ]; then read -r -a ids <<< "$DEVICE_IDS"; else ids=(); for i in $(seq 1 "$devices"); do ids+=("SIM-$stamp-$i"); done; fi
faults=(wrong-key-slot swapped-id failed-write refused-signature)
[ "${FAULTS:-1}" = 1 ] || faults=()
fault_ids=(); [ -z "${FAULT_IDS:-}" ] || read -r -a fault_ids <<< "$FAULT_IDS"

say "station demo: secure-element token for ${#ids[@]} good and ${#faults[@]} faulty simulated devices"
keys=(); for id in "${ids[@]}"; do keys+=("key-$id"); done
for f in "${faults[@]}"; do keys+=("key-$stamp-$f"); done
[ ${#faults[@]} -eq 0 ] || keys+=("key-$stamp-wrong-key-slot-alt")
eval "$(bash "$root/ops/device-sim-token.sh" "$work/se" sim-se "${keys[@]}" 2>/dev/null)"
pinfile=$work/se/sim-se.pin

sim_pid=; sim_port=; socat_pid=
cleanup() { [ -z "$sim_pid" ] || kill "$sim_pid" 2>/dev/null || true; [ -z "$socat_pid" ] || kill "$socat_pid" 2>/dev/null || true; }
trap cleanup EXIT
# start_sim ID KEYLABEL FAULT: starts device-sim on a free port, sets sim_pid and sim_port.
start_sim() {
  local out="$work/logs/sim-$1.out"
  dotnet "$simbin/device-sim.dll" --listen 127.0.0.1:0 --device-id "$1" --mac "02:00:5e:$(printf '%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)))" \
    --token-label sim-se --key-label "$2" --pin-file "$pinfile" --fault "$3" > "$out" 2> "$work/logs/sim-$1.log" &
  sim_pid=$!
  for _ in $(seq 1 100); do grep -q 'listening tcp:' "$out" 2>/dev/null && break; sleep 0.1; done
  sim_port=$(grep -o 'listening tcp:[0-9.]*:[0-9]*' "$out" | sed 's/.*://')
  [ -n "$sim_port" ] || { echo "device-sim did not start: $(cat "$work/logs/sim-$1.log")" >&2; exit 1; }
}
stop_sim() { kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; sim_pid=; }
extra=(); [ -z "${ORDER:-}" ] || extra+=(--order "$ORDER"); [ -z "${EST_LABEL:-}" ] || extra+=(--est-label "$EST_LABEL"); [ -z "${ROOT:-}" ] || extra+=(--root "$ROOT")
station() {
  dotnet "$bin/station.dll" run --est "$est" --client-cert "$cert" --client-key "$key" --ca "$ca" \
    --operator "${OPERATOR:-op-demo}" --evidence "$evidence" "${extra[@]}" "$@"
}

bad=0
n=0
for id in "${ids[@]}"; do
  n=$((n + 1))
  start_sim "$id" "key-$id" none
  device="tcp:127.0.0.1:$sim_port"
  if [ "$n" = 1 ] && command -v socat >/dev/null; then
    tty="$work/ttyDUT"; rm -f "$tty"
    socat "pty,raw,echo=0,link=$tty" "tcp:127.0.0.1:$sim_port" & socat_pid=$!
    for _ in $(seq 1 100); do [ -e "$tty" ] && break; sleep 0.05; done
    device="serial:$tty"
  fi
  say "device $id on $device (label scanned: $id)"
  station --device "$device" --label "$id" || { echo "station-demo: good device $id FAILED" >&2; bad=1; }
  stop_sim
  [ -z "$socat_pid" ] || { kill "$socat_pid" 2>/dev/null || true; socat_pid=; }
done

k=0
for f in "${faults[@]}"; do
  k=$((k + 1)); id=${fault_ids[$((k - 1))]:-SIM-$stamp-F$k}
  start_sim "$id" "key-$stamp-$f" "$f"
  say "device $id started with --fault $f: the station must refuse it"
  if station --device "tcp:127.0.0.1:$sim_port" --label "$id" > "$work/logs/station-$f.out" 2>&1; then
    echo "station-demo: faulty device ($f) PASSED" >&2; bad=1
  else
    grep 'FAIL at step' "$work/logs/station-$f.out" || true
  fi
  stop_sim
done

say "evidence: $evidence (one line per device, no keys or PINs)"
/usr/bin/python3 - "$evidence" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows[-20:]:
    print(f"  {r['result']:4}  {r.get('deviceId') or r['label']:24} step={r['step']:9} serial={r.get('serial') or '-'}")
print(f"  {sum(r['result'] == 'pass' for r in rows)} pass, {sum(r['result'] == 'fail' for r in rows)} fail")
PY
exit $bad
