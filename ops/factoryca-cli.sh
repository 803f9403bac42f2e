# Sourced by the ops scripts that set up PKCS#11 tokens: `factoryca ARGS...` runs the FactoryCa CLI (its `ceremony`
# verbs drive the token through PKCS#11 and read PINs from files, so no PIN reaches a command line).
# OFFLINEPKI_FACTORYCA=/path/FactoryCa.dll picks the binary; else the repository's Release build (built on first use).
factoryca() {
  local repo dll
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  dll=${OFFLINEPKI_FACTORYCA:-$repo/src/FactoryCa/bin/Release/net10.0/FactoryCa.dll}
  [ -f "$dll" ] || dotnet build "$repo/src/FactoryCa" -c Release >&2
  dotnet "$dll" "$@"
}
