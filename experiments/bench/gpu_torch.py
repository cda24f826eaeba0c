#!/usr/bin/env python3
"""PyTorch's side of the GPU benchmarks: the cases of gpu_bench.cpp, on the same card, in the same run
(tools/gpu_check.sh runs both, then gpu_report.py compares).

    python3 experiments/bench/gpu_torch.py [--json PATH] [--only CASE]... [--reps R]

Cases (cuda:0, f32), each timed like gpu_bench: warm-up calls, then R repetitions of a few calls
between torch.cuda.synchronize() calls; the figure is the median time per call:

    matmul_4096_f32          A @ B, 4096x4096 times 4096x4096, TF32 off
    matmul_4096_tf32         the same with TF32 on (cuBLAS and cuDNN)
    conv3x3_64_b256          conv2d 64->64, 3x3, padding 1, no bias, x [256, 64, 32, 32]: forward and
                             torch.autograd.grad(y, (x, w), g)
    host_overhead_per_op_us  host time per recorded op: 10^4 add/mul of [16] tensors requiring grad,
                             no synchronization inside the loop (informative; the target is ours alone)
    resnet18_step_b256       one SGD step (lr 0.01, momentum 0.9) of the CIFAR ResNet-18, batch 256:
                             zero_grad, forward, cross-entropy, backward, step

Settings matching gpu_bench: TF32 (matmul and cuDNN) only in *_tf32; cudnn.benchmark = True (ours picks
cuDNN algorithms by heuristics and caches them per shape, about what benchmark mode does);
non-deterministic algorithms allowed (PyTorch's default; gpu_bench turns its deterministic mode off).
torchvision is not needed: the CIFAR ResNet-18 is written out below as nn/models/resnet.cpp builds it.

Prints one line per case, "name value" (ms; us for host_overhead_per_op_us), and writes the raw
repetitions to PATH as JSON. Without PyTorch or without a CUDA device it prints why, writes
{"available": false, ...} and exits 0.
"""
import argparse
import json
import math
import statistics
import sys
import time

CASES = ("matmul_4096_f32", "matmul_4096_tf32", "conv3x3_64_b256", "host_overhead_per_op_us", "resnet18_step_b256")


def write_json(path, doc):
    if path:
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")


def set_tf32(torch, on):
    """TF32 for cuBLAS matmuls and cuDNN convolutions. The legacy flags are what every PyTorch 2.x
    knows; where a release refuses them, its fp32_precision switches."""
    try:
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on
    except (AttributeError, RuntimeError):
        precision = "tf32" if on else "ieee"
        torch.backends.cuda.matmul.fp32_precision = precision
        torch.backends.cudnn.conv.fp32_precision = precision


