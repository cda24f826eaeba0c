#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA card (nvcc, meson, ninja and PyTorch with CUDA; no Debian
# -dev packages, no network), in one go and within about 8 minutes:
#   1. env       the machine: nvidia-smi, nvcc, g++, meson, PyTorch, where cuBLAS and cuDNN live
#   2. configure meson setup BUILD -Dcuda=enabled -Dnative=false -Dlibtorch=disabled -Dbench=true, with
#                the header and library copies of .gpu-deps/ (tools/gpu_deps.sh) when present
#      build     ninja: the test binary and gpu_bench first, then everything else
#   3. tests     the whole doctest suite from the repository root (it ends with the CPU-vs-CUDA parity
#                line "cuda parity: N passed, N failed, N skipped")
#   4. bench     experiments/bench/gpu_bench (each case in its own process) and gpu_torch.py, PyTorch's
#                same cases on the same card
#   5. report    OUTDIR/report.md and OUTDIR/results.json (experiments/bench/gpu_report.py)
# Every step is timed and reported even when an earlier one failed. Without a GPU (as on the Debian
# machine) it still builds and tests (the parity cases skip), the benchmarks say "no CUDA device" and
# the report says so.
#
#   tools/gpu_deps.sh                 # once, on the Debian machine: fills .gpu-deps/
#   tools/gpu_check.sh OUTDIR         # on the GPU machine, from anywhere (it cds to the repo root)
#
# The device tool: carry [".gpu-deps"] and run `bash tools/gpu_check.sh "$OUT"`.
# OUTDIR gets at most 6 files: report.md, results.json, gpu_check.log (everything printed here),
# build.log, tests.log, and meson-log.txt when meson setup fails.
# Environment: GPU_CHECK_BUILD (build folder, default build-gpu), GPU_CHECK_BUDGET (seconds for the
# whole check, default 450: each step's timeout leaves room for the steps after it, and the steps'
# caps scale with it; a dry run on a slow 2-core machine wants about 2700), JOBS (default nproc).
# Outside the repository it writes only ${TMPDIR:-/tmp}/plateau-gpu-deps (meson refuses absolute
# include paths inside the source tree, so .gpu-deps is used from a copy there), and
# ${TMPDIR:-/tmp}/plateau-cuda-shim where cuDNN or cuBLAS has no libX.so for the linker, and a scratch
# folder it removes at the end.
# Exit status: 0 when the build and the tests passed and every benchmark that could run ran (a MISS
# of a target is not a failure); 1 otherwise; 2 on bad usage.
set -u

if [ $# -ne 1 ]; then
  echo "usage: tools/gpu_check.sh OUTDIR" >&2
  exit 2
fi
mkdir -p "$1" && OUTDIR=$(cd "$1" && pwd) || exit 2
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
BUILD=${GPU_CHECK_BUILD:-build-gpu}
BUDGET=${GPU_CHECK_BUDGET:-450}
JOBS=${JOBS:-$(nproc)}
T0=$(date +%s)
DEADLINE=$((T0 + BUDGET))
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/plateau-gpu-check.XXXXXX")
STEPS=$SCRATCH/steps.tsv
FACTS=$SCRATCH/facts.txt
: >"$STEPS"
: >"$FACTS"

# ---------------------------------------------------------------------------------------------
# Helpers

elapsed() { echo $(($(date +%s) - T0)); }

step_begin() {
  STEP_NAME=$1
  STEP_T0=$(date +%s.%N)
  echo
  echo "=== [$(elapsed) s] $STEP_NAME ==="
}

# step_end STATUS [NOTE]: one row of the step table.
step_end() {
  local dt
  dt=$(awk -v a="$STEP_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\t%s\t%s\n' "$STEP_NAME" "$1" "$dt" "${2:-}" >>"$STEPS"
  echo "=== $STEP_NAME: $1 in $dt s${2:+ ($2)} ==="
}

# limit CAP RESERVE: a step's timeout in seconds: at most CAP, leaving RESERVE seconds of the budget
# to the steps after it (never under 30 s: a step that cannot finish still says why). CAP and RESERVE
# are for the default budget of 450 s and scale with GPU_CHECK_BUDGET (a slow machine's dry run).
limit() {
  local cap=$(($1 * BUDGET / 450)) reserve=$(($2 * BUDGET / 450))
  local left=$((DEADLINE - $(date +%s) - reserve))
  [ "$left" -lt "$cap" ] || left=$cap
  [ "$left" -ge 30 ] || left=30
  echo "$left"
}

# status_of RC: ok, timed out, or the exit status.
status_of() {
  case $1 in
    0) echo ok ;;
    124 | 137) echo "timed out" ;;
    *) echo "failed (exit $1)" ;;
  esac
}

