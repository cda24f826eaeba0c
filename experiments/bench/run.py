#!/usr/bin/env python3
"""Plateau's benchmark figures (make bench): runs bench_plateau and the libtorch baseline.

Prints one line per figure on stdout,

    name ours baseline ratio target PASS|MISS

and writes every raw measurement to experiments/bench/results/<YYYY-MM-DD>[-N].json with the
commit, CPU and compiler. Progress goes to stderr. Python standard library only.

Training steps are compared by interleaved repetitions: each round runs, for every model and
thread count, our step and libtorch's as fresh subprocesses (their order alternating between
rounds), and a figure is the median over rounds of each run's median step time. See README.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

MODELS = ("mlp_784", "mnist_cnn")
THREADS = (1, 2)
# Ratio targets ours / libtorch, from the issue.
TRAIN_TARGETS = {("mlp_784", 1): 0.9, ("mlp_784", 2): 1.0, ("mnist_cnn", 1): 1.0, ("mnist_cnn", 2): 1.0}
OVERHEAD_TARGET_NS = 1000.0
GEMM_TARGET = 0.70
# (steps, warmup) per model: about a second of timed work per run for the slower implementation.
STEPS = {"mlp_784": (30, 5), "mnist_cnn": (8, 2)}
# The derivative toolkit (issue 3), one thread: (steps, warmup) per measured quantity.
TOOLKIT_STEPS = {"mlp_784": (9, 2), "mnist_cnn": (5, 1)}
HVP_TARGET = 2.5            # (forward + hvp) / (forward + backward), and at most libtorch's ratio
PER_EXAMPLE_TARGET = 2.0    # mnist_cnn: (forward + per_example_grads) / (forward + backward)
PER_EXAMPLE_WRITE_TARGET = 1.5  # mlp_784: per_example_grads / time to write its 343 MB result
NORMS_TARGET = 1.2          # (forward + per_example_grad_norms) / (forward + backward)
HVP_MEMORY_TARGET = 2.0     # peak bytes of hvp / peak bytes of the gradient
# The sharpness-aware family (issue 5), one thread: a step of each method / a plain SGD step.
# One process per model interleaves the methods over SAM_ROUNDS rounds; in each round every method
# takes `warmup` untimed steps, then `steps` timed ones: (steps, warmup) per model.
SAM_TARGETS = {"sam": 2.05, "msam4": 2.1, "hero": 3.5}
SAM_FIELDS = {"sam": "sam_ms", "msam4": "msam_ms", "hero": "hero_ms"}
SAM_STEPS = {"mlp_784": (10, 2), "mnist_cnn": (2, 1)}
SAM_ROUNDS = 21  # the issue asks for at least 21 interleaved repetitions


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_json(cmd, env_extra, timeout=300):
    """Runs cmd with env_extra added, returns its one JSON line (raises on failure)."""
    env = dict(os.environ)
    env.update(env_extra)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.stderr.strip():
        for line in proc.stderr.strip().splitlines():
            log(f"  {os.path.basename(cmd[0])}: {line}")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    lines = [l for l in proc.stdout.splitlines() if l.strip().startswith("{")]
    if len(lines) != 1:
        raise RuntimeError(f"{' '.join(cmd)} printed {len(lines)} JSON lines, expected 1")
    return json.loads(lines[0])


def shell(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(build):
    info = {"date": datetime.date.today().isoformat(), "time": datetime.datetime.now().isoformat(timespec="seconds")}
    commit = shell(["git", "rev-parse", "HEAD"])
    info["commit"] = commit if re.fullmatch(r"[0-9a-f]{40}", commit) else None
    info["dirty"] = bool(shell(["git", "status", "--porcelain", "--untracked-files=no"]))
    # The first processor's entry of /proc/cpuinfo: model name, family/model numbers (a VM may show
    # only "AMD EPYC"; the numbers tell the generation) and the SIMD flags that matter here.
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    info["cpu"] = fields.get("model name") or platform.processor() or platform.machine()
    info["cpu_family_model"] = f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}"
    flags = set(fields.get("flags", "").split())
    info["cpu_simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16") if f in flags]
    info["cores"] = os.cpu_count()
    info["kernel"] = platform.release()
    info["loadavg_start"] = os.getloadavg()[0]
    # The compiler the build directory uses (as meson recorded it for bench_plateau), and its options.
    compiler = ["c++"]
    try:
        with open(os.path.join(build, "meson-info", "intro-targets.json")) as f:
            for target in json.load(f):
                if target["name"] == "bench_plateau":
                    compiler = next(s["compiler"] for s in target["target_sources"] if s.get("language") == "cpp")
    except (OSError, KeyError, ValueError, StopIteration):
        pass
    version = shell(compiler + ["--version"])
    info["compiler"] = version.splitlines()[0] if version else " ".join(compiler)
    try:
        with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
        info["build_options"] = {k: opts.get(k) for k in ("buildtype", "optimization", "native", "b_ndebug")}
    except (OSError, KeyError, ValueError):
        info["build_options"] = None
    return info


def cpu_busy_fraction(seconds=1.0):
    """Share of all cores' time spent busy over the next `seconds` (the load average lags by minutes)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values[:8]), values[3] + values[4]  # total, idle + iowait
    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def blas_of(binary):
    """The file libblas.so.3 resolves to for binary (OpenBLAS or Debian's slow reference BLAS)."""
    out = shell(["ldd", binary])
    m = re.search(r"libblas\.so\.3 => (\S+)", out)
    return os.path.realpath(m.group(1)) if m else None


