#!/usr/bin/env bash
# Fuzzes Slub.NET's hostile-input parsers with afl-fuzz (Debian's afl++) through SharpFuzz.
#
#   fuzz/run.sh [seconds-per-target] [target...]      default: 120 s, every target of Slub.Fuzz --list
#
# Installs what is missing (afl++ from apt, the sharpfuzz instrumentation tool from NuGet), builds
# fuzz/Slub.Fuzz in Release, instruments the library assemblies in its output, then runs afl-fuzz on each
# target for the given time (afl-fuzz -V), one after another. Findings land in fuzz/findings/<target>/
# (git-ignored); each crash input is replayed through the harness so its exception is printed. Exit code
# 1 if any target found a crash. Keep the time short on shared machines: afl-fuzz takes one core.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-120}"
shift || true
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PATH="$PATH:$HOME/.dotnet/tools"

if ! command -v afl-fuzz >/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null
    else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null; fi
fi
if ! command -v sharpfuzz >/dev/null; then
    dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0 >/dev/null
fi

out="$PWD/Slub.Fuzz/bin/fuzz"        # instrumented: only runs under afl-fuzz (Fuzzer.Run sets up the trace map)
plain="$PWD/Slub.Fuzz/bin/replay"    # uninstrumented: lists targets and replays findings
rm -rf "$out" "$plain"
dotnet publish Slub.Fuzz -c Release -o "$plain" >/dev/null
cp -r "$plain" "$out"
# Instrument only our code: the library (and the CLI when a target uses it). SharpFuzz itself and the
# harness stay uninstrumented.
for dll in Slub.dll Slub.Cli.dll; do
    [ -f "$out/$dll" ] && sharpfuzz "$out/$dll" >/dev/null
done

if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(dotnet "$plain/Slub.Fuzz.dll" --list); fi

# afl-fuzz checks that make no sense for a .NET target or on a shared machine.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
       AFL_NO_AFFINITY=1 AFL_SKIP_CRASHES=1 AFL_FAST_CAL=1
status=0
for t in "${targets[@]}"; do
    findings="$PWD/findings/$t"
    rm -rf "$findings"
    mkdir -p "$findings"
    echo "== $t: ${seconds}s"
    # On a loaded machine the dry run occasionally sees an empty trace map ("No instrumentation detected");
    # one retry has always been enough.
    ok=0
    for attempt in 1 2; do
        rm -rf "$findings/default"
        if afl-fuzz -V "$seconds" -t 10000 -m none -x dict/slub.dict -i "corpus/$t" -o "$findings" -- dotnet "$out/Slub.Fuzz.dll" "$t" \
            > "$findings/afl.log" 2>&1; then ok=1; break; fi
    done
    if [ "$ok" = 0 ]; then echo "afl-fuzz failed, see $findings/afl.log"; tail -5 "$findings/afl.log"; status=1; continue; fi
    stats="$findings/default/fuzzer_stats"
    grep -E '^(execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|run_time) ' "$stats" | sed 's/^/   /'
    crashes=("$findings"/default/crashes/id:*)
    if [ -e "${crashes[0]}" ]; then
        status=1
        echo "   crashes (replayed through the harness):"
        dotnet "$plain/Slub.Fuzz.dll" "$t" "${crashes[@]}" 2>&1 | sed 's/^/     /' || true
    fi
done
exit $status
