#!/bin/sh
# Installs Plateau into a temporary prefix and builds examples/external against it with
# dependency('plateau'), timing the experiment's compile: what a user outside the tree does.
#   tools/check_external.sh [BUILD_DIR]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-install}
prefix=$(mktemp -d /tmp/plateau-prefix.XXXXXX)
ext=$(mktemp -d /tmp/plateau-external.XXXXXX)
trap 'rm -rf "$prefix" "$ext"' EXIT
meson setup "$build" --prefix="$prefix" -Dcuda=disabled >/dev/null 2>&1 || meson configure "$build" --prefix="$prefix" >/dev/null
ninja -C "$build" install >/dev/null
pc=$(dirname "$(find "$prefix" -name plateau.pc | head -1)")
meson setup "$ext" "$root/examples/external" --pkg-config-path "$pc" >/dev/null
start=$(date +%s.%N)
ninja -C "$ext" >/dev/null
end=$(date +%s.%N)
echo "examples/external built against the installed Plateau in $(echo "$end - $start" | bc) s (compile and link)"
LD_LIBRARY_PATH="$(dirname "$pc")" "$ext/my_experiment" list
LD_LIBRARY_PATH="$(dirname "$pc")" "$ext/my_experiment" run fit_line --out "$ext/run" --no-plot
