#!/usr/bin/env bash
# Moves the demo's CA, journal, OCSP and receipt keys and its TLS keys into SoftHSM2 tokens and points the configs at them.
#
#   eval "$(bash ops/demo-hsm-setup.sh PKIDIR [FACTORY])"     # called by ops/demo.sh unless --soft-keys
#
# PKIDIR is what ops/dev-pki.sh made. Creates PKIDIR/hsm/{softhsm2.conf,tokens/,pins/} with two tokens, as the
# ceremony (ops/ceremony/ceremony.sh) would for a real site:
#   factory-FACTORY: issuing-ca, journal-signer, est-server (TLS), sync-client (TLS, mTLS to the mirror)
#   mirror: issuing-ca-FACTORY (clone), ocsp-FACTORY, mirror-receipt, sync-server (TLS, sync and admin listeners)
# imports the dev keys through PKCS#11 (`factoryca ceremony import-key`; no PIN on any command line), shreds the PEM key files of every key now in a token, and rewrites
# factoryca.json / mirrorca.json keys to { Pkcs11Uri, Module, PinFile }. Prints the one line the daemons need:
#   export SOFTHSM2_CONF=PKIDIR/hsm/softhsm2.conf
# TLS keys stay in PEM files by default (an OpenSSL engine key would need the module a second time in the same process,
# which the daemons refuse); OFFLINEPKI_TLS_KEYS_IN_TOKEN=1 moves them into the tokens behind a copy of the module
# (hsm/tls-module/, driven by OpenSSL's pkcs11 engine; see docs/hsm.md). Progress goes to stderr.
set -euo pipefail
umask 077
pki=$(cd "${1:?usage: $0 PKIDIR [FACTORY]}" && pwd); factory=${2:-F1}
module=${OFFLINEPKI_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[ -e "$module" ] || { echo "SoftHSM2 module $module not found (bash ops/install-deps.sh, or run the demo with --soft-keys)" >&2; exit 1; }
hsm="$pki/hsm"
if [ -d "$hsm/tokens" ] && [ -n "$(ls -A "$hsm/tokens")" ]; then
  echo "export SOFTHSM2_CONF='$hsm/softhsm2.conf'"; exit 0   # already set up
fi
mkdir -p "$hsm/tokens" "$hsm/pins"
export SOFTHSM2_CONF="$hsm/softhsm2.conf"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$hsm/tokens" > "$SOFTHSM2_CONF"

. "$(dirname "$0")/factoryca-cli.sh"
# token LABEL: PINs generated into files, the token initialised through PKCS#11 (C_InitToken, C_InitPIN)
token() {
  openssl rand -hex 12 > "$hsm/pins/$1.pin"; openssl rand -hex 16 > "$hsm/pins/$1.so-pin"
  factoryca ceremony init-token --module "$module" --token "$1" --pin-file "$hsm/pins/$1.pin" --so-pin-file "$hsm/pins/$1.so-pin"
  echo "demo-hsm: token $1" >&2
}
# put TOKEN LABEL ID PEMKEY: private (sensitive, not extractable) and public object, same CKA_ID, through PKCS#11
put() {
  factoryca ceremony import-key --module "$module" --token "$1" --pin-file "$hsm/pins/$1.pin" --label "$2" --id "$3" --key "$4"
}
token "factory-$factory"; token mirror
put "factory-$factory" issuing-ca 01 "$pki/issuing-ca-$factory.key"
put "factory-$factory" journal-signer 02 "$pki/journal-signer-$factory.key"
put mirror "issuing-ca-$factory" 21 "$pki/issuing-ca-$factory.key"
put mirror "ocsp-$factory" 31 "$pki/ocsp-$factory.key"
[ -f "$pki/mirror-receipt.key" ] && put mirror mirror-receipt 10 "$pki/mirror-receipt.key"
tls=0; [ "${OFFLINEPKI_TLS_KEYS_IN_TOKEN:-0}" = 1 ] && tls=1
if [ "$tls" = 1 ]; then
  put "factory-$factory" est-server 03 "$pki/est-server.key"
  put "factory-$factory" sync-client 04 "$pki/factory-$factory-sync-client.key"
  put mirror sync-server 40 "$pki/mirror-sync-server.key"
fi

# The engine TLS keys use a copy of the module: one module is never driven by two stacks in one process.
tlsmodule="$hsm/tls-module/$(basename "$module")"
[ "$tls" = 1 ] && { mkdir -p "$hsm/tls-module"; cp "$(readlink -f "$module")" "$tlsmodule"; }
/usr/bin/python3 - "$pki" "$factory" "$module" "$hsm" "$tls" "$tlsmodule" <<'PY'
import json, sys
pki, factory, module, hsm, tls, tlsmodule = sys.argv[1:7]
def key(token, obj, m=None):
    return {"Pkcs11Uri": f"pkcs11:token={token};object={obj};type=private", "Module": m or module, "PinFile": f"{hsm}/pins/{token}.pin"}
def edit(name, fn):
    path = f"{pki}/{name}"
    with open(path) as f: doc = json.load(f)
    fn(doc)
    with open(path, "w") as f: json.dump(doc, f, indent=2)
def factory_cfg(d):
    s = d["FactoryCa"]
    s["IssuingCa"]["Key"] = key(f"factory-{factory}", "issuing-ca")
    s["JournalSigner"]["Key"] = key(f"factory-{factory}", "journal-signer")
    if tls == "1":
        s["Est"]["ServerKey"] = key(f"factory-{factory}", "est-server", tlsmodule)
        if "Sync" in s:
            s["Sync"].pop("ClientKeyPath", None)
            s["Sync"]["ClientKey"] = key(f"factory-{factory}", "sync-client", tlsmodule)
def mirror_cfg(d):
    for f in d["MirrorCa"]["Factories"]:
        if f.get("FactoryId") == factory:
            f["IssuingCa"]["Key"] = key("mirror", f"issuing-ca-{factory}")
            f["OcspResponder"]["Key"] = key("mirror", f"ocsp-{factory}")
    if tls == "1":
        for section in ("Sync", "Admin"):
            if section in d["MirrorCa"]:
                d["MirrorCa"][section]["ServerKey"] = key("mirror", "sync-server", tlsmodule)
edit("factoryca.json", factory_cfg)
edit("mirrorca.json", mirror_cfg)
PY
# The keys now live in the tokens only.
for k in "issuing-ca-$factory" "journal-signer-$factory" "ocsp-$factory"; do shred -u "$pki/$k.key"; done
[ "$tls" = 1 ] && for k in est-server "factory-$factory-sync-client" mirror-sync-server; do shred -u "$pki/$k.key"; done
echo "demo-hsm: keys of factory $factory and the mirror are in SoftHSM2 ($hsm); PEM copies shredded" >&2
echo "export SOFTHSM2_CONF='$SOFTHSM2_CONF'"
