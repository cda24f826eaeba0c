#!/usr/bin/env bash
# Fills the git-ignored folder .gpu-deps/ with copies of the headers and libraries that the GPU
# machine lacks (it has nvcc, meson, ninja and PyTorch, but no Debian -dev packages and no network),
# so that tools/gpu_check.sh can build Plateau there. Run it here, on the Debian machine:
#
#   tools/gpu_deps.sh            # then carry .gpu-deps to the GPU machine and run tools/gpu_check.sh
#
# Layout (about 9 MB):
#   .gpu-deps/include/Eigen/          from libeigen3-dev     (-Deigen_include)
#   .gpu-deps/include/doctest/        from doctest-dev       (-Ddoctest_include)
#   .gpu-deps/include/nlohmann/       from nlohmann-json3-dev (-Djson_include)
#   .gpu-deps/zlib/include/zlib.h, zconf.h and zlib/lib/libz.so.1 + libz.so -> libz.so.1
#                                     from zlib1g-dev        (-Dzlib_dir)
#   .gpu-deps/MANIFEST                the packages and versions copied
# Eigen's unsupported/ modules are left out: nothing in Plateau includes them.
set -euo pipefail
cd "$(dirname "$0")/.."

need=(/usr/include/eigen3/Eigen/Core /usr/include/doctest/doctest.h /usr/include/nlohmann/json.hpp
      /usr/include/zlib.h /usr/include/zconf.h)
missing=()
for f in "${need[@]}"; do [ -e "$f" ] || missing+=("$f"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "gpu_deps.sh: missing ${missing[*]}" >&2
  echo "gpu_deps.sh: install them first: apt-get install libeigen3-dev doctest-dev nlohmann-json3-dev zlib1g-dev" >&2
  exit 1
fi
# The shared library behind the linker's libz.so (a symlink to libz.so.1.2.x).
libz=$(readlink -f "$(g++ -print-file-name=libz.so)")
if [ ! -f "$libz" ]; then
  echo "gpu_deps.sh: libz.so not found by g++ (install zlib1g-dev)" >&2
  exit 1
fi

dest=.gpu-deps
rm -rf "$dest"
mkdir -p "$dest/include" "$dest/zlib/include" "$dest/zlib/lib"
cp -a /usr/include/eigen3/Eigen "$dest/include/"
cp -a /usr/include/doctest /usr/include/nlohmann "$dest/include/"
cp /usr/include/zlib.h /usr/include/zconf.h "$dest/zlib/include/"
cp "$libz" "$dest/zlib/lib/libz.so.1"
ln -s libz.so.1 "$dest/zlib/lib/libz.so"

{
  echo "# Copied by tools/gpu_deps.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(uname -n)"
  for p in libeigen3-dev doctest-dev nlohmann-json3-dev zlib1g-dev; do
    echo "$p $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo '?')"
  done
  echo "libz $libz"
} >"$dest/MANIFEST"

echo "gpu_deps.sh: $dest holds $(du -sh "$dest" | cut -f1) ($(find "$dest" -type f | wc -l) files); carry it with the repo"