fact() { echo "$*" | tee -a "$FACTS"; }

# reason_in FILE: the "reason" of a benchmark's JSON (why it had no device).
reason_in() { sed -n 's/^ *"reason": "\(.*\)",\{0,1\}$/\1/p' "$1" | head -n 1; }

# Keeps a log under 15 MB (what comes back from the device machine is at most 16 MB a file).
trim_log() {
  local f=$1
  if [ -f "$f" ] && [ "$(stat -c %s "$f")" -gt 15000000 ]; then
    { head -c 5000000 "$f"; printf '\n... [trimmed by gpu_check.sh] ...\n'; tail -c 5000000 "$f"; } >"$f.tmp"
    mv "$f.tmp" "$f"
  fi
}

# ---------------------------------------------------------------------------------------------
# 1. The machine, and the tools found or stood in for.

# meson and ninja may be Python packages without scripts on PATH; nvcc may be off PATH.
find_tools() {
  mkdir -p "$SCRATCH/bin"
  export PATH="$SCRATCH/bin:$PATH"
  if ! command -v nvcc >/dev/null; then
    for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
      if [ -x "$d/nvcc" ]; then
        export PATH="$PATH:$d"
        break
      fi
    done
  fi
  if ! command -v meson >/dev/null && python3 -c 'import mesonbuild' 2>/dev/null; then
    printf '#!/bin/sh\nexec python3 -m mesonbuild.mesonmain "$@"\n' >"$SCRATCH/bin/meson"
    chmod +x "$SCRATCH/bin/meson"
  fi
  if ! command -v ninja >/dev/null; then
    local bin
    bin=$(python3 -c 'import ninja, os; print(os.path.join(ninja.BIN_DIR, "ninja"))' 2>/dev/null)
    [ -n "$bin" ] && [ -x "$bin" ] && ln -sf "$bin" "$SCRATCH/bin/ninja"
  fi
}

# cuBLAS and cuDNN next to the toolkit, in the system, or (as on machines whose cuDNN came with
# PyTorch's wheels) in Python's site-packages without the unversioned libX.so the linker wants: then a
# folder of links goes on LIBRARY_PATH, the headers' folder on CPATH (g++ and nvcc both read it) and
# the libraries' folder on LD_LIBRARY_PATH, so meson's find_library, the compilers and the programs
# find them. The folder of links keeps its path from run to run: meson writes it into build.ninja.
CUDA_ROOT=""
SHIM=${TMPDIR:-/tmp}/plateau-cuda-shim
find_cuda_libs() {
  CUDA_ROOT=$(nvcc --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ _HERE_=\(.*\)\/bin$/\1/p' | head -n 1)
  [ -n "$CUDA_ROOT" ] || CUDA_ROOT=/usr/local/cuda
  fact "cuda root: $CUDA_ROOT"
  local libdirs=("$CUDA_ROOT/lib64" "$CUDA_ROOT/lib" "$CUDA_ROOT/targets/x86_64-linux/lib")
  local roots=()
  local sp
  for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
    [ -d "$sp/nvidia" ] && roots+=("$sp/nvidia")
  done
  roots+=(/usr/lib/x86_64-linux-gnu /usr/local /opt)
  export LD_LIBRARY_PATH="$CUDA_ROOT/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  rm -rf "$SHIM"
  printf 'int main() { return 0; }\n' >"$SCRATCH/link_test.cpp"
  local lib found
  for lib in cudart cublas cudnn; do
    if g++ "$SCRATCH/link_test.cpp" -o "$SCRATCH/link_test" "${libdirs[@]/#/-L}" "-l$lib" 2>/dev/null; then
      fact "lib$lib: links from the toolkit or the system"
      continue
    fi
    found=$(find "${roots[@]}" -maxdepth 9 \( -name "lib$lib.so" -o -name "lib$lib.so.[0-9]*" \) 2>/dev/null |
      awk '{ print length($0) "\t" $0 }' | sort -n | head -n 1 | cut -f2)
    if [ -z "$found" ]; then
      fact "lib$lib: NOT FOUND (the build will fail)"
      continue
    fi
    mkdir -p "$SHIM/lib"
    ln -sf "$found" "$SHIM/lib/lib$lib.so"
    case ":${LIBRARY_PATH:-}:" in
      *":$SHIM/lib:"*) ;;
      *) export LIBRARY_PATH="$SHIM/lib${LIBRARY_PATH:+:$LIBRARY_PATH}" ;;
    esac
    LD_LIBRARY_PATH="$(dirname "$found"):$LD_LIBRARY_PATH"
    fact "lib$lib: $found (linked through $SHIM/lib)"
  done
  local header dir
  for header in cuda_runtime.h cublas_v2.h cudnn.h; do
    if [ -f "$CUDA_ROOT/include/$header" ] || [ -f "/usr/include/$header" ] || [ -f "/usr/local/include/$header" ]; then
      continue
    fi
    found=$(find "${roots[@]}" -maxdepth 9 -name "$header" 2>/dev/null | awk '{ print length($0) "\t" $0 }' |
      sort -n | head -n 1 | cut -f2)
    if [ -z "$found" ]; then
      fact "$header: NOT FOUND (the build will fail)"
      continue
    fi
    dir=$(dirname "$found")
    export CPATH="$dir${CPATH:+:$CPATH}"
    fact "$header: $found (on CPATH)"
  done
}

