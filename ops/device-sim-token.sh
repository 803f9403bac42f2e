#!/usr/bin/env bash
# Makes the SoftHSM2 token that stands in for the device simulator's secure element, and generates device keys in it.
#
#   eval "$(bash ops/device-sim-token.sh DIR TOKEN KEY [KEY ...])"
#
# DIR gets softhsm2.conf, tokens/ and TOKEN.pin (0600, random user PIN). The token is created on the first call;
# each KEY that is not yet there is generated inside the token with `factoryca ceremony generate-key` (P-256, through
# PKCS#11; the private key never exists outside the token). For `device-sim --fault wrong-key-slot`
# generate a second key named KEY-alt. Prints the line the simulator needs:
#   export SOFTHSM2_CONF=DIR/softhsm2.conf
# Progress goes to stderr; no PIN is printed or put on any command line (PINs are read from files).
set -euo pipefail
umask 077
[ $# -ge 3 ] || { echo "usage: $0 DIR TOKEN KEY [KEY ...]" >&2; exit 2; }
mkdir -p "$1"
dir=$(cd "$1" && pwd); token=$2; shift 2
module=${OFFLINEPKI_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[ -e "$module" ] || { echo "PKCS#11 module $module not found (bash ops/install-deps.sh)" >&2; exit 1; }
[[ "$token" =~ ^[A-Za-z0-9._-]{1,32}$ ]] || { echo "TOKEN must be 1-32 of [A-Za-z0-9._-]" >&2; exit 2; }
mkdir -p "$dir/tokens"
export SOFTHSM2_CONF="$dir/softhsm2.conf"
[ -f "$SOFTHSM2_CONF" ] || printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' "$dir/tokens" > "$SOFTHSM2_CONF"
pinfile="$dir/$token.pin"
. "$(dirname "$0")/factoryca-cli.sh"
if ! softhsm2-util --show-slots 2>/dev/null | grep -q "Label:[[:space:]]*$token[[:space:]]*$"; then
  openssl rand -hex 12 > "$pinfile"; openssl rand -hex 16 > "$dir/$token.so-pin"
  factoryca ceremony init-token --module "$module" --token "$token" --pin-file "$pinfile" --so-pin-file "$dir/$token.so-pin"
  echo "device-sim-token: token $token in $dir/tokens, PIN in $pinfile" >&2
fi
# Public key objects are readable without a login: no PIN is needed to see which keys exist.
existing=$(pkcs11-tool --module "$module" --token-label "$token" --list-objects --type pubkey 2>/dev/null | sed -n 's/^[[:space:]]*label:[[:space:]]*//p')
n=$(printf '%s\n' "$existing" | grep -c . || true)
for key in "$@"; do
  [[ "$key" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || { echo "KEY '$key' must be 1-64 of [A-Za-z0-9._-]" >&2; exit 2; }
  if printf '%s\n' "$existing" | grep -qx -- "$key"; then continue; fi
  n=$((n + 1))
  factoryca ceremony generate-key --module "$module" --token "$token" --pin-file "$pinfile" --label "$key" --id "$(printf '%04x' "$n")" --curve P-256
  echo "device-sim-token: key $key (P-256) generated in token $token" >&2
done
echo "export SOFTHSM2_CONF='$SOFTHSM2_CONF'"
