#!/usr/bin/python3
"""Generate the optimizer golden fixtures tests/golden/optim_*.safetensors with PyTorch.

Run with Debian's PyTorch 1.13:  /usr/bin/python3 tools/make_optim_golden.py

Each optimizer fixture trains the same tiny float32 model, Linear(4, 3) -> tanh -> Linear(3, 2)
with cross-entropy, for 10 steps on fixed batches (one batch per step), with one optimizer and one
learning-rate schedule (stepped once per step). Tensor naming:
  x [10, 8, 4] f32, y [10, 8] i64      the batches
  param.<t>.<name>                     parameters before step 0 (t = 0) and after step t (1..10);
                                       <name> is fc1.weight, fc1.bias, fc2.weight, fc2.bias
  lr.<group> [10] f64                  the lr each step used
  momentum [10] f64                    the momentum (SGD) or beta1 (Adam) each step used, if cycled
  loss [10] f64                        the loss at each step
The metadata names the optimizer and schedule (tests/test_optim_golden.cpp builds the same ones).

optim_clip.safetensors: gradients grad.<i>, and for each case c the clipped ones clipped.<c>.<i>
and total.<c> (clip_grad_norm_'s return); cases: "2" (max_norm 1, norm 2, clips), "2big"
(max_norm 100, norm 2, leaves them), "inf" (max_norm 0.5, infinity norm), "1" (max_norm 2, norm 1).
"""
import math
import os
import sys
import warnings

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import OUT_DIR, write_safetensors  # noqa: E402
STEPS, BATCH = 10, 8
NAMES = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS, BATCH, 4, generator=g, dtype=torch.float64).float()
    y = torch.randint(0, 2, (STEPS, BATCH), generator=g)
    return x, y


def initial_params():
    g = torch.Generator().manual_seed(2)
    shapes = [(3, 4), (3,), (2, 3), (2,)]
    return [(torch.rand(*s, generator=g, dtype=torch.float64) - 0.5).float() for s in shapes]


def forward(params, x):
    w1, b1, w2, b2 = params
    return F.linear(torch.tanh(F.linear(x, w1, b1)), w2, b2)


# name -> optimizer from the parameters, schedule from the optimizer, and optionally a clipping
# max_norm and which momentum a one-cycle schedule cycles.
CONFIGS = {
    "sgd_step": dict(
        opt=lambda p: torch.optim.SGD(p, lr=0.1),
        sched=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    "sgd_momentum_cosine": dict(
        opt=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1),
        sched=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.01)),
    # Two groups: weights with decay, biases without, at half the lr.
    "sgd_nesterov_multistep": dict(
        opt=lambda p: torch.optim.SGD([{"params": [p[0], p[2]], "weight_decay": 0.01},
                                       {"params": [p[1], p[3]], "lr": 0.05}],
                                      lr=0.1, momentum=0.9, nesterov=True),
        sched=lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[3, 7], gamma=0.3)),
    "sgd_onecycle": dict(
        opt=lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9),
        sched=lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=10),
        cycled="momentum"),
    "adam_onecycle": dict(
        opt=lambda p: torch.optim.Adam(p, lr=0.01),
        sched=lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.01, total_steps=10),
        cycled="beta1"),
    "adam_wd_amsgrad_warmup": dict(
        opt=lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1, amsgrad=True),
        sched=lambda o: torch.optim.lr_scheduler.SequentialLR(
            o, [torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=3),
                torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7)], milestones=[3])),
    "adamw_step_clip": dict(
        opt=lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
        sched=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=4, gamma=0.5),
        clip=0.5),
}


def run(name, cfg, x, y):
    params = [p.clone().requires_grad_(True) for p in initial_params()]
    opt = cfg["opt"](params)
    sched = cfg["sched"](opt)
    out = {"x": x, "y": y}
    for n, p in zip(NAMES, params):
        out[f"param.0.{n}"] = p.detach().clone()
    lrs = [[] for _ in opt.param_groups]
    momenta, losses = [], []
    for t in range(STEPS):
        opt.zero_grad()
        loss = F.cross_entropy(forward(params, x[t]), y[t])
        loss.backward()
        if cfg.get("clip"):
            torch.nn.utils.clip_grad_norm_(params, cfg["clip"])
        for g, group in enumerate(opt.param_groups):
            lrs[g].append(group["lr"])
        if cfg.get("cycled") == "momentum":
            momenta.append(opt.param_groups[0]["momentum"])
        elif cfg.get("cycled") == "beta1":
            momenta.append(opt.param_groups[0]["betas"][0])
        losses.append(loss.item())
        opt.step()
        sched.step()
        for n, p in zip(NAMES, params):
            out[f"param.{t + 1}.{n}"] = p.detach().clone()
    for g, values in enumerate(lrs):
        out[f"lr.{g}"] = torch.tensor(values, dtype=torch.float64)
    if momenta:
        out["momentum"] = torch.tensor(momenta, dtype=torch.float64)
    out["loss"] = torch.tensor(losses, dtype=torch.float64)
    write_safetensors(os.path.join(OUT_DIR, f"optim_{name}.safetensors"), out,
                      {"config": name, "torch": torch.__version__})
    print(f"optim_{name}: final loss {losses[-1]:.6f}, lr.0 {[round(v, 6) for v in lrs[0]]}")


def clip_fixture():
    g = torch.Generator().manual_seed(3)
    grads = [torch.randn(*s, generator=g, dtype=torch.float64).float() for s in [(3, 4), (5,), (2, 2, 2)]]
    out = {f"grad.{i}": t for i, t in enumerate(grads)}
    for case, max_norm, norm_type in [("2", 1.0, 2.0), ("2big", 100.0, 2.0), ("inf", 0.5, math.inf), ("1", 2.0, 1.0)]:
        params = [torch.zeros_like(t, requires_grad=True) for t in grads]
        for p, t in zip(params, grads):
            p.grad = t.clone()
        total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type)
        out[f"total.{case}"] = total.detach().to(torch.float64).reshape([])
        for i, p in enumerate(params):
            out[f"clipped.{case}.{i}"] = p.grad.clone()
    write_safetensors(os.path.join(OUT_DIR, "optim_clip.safetensors"), out, {"torch": torch.__version__})


def main():
    torch.set_num_threads(1)
    # SequentialLR steps its second schedule with an explicit epoch, which 1.13 warns about.
    warnings.filterwarnings("ignore", message="The epoch parameter")
    x, y = data()
    for name, cfg in CONFIGS.items():
        run(name, cfg, x, y)
    clip_fixture()


if __name__ == "__main__":
    main()
