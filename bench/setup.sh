#!/usr/bin/env bash
# Installs the native allocators the benchmarks compare against (Debian packages):
#   libmimalloc2.0       -> libmimalloc.so.2          (mi_malloc / mi_free)
#   libjemalloc2         -> libjemalloc.so.2          (unprefixed malloc / free)
#   libtcmalloc-minimal4 -> libtcmalloc_minimal.so.4  (tc_malloc / tc_free)
# A package that cannot be installed is reported and skipped: the benchmarks then print
# "<name>: not installed" and leave that allocator out rather than fake it.
set -u

packages=(libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4)

if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench/setup.sh: apt-get not found; install ${packages[*]} by other means (benchmarks skip missing ones)" >&2
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "bench/setup.sh: not root and no sudo; cannot install ${packages[*]} (benchmarks skip missing ones)" >&2
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# One update, then install everything at once; if that fails (one name unknown on this release),
# try each package alone so the others still get installed.
if ! $sudo apt-get update -qq; then
    echo "bench/setup.sh: apt-get update failed; trying to install from the existing package lists" >&2
fi
if ! $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"; then
    for p in "${packages[@]}"; do
        $sudo apt-get install -y -qq --no-install-recommends "$p" \
            || echo "bench/setup.sh: could not install $p; its benchmarks will be skipped" >&2
    done
fi

for lib in libmimalloc.so.2 libjemalloc.so.2 libtcmalloc_minimal.so.4; do
    if ldconfig -p 2>/dev/null | grep -q "$lib"; then echo "$lib: installed"; else echo "$lib: not installed"; fi
done
exit 0