def time_calls(torch, fn, warmup, reps, iters):
    """The time per call (ms) of each of `reps` repetitions of `iters` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1e3 / iters)
    return ms


def timing(ms, warmup, iters):
    return {"median_ms": statistics.median(ms), "warmup": warmup, "iters_per_rep": iters, "times_ms": ms}


def bench_matmul(torch, dev, tf32, reps):
    n = 4096
    set_tf32(torch, tf32)
    gen = torch.Generator().manual_seed(1)
    a_host = torch.randn(n, n, generator=gen)
    b_host = torch.randn(n, n, generator=gen)
    a, b = a_host.to(dev), b_host.to(dev)
    c = a @ b
    # Row 7 against a float64 product on the host: a broken setup cannot pass, and the error tells
    # whether TF32 was in effect (about 1e-1 with it, 1e-3 without).
    ref = a_host[7].double() @ b_host.double()
    err = (c[7].cpu().double() - ref).abs().max().item()
    tol = (2e-2 if tf32 else 1e-4) * math.sqrt(n)
    if not err <= tol:
        raise RuntimeError(f"row 7 of A @ B is off by {err:.3g} (tolerance {tol:.3g})")
    box = [c]

    def step():
        box[0] = a @ b

    warmup, iters = 3, 10
    ms = time_calls(torch, step, warmup, reps, iters)
    out = timing(ms, warmup, iters)
    out.update({"tf32": tf32, "row_max_abs_err": err,
                "tflops": 2.0 * n ** 3 / (statistics.median(ms) * 1e-3) / 1e12})
    set_tf32(torch, False)
    return out


def bench_conv(torch, dev, reps):
    import torch.nn.functional as F
    set_tf32(torch, False)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(256, 64, 32, 32, generator=gen).to(dev).requires_grad_()
    w = (torch.randn(64, 64, 3, 3, generator=gen) / 24.0).to(dev).requires_grad_()
    g = torch.randn(256, 64, 32, 32, generator=gen).to(dev)

    def step():
        y = F.conv2d(x, w, None, padding=1)
        torch.autograd.grad(y, (x, w), g)

    warmup, iters = 3, 10
    out = timing(time_calls(torch, step, warmup, reps, iters), warmup, iters)
    out["tf32"] = False
    return out


def bench_host_overhead(torch, dev, reps):
    ops = 10000
    a = torch.full((16,), 1.5, device=dev, requires_grad=True)
    b = torch.full((16,), 0.25, device=dev, requires_grad=True)
    results = [None] * ops

    def batch():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(0, ops, 2):
            results[i] = a + b
            results[i + 1] = a * b
        us = (time.perf_counter() - t0) * 1e6 / ops
        torch.cuda.synchronize()
        for i in range(ops):
            results[i] = None
        return us

    for _ in range(3):
        batch()
    us = [batch() for _ in range(reps)]
    return {"per_op_us": statistics.median(us), "ops_per_rep": ops, "times_us": us}


def make_resnet18(nn, F, num_classes=10):
    """ResNet-18 in its CIFAR form, as nn/models/resnet.cpp: 3x3 stem with 64 channels and no max-pool,
    BasicBlocks [2, 2, 2, 2] (stride 2 from the second stage on, 1x1 conv + BN downsample where the
    shape changes), convolutions without bias, global average pooling, linear classifier."""

    class BasicBlock(nn.Module):
        def __init__(self, in_planes, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or in_planes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + (self.downsample(x) if self.downsample is not None else x))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            layers, in_planes = [], 64
            for stage in range(4):
                planes = 64 << stage
                blocks = []
                for b in range(2):
                    blocks.append(BasicBlock(in_planes, planes, 2 if b == 0 and stage > 0 else 1))
                    in_planes = planes
                layers.append(nn.Sequential(*blocks))
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
            return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))

    return ResNet()


def bench_resnet(torch, dev, reps):
    import torch.nn as nn
    import torch.nn.functional as F
    set_tf32(torch, False)
    torch.manual_seed(3)
    model = make_resnet18(nn, F).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    if n_params != 11173962:
        raise RuntimeError(f"ResNet-18 has {n_params} parameters, expected 11173962")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(256, 3, 32, 32, generator=gen).to(dev)
    y = torch.randint(0, 10, (256,), generator=gen).to(dev)
    box = [None]

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        box[0] = loss

    step()
    first_loss = box[0].item()
    torch.cuda.reset_peak_memory_stats(dev)
    warmup, iters = 3, 3
    out = timing(time_calls(torch, step, warmup, reps, iters), warmup, iters)
    last_loss = box[0].item()
    if not (math.isfinite(first_loss) and math.isfinite(last_loss)):
        raise RuntimeError(f"the loss is not finite ({last_loss})")
    out.update({"tf32": False, "first_loss": first_loss, "last_loss": last_loss,
                "peak_memory_mb": torch.cuda.max_memory_allocated(dev) / 1e6,
                "sgd_foreach": opt.defaults.get("foreach")})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default="", help="write the raw results here")
    ap.add_argument("--only", action="append", choices=CASES, help="run only these cases (repeatable)")
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions per case (default 7)")
    args = ap.parse_args()
    if args.reps < 1:
        sys.exit("gpu_torch.py: --reps must be at least 1")

    doc = {"impl": "torch", "available": False}
    try:
        import torch
    except ImportError as e:
        print(f"no PyTorch: {e}")
        doc["reason"] = f"no PyTorch: {e}"
        write_json(args.json, doc)
        return 0
    doc["torch_version"] = torch.__version__
    doc["torch_cuda"] = torch.version.cuda
    if not torch.cuda.is_available():
        reason = "torch.cuda.is_available() is False" + ("" if torch.version.cuda else " (a CPU-only build)")
        print(f"no CUDA device: {reason}")
        doc["reason"] = reason
        write_json(args.json, doc)
        return 0

    dev = torch.device("cuda:0")
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = False
    torch.use_deterministic_algorithms(False)
    doc.update({"available": True, "device": torch.cuda.get_device_name(dev),
                "cudnn_version": torch.backends.cudnn.version(), "cudnn_benchmark": True,
                "deterministic": False, "reps": args.reps, "cases": {}, "errors": {}})
    print("gpu_torch.py: cudnn.benchmark on, non-deterministic algorithms allowed, TF32 only in *_tf32",
          file=sys.stderr)
    runs = {
        "matmul_4096_f32": lambda: bench_matmul(torch, dev, False, args.reps),
        "matmul_4096_tf32": lambda: bench_matmul(torch, dev, True, args.reps),
        "conv3x3_64_b256": lambda: bench_conv(torch, dev, args.reps),
        "host_overhead_per_op_us": lambda: bench_host_overhead(torch, dev, args.reps),
        "resnet18_step_b256": lambda: bench_resnet(torch, dev, args.reps),
    }
    failed = 0
    for name in CASES:
        if args.only and name not in args.only:
            continue
        try:
            result = runs[name]()
            value = result["per_op_us"] if "per_op_us" in result else result["median_ms"]
            print(f"{name} {value:.4f}", flush=True)
            doc["cases"][name] = result
        except Exception as e:  # one failed case must not cost the others
            failed += 1
            print(f"gpu_torch.py: {name} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            doc["errors"][name] = f"{type(e).__name__}: {e}"
            try:
                set_tf32(torch, False)
            except Exception:
                pass
        write_json(args.json, doc)
    doc["memory"] = {"peak_mb": torch.cuda.max_memory_allocated(dev) / 1e6,
                     "reserved_mb": torch.cuda.memory_reserved(dev) / 1e6}
    write_json(args.json, doc)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