def fmt_ms(v):
    return f"{v:.3f}ms" if v is not None else "-"


def toolkit_lines(toolkit, verdict):
    """The derivative toolkit's figures. Each ratio is taken within one process (the same model, data
    and moment), then the median over rounds."""
    lines = []

    def ratio_of(runs, num, den):
        return statistics.median(x[num] / x[den] for x in runs) if runs else None

    for model in MODELS:
        entry = toolkit.get(model, {"ours": [], "libtorch": []})
        ours, base = entry["ours"], entry["libtorch"]
        tag = f"{model}_t1"
        if not ours:
            lines.append(f"hvp_over_grad_{tag} - - - <={HVP_TARGET} {verdict(False)} (failed)")
            continue
        hvp = ratio_of(ours, "hvp_ms", "grad_ms")
        torch_hvp = ratio_of(base, "hvp_ms", "grad_ms")
        entry["hvp_over_grad"], entry["libtorch_hvp_over_grad"] = hvp, torch_hvp
        if torch_hvp is None:
            lines.append(f"hvp_over_grad_{tag} {hvp:.3f} - - <={HVP_TARGET}&<=libtorch {verdict(False)} (no libtorch)")
        else:
            ok = hvp <= HVP_TARGET and hvp <= torch_hvp
            lines.append(f"hvp_over_grad_{tag} {hvp:.3f} {torch_hvp:.3f} {hvp / torch_hvp:.3f} "
                         f"<={HVP_TARGET}&<=libtorch {verdict(ok)}")
        if model == "mnist_cnn":
            pe = ratio_of(ours, "per_example_ms", "grad_ms")
            lines.append(f"per_example_over_grad_{tag} {pe:.3f} - {pe:.3f} <={PER_EXAMPLE_TARGET} "
                         f"{verdict(pe <= PER_EXAMPLE_TARGET)}")
        else:
            pe_ms = statistics.median(x["per_example_ms"] for x in ours)
            write_ms = statistics.median(x["write_ms"] for x in ours)
            mb = ours[0]["per_example_bytes"] / 1e6
            r = ratio_of(ours, "per_example_ms", "write_ms")
            lines.append(f"per_example_over_write_{mb:.0f}MB_{tag} {fmt_ms(pe_ms)} {fmt_ms(write_ms)} {r:.3f} "
                         f"<={PER_EXAMPLE_WRITE_TARGET} {verdict(r <= PER_EXAMPLE_WRITE_TARGET)}")
            if base:
                loop_ms = statistics.median(x["per_example_loop_ms"] for x in base)
                lines.append(f"per_example_vs_libtorch_loop_{tag} {fmt_ms(pe_ms)} {fmt_ms(loop_ms)} "
                             f"{pe_ms / loop_ms:.3f} <1 {verdict(pe_ms < loop_ms)}")
            else:
                lines.append(f"per_example_vs_libtorch_loop_{tag} {fmt_ms(pe_ms)} - - <1 {verdict(False)} (no libtorch)")
        norms = ratio_of(ours, "norms_ms", "grad_ms")
        lines.append(f"per_example_norms_over_grad_{tag} {norms:.3f} - {norms:.3f} <={NORMS_TARGET} "
                     f"{verdict(norms <= NORMS_TARGET)}")
        hvp_mb = statistics.median(x["hvp_peak_bytes"] for x in ours) / 1e6
        grad_mb = statistics.median(x["grad_peak_bytes"] for x in ours) / 1e6
        lines.append(f"hvp_peak_memory_over_grad_{model} {hvp_mb:.1f}MB {grad_mb:.1f}MB {hvp_mb / grad_mb:.3f} "
                     f"<={HVP_MEMORY_TARGET} {verdict(hvp_mb / grad_mb <= HVP_MEMORY_TARGET)}")
    return lines


