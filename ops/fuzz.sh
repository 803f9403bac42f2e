#!/usr/bin/env bash
# Fuzzes one parser (or all, in turn) with afl-fuzz over SharpFuzz-instrumented assemblies.
#   ops/fuzz.sh TARGET SECONDS      run one target (see: dotnet fuzz/OfflinePki.Fuzz/bin/.../OfflinePki.Fuzz.dll list)
#   ops/fuzz.sh all SECONDS         run every target for SECONDS each (or a list: ops/fuzz.sh est,config SECONDS)
# Seeds come from fuzz/corpus/TARGET; findings go to a temp dir (printed). At the end each run prints executions,
# coverage (AFL map density, corpus paths), crashes and hangs from fuzzer_stats; the exit code is 1 if any crash or
# hang was saved. Needs afl++ (apt-get install afl++) and the SharpFuzz.CommandLine 2.3.0 dotnet tool (installed into
# ~/.cache/offlinepki-fuzz/tools on first use). See docs/testing/fuzzing.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ $# -ne 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: ops/fuzz.sh TARGET[,TARGET...]|all SECONDS" >&2
  exit 2
fi
target=$1
seconds=$2

command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install -y afl++" >&2; exit 2; }
tools=${OFFLINEPKI_FUZZ_TOOLS:-$HOME/.cache/offlinepki-fuzz/tools}
if [ ! -x "$tools/sharpfuzz" ]; then
  dotnet tool install --tool-path "$tools" SharpFuzz.CommandLine --version 2.3.0 >/dev/null
fi

# Build, then instrument a copy (the build output stays uninstrumented for the replay test).
dotnet build fuzz/OfflinePki.Fuzz/OfflinePki.Fuzz.csproj -c Release -nologo -v quiet >/dev/null
work=$(mktemp -d /tmp/offlinepki-fuzz.XXXXXX)
cp -r fuzz/OfflinePki.Fuzz/bin/Release/net10.0 "$work/bin"
for dll in OfflinePki.Core OfflinePki.Factory OfflinePki.Mirror OfflinePki.Device FactoryCa MirrorCa; do
  "$tools/sharpfuzz" "$work/bin/$dll.dll" >/dev/null
done

export AFL_SKIP_BIN_CHECK=1               # the binary is dotnet; the instrumentation is in the managed assemblies
export AFL_SKIP_CPUFREQ=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_UI=1
export AFL_NO_AFFINITY=1                  # shared build machines: do not pin a core
export AFL_FORKSRV_INIT_TMOUT=60000       # the .NET runtime starts slowly under load
export AFL_SHUFFLE_QUEUE=1
export DOTNET_TieredPGO=0

status=0
run_one() {
  local t=$1 out="$work/out-$1"
  if [ ! -d "fuzz/corpus/$t" ]; then
    echo "$t: no seed corpus fuzz/corpus/$t" >&2
    status=1
    return
  fi
  afl-fuzz -i "fuzz/corpus/$t" -o "$out" -t 5000 -m none -V "$seconds" -- dotnet "$work/bin/OfflinePki.Fuzz.dll" "$t" >"$work/afl-$t.log" 2>&1 || {
    echo "$t: afl-fuzz failed, see $work/afl-$t.log" >&2
    tail -n 20 "$work/afl-$t.log" >&2
    status=1
    return
  }
  local stats="$out/default/fuzzer_stats"
  val() { awk -F' *: *' -v k="$1" '$1==k {print $2}' "$stats"; }
  local crashes hangs
  crashes=$(val saved_crashes); hangs=$(val saved_hangs)
  printf '%-14s execs=%s execs/s=%s paths=%s map=%s crashes=%s hangs=%s findings=%s\n' \
    "$t" "$(val execs_done)" "$(val execs_per_sec)" "$(val corpus_count)" "$(val bitmap_cvg)" "$crashes" "$hangs" "$out/default"
  if [ "${crashes:-0}" != 0 ] || [ "${hangs:-0}" != 0 ]; then
    status=1
  fi
}

if [ "$target" = all ]; then
  # list from the uninstrumented build: instrumented code must only run under afl-fuzz
  for t in $(dotnet fuzz/OfflinePki.Fuzz/bin/Release/net10.0/OfflinePki.Fuzz.dll list); do
    run_one "$t"
  done
else
  for t in ${target//,/ }; do             # one target, or a comma-separated list
    run_one "$t"
  done
fi
exit $status