check_env() {
  fact "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  fact "host: $(uname -srm), $(nproc) cores, $(free -g 2>/dev/null | awk '/^Mem:/ { print $2 " GiB" }')"
  fact "repo: $ROOT at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (uncommitted changes)')"
  if command -v nvidia-smi >/dev/null; then
    fact "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | head -n 4)"
  else
    fact "gpu: nvidia-smi not found"
  fi
  fact "nvcc: $(command -v nvcc || echo 'not found') $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*, V[0-9.]*')"
  fact "g++: $(g++ --version 2>/dev/null | head -n 1)"
  fact "meson: $(meson --version 2>/dev/null || echo 'not found'); ninja: $(ninja --version 2>/dev/null || echo 'not found')"
  fact "python3: $(command -v python3) $(python3 --version 2>&1)"
  fact "torch: $(python3 -c '
import torch
cuda = torch.cuda.is_available()
print(torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
      "device", torch.cuda.get_device_name(0) if cuda else "none (torch.cuda.is_available() is False)")' 2>&1 | tail -n 1)"
  if command -v nvcc >/dev/null; then
    find_cuda_libs
  else
    fact "nvcc not found: the CUDA build will fail"
  fi
  if [ -d .gpu-deps ]; then
    fact "deps: .gpu-deps ($(head -n 1 .gpu-deps/MANIFEST 2>/dev/null | sed 's/^# //'))"
  else
    fact "deps: no .gpu-deps (the system's Eigen, doctest, nlohmann json and zlib)"
  fi
}

# ---------------------------------------------------------------------------------------------
# 2. Configure and build.