def sam_lines(sam, verdict):
    """The sharpness-aware family's figures: each method's median step time over the rounds of one
    process (methods interleaved round by round) over plain SGD's."""
    lines = []
    for model in MODELS:
        res = sam.get(model)
        for method, target in SAM_TARGETS.items():
            name = f"{method}_step_over_sgd_step_{model}_t1"
            if not res:
                lines.append(f"{name} - - - <={target} {verdict(False)} (failed)")
                continue
            ours, sgd = res[SAM_FIELDS[method]], res["sgd_ms"]
            ratio = ours / sgd
            lines.append(f"{name} {fmt_ms(ours)} {fmt_ms(sgd)} {ratio:.3f} <={target} {verdict(ratio <= target)}")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="meson build directory (configured with -Dbench=true)")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds of every training run (default 7)")
    ap.add_argument("--only", choices=("overhead", "gemm", "train", "toolkit", "sam"), action="append",
                    help="run only these figures (repeatable; default all)")
    ap.add_argument("--sam-rounds", type=int, default=SAM_ROUNDS,
                    help=f"interleaved rounds inside each sam process (default {SAM_ROUNDS}, the issue's minimum)")
    ap.add_argument("--results", default=os.path.join(HERE, "results"), help="folder for the JSON results file")
    ap.add_argument("--no-save", action="store_true", help="do not write the results file")
    ap.add_argument("--torch-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for the libtorch runs (repeatable), e.g. OMP_WAIT_POLICY=passive; "
                         "recorded in the results file")
    ap.add_argument("--strict", action="store_true", help="exit with status 1 when a figure is a MISS")
    args = ap.parse_args()

    if args.rounds < 1 or args.sam_rounds < 1:
        sys.exit("run.py: --rounds and --sam-rounds must be at least 1")
    build = args.build if os.path.isabs(args.build) else os.path.join(ROOT, args.build)
    ours = os.path.join(build, "experiments", "bench", "bench_plateau")
    torch = os.path.join(build, "experiments", "bench", "torch_baseline")
    if not os.access(ours, os.X_OK):
        sys.exit(f"run.py: {ours} not found; configure with -Dbench=true and build (make bench does both)")
    have_torch = os.access(torch, os.X_OK)
    figures = set(args.only or ("overhead", "gemm", "train", "toolkit", "sam"))
    torch_env_extra = {}
    for item in args.torch_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            sys.exit(f"run.py: --torch-env wants NAME=VALUE, got '{item}'")
        torch_env_extra[name] = value

    info = machine_info(build)
    raw = {"overhead": None, "fma_peak": [], "gemm": [], "train": {}, "toolkit": {}, "sam": {}}
    info["libtorch_blas"] = blas_of(torch) if have_torch else None
    info["busy_start"] = cpu_busy_fraction()
    log(f"cpu: {info['cpu']}, {info['cores']} cores; compiler {info['compiler']}")
    if info["busy_start"] is not None and info["busy_start"] > 0.05:
        log(f"warning: other processes keep the CPUs {100 * info['busy_start']:.0f}% busy: timings will be noisy "
            "(the N = 2 runs, libtorch's spinning OpenMP threads most)")
    if not have_torch:
        log(f"warning: {torch} not built (libtorch-dev missing?): training figures get no baseline")
    elif info["libtorch_blas"] and "openblas" not in info["libtorch_blas"]:
        log(f"warning: libtorch resolves libblas.so.3 to {info['libtorch_blas']}, not OpenBLAS: install "
            "libopenblas0-pthread or the baseline is far slower than it should be")
    errors = []

    def attempt(what, fn):
        try:
            return fn()
        except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as e:
            log(f"error: {what}: {e}")
            errors.append(f"{what}: {e}")
            return None

    if "overhead" in figures:
        log("overhead: 1000 alternating batches of 10^3 add calls per mode")
        cmd = [ours, "overhead", "--calls", "1000", "--batches", "1000"]
        raw["overhead"] = attempt("overhead", lambda: run_json(cmd, {"PLATEAU_NUM_THREADS": "1"}))
        o = raw["overhead"]
        if o:
            log(f"  add per call: {o['grad_ns']:.0f} ns recorded, {o['nograd_ns']:.0f} ns under NoGradGuard; "
                f"freeing a result: {o['grad_free_ns']:.0f} ns / {o['nograd_free_ns']:.0f} ns (not in the figure)")

    t_start = time.time()
    if "sam" in figures:
        for model in MODELS:
            steps, warmup = SAM_STEPS[model]
            log(f"sam {model}: sgd, sam, msam, hero interleaved, {args.sam_rounds} rounds of {warmup} + {steps} steps")
            cmd = [ours, "sam", "--model", model, "--steps", str(steps), "--warmup", str(warmup),
                   "--rounds", str(args.sam_rounds)]
            t_sam = time.time()
            res = attempt(f"sam {model}", lambda: run_json(cmd, {"PLATEAU_NUM_THREADS": "1"}, timeout=900))
            if res:
                raw["sam"][model] = res
                log(f"  {time.time() - t_sam:.0f} s; median step: sgd {res['sgd_ms']:.2f} ms, "
                    f"sam {res['sam_ms']:.2f} ms, msam {res['msam_ms']:.2f} ms, hero {res['hero_ms']:.2f} ms")
    for r in range(args.rounds if figures & {"gemm", "train", "toolkit"} else 0):
        log(f"round {r + 1}/{args.rounds}")
        if "gemm" in figures:
            env = {"PLATEAU_NUM_THREADS": "1"}
            res = attempt("fma_peak", lambda: run_json([ours, "fma_peak", "--repeats", "5"], env))
            if res:
                raw["fma_peak"].append(res)
            res = attempt("gemm", lambda: run_json([ours, "gemm", "--size", "1024", "--repeats", "7"], env))
            if res:
                raw["gemm"].append(res)
        if "toolkit" in figures:
            for model in MODELS:
                steps, warmup = TOOLKIT_STEPS[model]
                entry = raw["toolkit"].setdefault(model, {"ours": [], "libtorch": []})
                runs = [("ours", [ours, "toolkit", "--model", model], {"PLATEAU_NUM_THREADS": "1"})]
                if have_torch:
                    runs.append(("libtorch", [torch, "--task", "toolkit", "--model", model, "--threads", "1"],
                                 {"OPENBLAS_CORETYPE": "SkylakeX", "OPENBLAS_NUM_THREADS": "1",
                                  "OMP_NUM_THREADS": "1", **torch_env_extra}))
                if r % 2 == 1:
                    runs.reverse()
                for impl, cmd, env in runs:
                    cmd = cmd + ["--steps", str(steps), "--warmup", str(warmup)]
                    res = attempt(f"{impl} toolkit {model}", lambda: run_json(cmd, env))
                    if res:
                        entry[impl].append(res)
                        log(f"  toolkit {model} {impl}: grad {res['grad_ms']:.2f} ms, hvp {res['hvp_ms']:.2f} ms")
        if "train" not in figures:
            continue
        for model in MODELS:
            steps, warmup = STEPS[model]
            for n in THREADS:
                key = f"{model}_t{n}"
                entry = raw["train"].setdefault(key, {"ours": [], "libtorch": []})
                runs = [("ours", [ours, "train"], {"PLATEAU_NUM_THREADS": str(n)})]
                if have_torch:
                    runs.append(("libtorch", [torch],
                                 {"OPENBLAS_CORETYPE": "SkylakeX", "OPENBLAS_NUM_THREADS": str(n),
                                  "OMP_NUM_THREADS": str(n), **torch_env_extra}))
                # Alternate which implementation goes first, so neither always runs on a cooler core.
                if r % 2 == 1:
                    runs.reverse()
                for impl, cmd, env in runs:
                    cmd = cmd + ["--model", model, "--threads", str(n), "--steps", str(steps), "--warmup", str(warmup)]
                    res = attempt(f"{impl} {key}", lambda: run_json(cmd, env))
                    if res:
                        entry[impl].append(res)
                        log(f"  {key} {impl}: median {res['median_ms']:.3f} ms")
    info["loadavg_end"] = os.getloadavg()[0]
    info["busy_end"] = cpu_busy_fraction()
    log(f"measurements took {time.time() - t_start:.0f} s")

    lines = []
    misses = 0

    def verdict(ok):
        nonlocal misses
        misses += not ok
        return "PASS" if ok else "MISS"

    if "overhead" in figures:
        o = raw["overhead"]
        if o:
            ns = o["overhead_ns"]
            ok = verdict(ns <= OVERHEAD_TARGET_NS)
            lines.append(f"overhead_add_ns {ns:.0f}ns - - <={OVERHEAD_TARGET_NS:.0f}ns {ok}")
        else:
            lines.append(f"overhead_add_ns - - - <={OVERHEAD_TARGET_NS:.0f}ns {verdict(False)} (failed)")
    if "gemm" in figures:
        if raw["gemm"] and raw["fma_peak"]:
            gemm = statistics.median(g["gflops"] for g in raw["gemm"])
            peak = max(p["gflops"] for p in raw["fma_peak"])
            ratio = gemm / peak
            lines.append(f"gemm_1024_f32_t1 {gemm:.1f}GF/s fma_peak {peak:.1f}GF/s {ratio:.3f} >={GEMM_TARGET:.2f} "
                         f"{verdict(ratio >= GEMM_TARGET)}")
        else:
            lines.append(f"gemm_1024_f32_t1 - fma_peak - - >={GEMM_TARGET:.2f} {verdict(False)} (failed)")
    if "train" in figures:
        for model in MODELS:
            for n in THREADS:
                key = f"{model}_t{n}"
                target = TRAIN_TARGETS[(model, n)]
                entry = raw["train"].get(key, {"ours": [], "libtorch": []})
                ours_ms = statistics.median(x["median_ms"] for x in entry["ours"]) if entry["ours"] else None
                base_ms = statistics.median(x["median_ms"] for x in entry["libtorch"]) if entry["libtorch"] else None
                entry["ours_median_ms"], entry["libtorch_median_ms"] = ours_ms, base_ms
                if ours_ms is None:
                    lines.append(f"train_{key} - {fmt_ms(base_ms)} - <={target} {verdict(False)} (failed)")
                elif base_ms is None:
                    why = "no libtorch" if not have_torch else "baseline failed"
                    lines.append(f"train_{key} {fmt_ms(ours_ms)} - - <={target} {verdict(False)} ({why})")
                else:
                    ratio = ours_ms / base_ms
                    lines.append(f"train_{key} {fmt_ms(ours_ms)} {fmt_ms(base_ms)} {ratio:.3f} <={target} "
                                 f"{verdict(ratio <= target)}")

    if "toolkit" in figures:
        lines += toolkit_lines(raw["toolkit"], verdict)
    if "sam" in figures:
        lines += sam_lines(raw["sam"], verdict)

    for line in lines:
        print(line, flush=True)

    if not args.no_save:
        os.makedirs(args.results, exist_ok=True)
        path = os.path.join(args.results, f"{info['date']}.json")
        suffix = 1
        while os.path.exists(path):
            path = os.path.join(args.results, f"{info['date']}-{suffix}.json")
            suffix += 1
        record = dict(info)
        record.update({"rounds": args.rounds, "steps": STEPS, "sam_rounds": args.sam_rounds, "sam_steps": SAM_STEPS,
                       "torch_env_extra": torch_env_extra, "lines": lines, "errors": errors, "raw": raw})
        if raw["train"]:
            versions = {x.get("torch_version") for e in raw["train"].values() for x in e["libtorch"]}
            record["torch_version"] = sorted(v for v in versions if v)
        with open(path, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
        log(f"wrote {os.path.relpath(path, ROOT)}")

    if errors:
        return 1
    return 1 if args.strict and misses else 0


if __name__ == "__main__":
    sys.exit(main())
