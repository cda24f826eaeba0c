#!/usr/bin/env python3
"""Compares the GPU benchmarks of one run: gpu_bench's JSON (ours) with gpu_torch.py's (PyTorch on the
same card), in the line format of the CPU benchmarks (run.py, README.md),

    name ours baseline ratio target PASS|MISS

for example

    matmul_4096_f32 2.513ms 2.431ms 1.034 <=1.1 PASS
    host_overhead_per_op_us 3.21us - - <=5us PASS

and writes everything to one results JSON. tools/gpu_check.sh calls it as

    python3 experiments/bench/gpu_report.py --ours A.json [--ours B.json ...] --torch T.json \\
        --json OUTDIR/results.json [--steps steps.tsv] [--facts facts.txt] [--tests-log tests.log] \\
        [--report OUTDIR/report.md]

Several --ours files are merged (gpu_check.sh runs each case in its own process, so that one crash
costs one case). --steps (lines "step<TAB>status<TAB>seconds<TAB>note"), --facts (free text: the
machine) and --tests-log (the test binary's output, for doctest's summary and the line
"cuda parity: N passed, N failed, N skipped") go into the JSON and into the Markdown --report.
Prints the lines on stdout; the exit status is 0, or 1 with --strict when a line is a MISS.
Python standard library only.
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# (name, kind, target): "ratio" figures compare median times ours / PyTorch's; host overhead is ours alone.
FIGURES = (
    ("matmul_4096_f32", "ratio", 1.1),
    ("matmul_4096_tf32", "ratio", 1.1),
    ("conv3x3_64_b256", "ratio", 1.1),
    ("resnet18_step_b256", "ratio", 1.25),
    ("host_overhead_per_op_us", "us", 5.0),
)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"available": None, "reason": f"{path}: {e}"}


def merge_ours(docs):
    """One document from gpu_bench's per-case files: cases and errors united, the rest from the first
    file that says the device was available."""
    if not docs:
        return {"available": None, "reason": "gpu_bench did not run"}
    merged = {}
    for d in docs:
        if d.get("available") and not merged.get("available"):
            merged.update({k: v for k, v in d.items() if k not in ("cases", "errors")})
    if not merged:
        merged = dict(docs[0])
    merged["cases"], merged["errors"] = {}, {}
    for d in docs:
        merged["cases"].update(d.get("cases") or {})
        merged["errors"].update(d.get("errors") or {})
    return merged


def unavailable(doc, who, short=False):
    """Why a side has no numbers at all ("ours: no CUDA device: <reason>"), or None."""
    if doc.get("available"):
        return None
    reason = doc.get("reason") or "no result"
    if doc.get("available") is False and not reason.startswith("no "):
        reason = "no CUDA device: " + reason
    if short and doc.get("available") is False:
        reason = reason.split(":")[0]
    return f"{who}: {reason}"


def why_missing(doc, name, who):
    """Why one case has no number on one side, in a few words (the notes hold the details)."""
    return unavailable(doc, who, short=True) or (
        f"{who} failed: {doc['errors'][name]}" if name in doc.get("errors", {}) else f"{who}: not run")


def figure_lines(ours, torch):
    lines, figures = [], {}
    for name, kind, target in FIGURES:
        o = (ours.get("cases") or {}).get(name)
        t = (torch.get("cases") or {}).get(name)
        entry = {"target": target, "ours": None, "baseline": None, "ratio": None, "verdict": "MISS", "why": None}
        if kind == "us":
            tgt = f"<={target:g}us"
            if o is None:
                entry["why"] = why_missing(ours, name, "ours")
                lines.append(f"{name} - - - {tgt} MISS ({entry['why']})")
            else:
                us = o["per_op_us"]
                ok = us <= target
                entry.update(ours=us, verdict="PASS" if ok else "MISS",
                             torch_per_op_us=t["per_op_us"] if t else None)
                lines.append(f"{name} {us:.2f}us - - {tgt} {entry['verdict']}")
        else:
            tgt = f"<={target:g}"
            ours_ms = o["median_ms"] if o else None
            base_ms = t["median_ms"] if t else None
            entry.update(ours=ours_ms, baseline=base_ms)
            ours_s = f"{ours_ms:.3f}ms" if ours_ms is not None else "-"
            base_s = f"{base_ms:.3f}ms" if base_ms is not None else "-"
            if ours_ms is None or base_ms is None:
                entry["why"] = "; ".join(why_missing(d, name, who) for d, v, who in
                                         ((ours, ours_ms, "ours"), (torch, base_ms, "torch")) if v is None)
                lines.append(f"{name} {ours_s} {base_s} - {tgt} MISS ({entry['why']})")
            else:
                ratio = ours_ms / base_ms
                ok = ratio <= target
                entry.update(ratio=ratio, verdict="PASS" if ok else "MISS")
                lines.append(f"{name} {ours_s} {base_s} {ratio:.3f} {tgt} {entry['verdict']}")
        figures[name] = entry
    return lines, figures


def notes_on(ours, torch):
    """Checks that both sides ran as intended: TF32 where (and only where) asked for."""
    notes = []
    for doc, who in ((ours, "ours"), (torch, "torch")):
        case = (doc.get("cases") or {}).get("matmul_4096_tf32")
        if case and case.get("row_max_abs_err") is not None and case["row_max_abs_err"] < 5e-3:
            notes.append(f"{who}: matmul_4096_tf32's error ({case['row_max_abs_err']:.2g}) looks like full f32: "
                         "TF32 was apparently not in effect")
    host = (torch.get("cases") or {}).get("host_overhead_per_op_us")
    if host:
        notes.append(f"torch's host time per op (no target, for reference): {host['per_op_us']:.2f}us")
    for doc, who in ((ours, "ours"), (torch, "torch")):
        r = (doc.get("cases") or {}).get("resnet18_step_b256")
        if r and r.get("peak_memory_mb") is not None:
            notes.append(f"{who}: resnet18_step_b256 peak memory {r['peak_memory_mb']:.0f} MB, "
                         f"loss {r.get('first_loss', float('nan')):.4f} -> {r.get('last_loss', float('nan')):.4f}")
    return notes


def read_steps(path):
    steps = []
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 3:
                    steps.append({"step": parts[0], "status": parts[1], "seconds": float(parts[2] or 0),
                                  "note": parts[3] if len(parts) > 3 else ""})
    return steps


def read_tests(path):
    """doctest's summary lines and the CUDA parity line of the test binary's output."""
    out = {"summary": [], "parity": None, "failures": [], "slowest": []}
    if not path or not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        text = f.read()
    out["summary"] = re.findall(r"^\[doctest\] (?:test cases|assertions|Status):.*$", text, re.M)
    parity = re.findall(r"cuda parity:.*$", text, re.M)
    out["parity"] = parity[-1].strip() if parity else None
    # doctest opens each test case it reports on (every one, with --duration) with a line of '=' and
    # "TEST CASE:  name"; a failing one's block holds "ERROR:" (or "FATAL ERROR:" for a crash).
    failures = set()
    for block in re.split(r"^={20,}$", text, flags=re.M):
        name = re.search(r"^TEST CASE: +(.*)$", block, re.M)
        if name and re.search(r"\bERROR:|exceeded time limit", block):
            failures.add(name.group(1).strip())
    out["failures"] = sorted(failures)
    # With --duration=true doctest prints "0.123456 s: name" as each test case ends.
    durations = [(float(s), name.strip()) for s, name in re.findall(r"^(\d+\.\d+) s: (.*)$", text, re.M)]
    out["test_cases_timed"] = len(durations)
    out["seconds_in_test_cases"] = round(sum(d for d, _ in durations), 3)
    out["slowest"] = [f"{d:.2f} s: {name}" for d, name in sorted(durations, reverse=True)[:8]]
    return out


def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def markdown(record, facts_text):
    steps, tests = record["steps"], record["tests"]
    device = record.get("device") or "no CUDA device (see the notes)"
    md = [f"# GPU check {record['time']}", "",
          f"- device: {device}",
          f"- commit: {record.get('commit') or '?'}{' (uncommitted changes)' if record.get('dirty') else ''}"]
    build = next((s for s in steps if s["step"] == "build"), None)
    if build:
        md.append(f"- build: {'ok' if build['status'] == 'ok' else 'FAILED'} ({build['seconds']:.0f} s)")
    if tests["summary"]:
        md += [f"- tests: {line}" for line in tests["summary"]]
    else:
        md.append("- tests: no doctest summary (the test binary did not run or did not finish)")
    md.append(f"- {tests['parity'] or 'cuda parity: no line printed'}")
    if tests["failures"]:
        md.append(f"- failing test cases: {', '.join(tests['failures'][:30])}")
    if tests["slowest"]:
        md.append(f"- {tests['test_cases_timed']} test cases took {tests['seconds_in_test_cases']:.1f} s; the slowest: "
                  + "; ".join(tests["slowest"][:5]))
    if steps:
        md += ["", "| step | status | seconds | note |", "| --- | --- | --- | --- |"]
        md += [f"| {s['step']} | {s['status']} | {s['seconds']:.1f} | {s['note']} |" for s in steps]
    md += ["", "## Benchmarks (ours vs PyTorch, same card, same run)", "", "```"] + record["lines"] + ["```"]
    md += ["", "Deterministic mode off on both sides; TF32 only in *_tf32; cudnn.benchmark on in PyTorch."]
    if record["notes"]:
        md += [""] + [f"- {n}" for n in record["notes"]]
    if facts_text:
        md += ["", "## Machine", "", "```", facts_text.rstrip(), "```"]
    return "\n".join(md) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", action="append", default=[], help="gpu_bench --json output (repeatable)")
    ap.add_argument("--torch", default="", help="gpu_torch.py --json output")
    ap.add_argument("--json", default="", help="write the combined results here")
    ap.add_argument("--steps", default="", help="gpu_check.sh's step table (TSV)")
    ap.add_argument("--facts", default="", help="gpu_check.sh's machine facts (text)")
    ap.add_argument("--tests-log", default="", help="the test binary's output")
    ap.add_argument("--report", default="", help="write a Markdown report here")
    ap.add_argument("--strict", action="store_true", help="exit with status 1 when a figure is a MISS")
    args = ap.parse_args()

    ours = merge_ours([load(p) for p in args.ours if os.path.exists(p)])
    torch = load(args.torch) if args.torch and os.path.exists(args.torch) else {
        "available": None, "reason": "gpu_torch.py did not run"}
    lines, figures = figure_lines(ours, torch)
    facts_text = ""
    if args.facts and os.path.exists(args.facts):
        with open(args.facts, errors="replace") as f:
            facts_text = f.read()
    commit = git("rev-parse", "HEAD")
    record = {
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": commit if re.fullmatch(r"[0-9a-f]{40}", commit) else None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "device": torch.get("device") or (None if ours.get("available") is not True else "cuda:0"),
        "lines": lines,
        "figures": figures,
        "notes": notes_on(ours, torch),
        "steps": read_steps(args.steps),
        "tests": read_tests(args.tests_log),
        "facts": facts_text,
        "ours": ours,
        "torch": torch,
    }
    record["notes"][:0] = [r for r in (unavailable(ours, "ours"), unavailable(torch, "torch")) if r]
    for line in lines:
        print(line, flush=True)
    for note in record["notes"]:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
    if args.report:
        with open(args.report, "w") as f:
            f.write(markdown(record, facts_text))
    misses = sum(1 for e in figures.values() if e["verdict"] != "PASS")
    return 1 if args.strict and misses else 0


if __name__ == "__main__":
    sys.exit(main())