BUILD_OK=0     # the whole project built
TESTS_BUILT=0  # the test binary is up to date
BENCH_BUILT=0  # gpu_bench is up to date (built only where meson found CUDA)
configure_and_build() {
  local opts=(-Dcuda=enabled -Dnative=false -Dlibtorch=disabled -Dbench=true)
  if [ -d .gpu-deps ]; then
    # meson refuses absolute include paths inside the source tree: the copies are used from /tmp.
    local deps=${TMPDIR:-/tmp}/plateau-gpu-deps
    rm -rf "$deps" && cp -a .gpu-deps "$deps"
    opts+=("-Deigen_include=$deps/include" "-Ddoctest_include=$deps/include" "-Djson_include=$deps/include"
      "-Dzlib_dir=$deps/zlib")
  fi
  local setup=(setup)
  if [ -f "$BUILD/build.ninja" ]; then setup=(setup --reconfigure); else rm -rf "$BUILD"; fi
  step_begin configure
  echo "meson ${setup[*]} $BUILD ${opts[*]}"
  meson "${setup[@]}" "$BUILD" "${opts[@]}" >"$OUTDIR/build.log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && [ "${setup[*]}" != setup ]; then
    # A build folder left by another meson version or configuration: start it afresh.
    echo "meson setup --reconfigure failed; configuring a fresh $BUILD"
    rm -rf "$BUILD"
    meson setup "$BUILD" "${opts[@]}" >>"$OUTDIR/build.log" 2>&1
    rc=$?
  fi
  grep -E "^(Library|Has header|Found|Run-time dependency|Message|WARNING|ERROR)|cuda *:|native *:" "$OUTDIR/build.log"
  if [ $rc -ne 0 ]; then
    tail -n 30 "$OUTDIR/build.log"
    cp "$BUILD/meson-logs/meson-log.txt" "$OUTDIR/meson-log.txt" 2>/dev/null && trim_log "$OUTDIR/meson-log.txt"
    step_end "$(status_of $rc)" "see build.log and meson-log.txt"
    step_begin build
    step_end skipped "meson setup failed"
    return
  fi
  step_end ok

  # What the later steps need first, then the rest of the project; -k 0 builds whatever does not
  # depend on a failed command, so a broken test file does not cost the benchmarks.
  step_begin build
  local first=(tests/plateau-tests)
  ninja -C "$BUILD" -t targets all 2>/dev/null | grep -q '^experiments/bench/gpu_bench:' &&
    first+=(experiments/bench/gpu_bench)
  local t rc2=0
  t=$(limit 330 170)
  echo "ninja -C $BUILD -j $JOBS -k 0 ${first[*]}, then everything (timeout $t s)"
  local t_end=$(($(date +%s) + t))
  timeout -k 10 "$t" ninja -C "$BUILD" -j "$JOBS" -k 0 "${first[@]}" >>"$OUTDIR/build.log" 2>&1
  rc=$?
  if [ $rc -ne 124 ] && [ $rc -ne 137 ]; then
    t=$((t_end - $(date +%s)))
    [ "$t" -ge 10 ] || t=10
    timeout -k 10 "$t" ninja -C "$BUILD" -j "$JOBS" -k 0 >>"$OUTDIR/build.log" 2>&1
    rc2=$?
  fi
  [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && BUILD_OK=1
  if [ $rc -eq 0 ]; then
    TESTS_BUILT=1
    [ ${#first[@]} -eq 2 ] && BENCH_BUILT=1
  else
    # Some of the first targets failed: use only those that are up to date, not a stale binary.
    built tests/plateau-tests && TESTS_BUILT=1
    built experiments/bench/gpu_bench && BENCH_BUILT=1
  fi
  trim_log "$OUTDIR/build.log"
  if [ $BUILD_OK -ne 1 ]; then
    echo "--- the first errors:"
    grep -n -m 20 -A 12 -E "^FAILED:|error:" "$OUTDIR/build.log" | head -n 120
    echo "--- the end of build.log:"
    tail -n 20 "$OUTDIR/build.log"
  fi
  local built_note="test binary built, "
  [ $TESTS_BUILT -eq 1 ] || built_note="test binary NOT built, "
  if [ $BENCH_BUILT -eq 1 ]; then built_note+="gpu_bench built"; else built_note+="gpu_bench NOT built"; fi
  if [ $BUILD_OK -eq 1 ]; then
    step_end ok "$built_note"
  else
    step_end "$(status_of $((rc != 0 ? rc : rc2)))" "$built_note; see build.log"
  fi
}

# built TARGET: the target exists and is up to date (not a stale binary of an earlier run).
built() {
  [ -x "$BUILD/$1" ] && ninja -C "$BUILD" -n "$1" 2>/dev/null | grep -q "no work to do"
}

# ---------------------------------------------------------------------------------------------
# 3. The test suite, from the repository root.

TESTS_OK=0
run_tests() {
  step_begin tests
  local bin=./$BUILD/tests/plateau-tests
  if [ $TESTS_BUILT -ne 1 ]; then
    echo "no test binary: the build failed" | tee "$OUTDIR/tests.log"
    step_end skipped "no test binary"
    return
  fi
  local t
  t=$(limit 240 110)
  # --duration: each test case's time as it ends, so a timeout shows how far the suite got.
  echo "$bin --duration=true (timeout $t s)"
  timeout -k 10 "$t" "$bin" --duration=true >"$OUTDIR/tests.log" 2>&1
  local rc=$?
  trim_log "$OUTDIR/tests.log"
  [ $rc -eq 0 ] && TESTS_OK=1
  grep -E "ERROR:|exceeded time limit|^\[doctest\]|cuda parity:" "$OUTDIR/tests.log" | head -n 100
  local parity
  parity=$(grep -E "cuda parity:" "$OUTDIR/tests.log" | tail -n 1)
  step_end "$(status_of $rc)" "${parity:-no parity line}"
}

# ---------------------------------------------------------------------------------------------
# 4. The benchmarks: ours (one process per case, so that one crash costs one case), then PyTorch's.

CASES=(matmul_4096_f32 matmul_4096_tf32 conv3x3_64_b256 host_overhead_per_op_us resnet18_step_b256)
BENCH_OK=1
run_bench_ours() {
  step_begin bench_ours
  local bin=./$BUILD/experiments/bench/gpu_bench
  if [ $BENCH_BUILT -ne 1 ]; then
    echo "no gpu_bench: the build failed or CUDA was not found"
    BENCH_OK=0
    step_end skipped "no gpu_bench binary"
    return
  fi
  local case t rc failed=()
  for case in "${CASES[@]}"; do
    t=$(limit 90 75)
    timeout -k 10 "$t" "$bin" --only "$case" --json "$SCRATCH/ours_$case.json"
    rc=$?
    if grep -q '"available": false' "$SCRATCH/ours_$case.json" 2>/dev/null; then
      step_end "no CUDA device" "$(reason_in "$SCRATCH/ours_$case.json")"
      return
    fi
    if [ $rc -ne 0 ]; then
      echo "gpu_bench --only $case: $(status_of $rc)"
      failed+=("$case")
    fi
  done
  if [ ${#failed[@]} -eq 0 ]; then
    step_end ok
  else
    BENCH_OK=0
    step_end failed "${failed[*]}"
  fi
}

run_bench_torch() {
  step_begin bench_torch
  local t
  t=$(limit 150 15)
  PYTHONUNBUFFERED=1 timeout -k 10 "$t" python3 experiments/bench/gpu_torch.py --json "$SCRATCH/torch.json"
  local rc=$?
  if grep -q '"available": false' "$SCRATCH/torch.json" 2>/dev/null; then
    local why
    why=$(reason_in "$SCRATCH/torch.json")
    case $why in
      "no PyTorch"*) step_end "no PyTorch" "$why" ;;
      *) step_end "no CUDA device" "$why" ;;
    esac
  else
    [ $rc -eq 0 ] || BENCH_OK=0
    step_end "$(status_of $rc)"
  fi
}

# ---------------------------------------------------------------------------------------------
# 5. The report.

write_report() {
  echo
  echo "=== [$(elapsed) s] report ==="
  local ours=()
  local f
  for f in "$SCRATCH"/ours_*.json; do [ -f "$f" ] && ours+=(--ours "$f"); done
  if ! python3 experiments/bench/gpu_report.py "${ours[@]}" --torch "$SCRATCH/torch.json" \
    --json "$OUTDIR/results.json" --steps "$STEPS" --facts "$FACTS" --tests-log "$OUTDIR/tests.log" \
    --report "$OUTDIR/report.md" >"$SCRATCH/lines.txt"; then
    # Without the Python report, the step table and the facts at least.
    {
      echo "# GPU check (gpu_report.py failed; raw step table)"
      echo
      echo '```'
      cat "$STEPS" "$FACTS"
      grep -E "^\[doctest\]|cuda parity:" "$OUTDIR/tests.log" 2>/dev/null
      echo '```'
    } >"$OUTDIR/report.md"
  fi
  echo
  cat "$OUTDIR/report.md"
}

main() {
  echo "gpu_check.sh: $ROOT -> $OUTDIR (build folder $BUILD, budget $BUDGET s, $JOBS jobs)"
  step_begin env
  find_tools
  check_env
  step_end ok
  configure_and_build
  run_tests
  run_bench_ours
  run_bench_torch
  write_report
  echo
  echo "gpu_check.sh: done in $(elapsed) s; OUTDIR holds: $(cd "$OUTDIR" && echo *)"
  [ $BUILD_OK -eq 1 ] && [ $TESTS_OK -eq 1 ] && [ $BENCH_OK -eq 1 ]
}

main 2>&1 | tee "$OUTDIR/gpu_check.log"
status=${PIPESTATUS[0]}
rm -rf "$SCRATCH"
exit "$status"
