#!/usr/bin/python3
"""Export small seeded PyTorch modules, their inputs and outputs, for the nn parity tests.

Run with Debian's PyTorch 1.13:  /usr/bin/python3 tools/export_torch_modules.py

Writes tests/golden/nn_<name>.safetensors, all in float64 (the modules are
`.double()`d).  Each module is built from torch.manual_seed(0), its parameters
are moved off PyTorch's initial values (so zero biases and unit norm weights
cannot hide a mistake), batch norm layers get non-trivial running statistics from
a few training-mode forwards, and then the module is put in eval mode.
Tensor naming:
  state.<key>        the module's state_dict, by PyTorch's names (num_batches_tracked is I64)
  in.<n>             inputs (in.<n> for the attention mask is I64, 1 = not attended)
  out.<n>            outputs of the module in eval mode
  grad.in.<n>        d sum(out.y²) / d in.<n>
  grad.param.<key>   d sum(out.y²) / d parameter <key>
The batchnorm_train fixture instead records training-mode steps; see its docstring.
tests/test_nn_torch.cpp builds the same architectures in Plateau, loads state.*
and compares (tolerance 1e-10 relative to each reference tensor's largest entry).
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import OUT_DIR, read_safetensors, write_safetensors  # noqa: E402


def randn(*shape, scale=1.0):
    return torch.randn(*shape, dtype=torch.float64) * scale


def prepare(module, warmup_inputs=()):
    """Perturb every parameter, run training-mode forwards for BN statistics, then eval()."""
    module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(randn(*p.shape, scale=0.2))
        module.train()
        for x in warmup_inputs:
            module(x)
    module.eval()
    return module


def record(module, inputs, extra_outputs=None):
    """state.*, in.*, out.y, grad.in.*, grad.param.* for y = module(*inputs.values())."""
    tensors = {f"state.{k}": v for k, v in module.state_dict().items()}
    leaves = {n: t.clone().requires_grad_(t.is_floating_point()) for n, t in inputs.items()}
    y = module(*leaves.values())
    if isinstance(y, tuple):  # MultiheadAttention returns (output, weights)
        y = y[0]
    loss = (y * y).sum()
    params = dict(module.named_parameters())
    wrt = [t for t in leaves.values() if t.requires_grad] + list(params.values())
    grads = torch.autograd.grad(loss, wrt)
    for n, t in inputs.items():
        tensors[f"in.{n}"] = t
    tensors["out.y"] = y
    float_inputs = [n for n, t in leaves.items() if t.requires_grad]
    for n, g in zip(float_inputs + [f"param.{k}" for k in params], grads):
        tensors[f"grad.{n}" if n.startswith("param.") else f"grad.in.{n}"] = g
    tensors.update(extra_outputs or {})
    return tensors


# ---------------------------------------------------------------- fixtures
def mlp():
    """Sequential: Linear, LayerNorm, GELU, Linear, Tanh, Linear, LeakyReLU(0.2), Dropout(0.3)
    (identity in eval), Linear, Softplus(beta 2, threshold 1), Linear, BatchNorm1d (eval), Sigmoid,
    Linear(6, 3), ReLU; x [5, 6]."""
    m = nn.Sequential(
        nn.Linear(6, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 10),
        nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(10, 8), nn.Softplus(beta=2.0, threshold=1.0),
        nn.Linear(8, 6), nn.BatchNorm1d(6), nn.Sigmoid(), nn.Linear(6, 3), nn.ReLU())
    prepare(m, [randn(7, 6, scale=2.0) for _ in range(3)])
    return record(m, {"x": randn(5, 6, scale=2.0)})


def convnet():
    """Sequential: Conv2d(3, 8, 3, padding 1), BatchNorm2d(8) (eval), ReLU, Conv2d(8, 12, 3, stride 2,
    padding 1, groups 4), GroupNorm(4, 12), LeakyReLU(0.1), MaxPool2d(2, stride 1), Conv2d(12, 16, 3,
    padding 2, dilation 2, no bias), AvgPool2d(2), AdaptiveAvgPool2d(2), Flatten, Linear(64, 5);
    x [2, 3, 16, 16]."""
    m = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 12, 3, stride=2, padding=1, groups=4), nn.GroupNorm(4, 12), nn.LeakyReLU(0.1),
        nn.MaxPool2d(2, stride=1), nn.Conv2d(12, 16, 3, padding=2, dilation=2, bias=False), nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 5))
    prepare(m, [randn(4, 3, 16, 16, scale=1.5) + 0.5 for _ in range(3)])
    return record(m, {"x": randn(2, 3, 16, 16)})


def encoder_post():
    """TransformerEncoderLayer(d_model 16, nhead 4, dim_feedforward 32, dropout 0.1, relu,
    post-norm, batch_first), eval; x [3, 5, 16]."""
    m = prepare(nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.1, batch_first=True))
    return record(m, {"x": randn(3, 5, 16)})


def encoder_pre():
    """TransformerEncoderLayer as encoder_post but norm_first=True and gelu; x [3, 5, 16]."""
    m = prepare(nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.1, activation="gelu",
                                           norm_first=True, batch_first=True))
    return record(m, {"x": randn(3, 5, 16)})


def mha():
    """MultiheadAttention(16, 4, batch_first), eval; out.y = attn(query [2,4,16], key, value [2,6,16]);
    out.y_masked with in.mask [4, 6] (I64, 1 = not attended; no row fully masked);
    out.y_self = attn(query, query, query)."""
    m = prepare(nn.MultiheadAttention(16, 4, batch_first=True))
    q, k, v = randn(2, 4, 16), randn(2, 6, 16), randn(2, 6, 16)
    mask = torch.zeros(4, 6, dtype=torch.int64)
    mask[0, 1] = mask[0, 4] = mask[2, 0] = mask[3, 5] = mask[3, 2] = 1
    with torch.no_grad():
        y_masked = m(q, k, v, attn_mask=mask.bool(), need_weights=False)[0]
        y_self = m(q, q, q, need_weights=False)[0]
    out = record(m, {"query": q, "key": k, "value": v}, {"out.y_masked": y_masked, "out.y_self": y_self})
    out["in.mask"] = mask
    return out


def batchnorm_train():
    """Training-mode batch norm, from PyTorch's initial statistics: bn2d = BatchNorm2d(4,
    momentum=None) (cumulative average) and bn1d = BatchNorm1d(5, momentum=0.3), affine parameters
    perturbed (state.bn2d.*, state.bn1d.* before the steps). Step s = 0, 1, 2 feeds in.x<s>
    [3, 4, 5, 5] to bn2d and in.z<s> [6, 5] to bn1d; out.x<s>, out.z<s> are the outputs and
    after.bn2d.*, after.bn1d.* the state after the three steps."""
    bn2d, bn1d = nn.BatchNorm2d(4, momentum=None).double(), nn.BatchNorm1d(5, momentum=0.3).double()
    tensors = {}
    with torch.no_grad():
        for name, m in (("bn2d", bn2d), ("bn1d", bn1d)):
            for p in m.parameters():
                p.add_(randn(*p.shape, scale=0.2))
            tensors.update({f"state.{name}.{k}": v.clone() for k, v in m.state_dict().items()})
        for s in range(3):
            x, z = randn(3, 4, 5, 5, scale=1.0 + s) + s, randn(6, 5, scale=2.0) - s
            tensors[f"in.x{s}"], tensors[f"in.z{s}"] = x, z
            tensors[f"out.x{s}"], tensors[f"out.z{s}"] = bn2d(x), bn1d(z)
        for name, m in (("bn2d", bn2d), ("bn1d", bn1d)):
            tensors.update({f"after.{name}.{k}": v.clone() for k, v in m.state_dict().items()})
    return tensors


FIXTURES = [mlp, convnet, encoder_post, encoder_pre, mha, batchnorm_train]


def main():
    torch.set_num_threads(1)  # deterministic reduction order
    os.makedirs(OUT_DIR, exist_ok=True)
    for fixture in FIXTURES:
        torch.manual_seed(0)
        tensors = {n: t.detach().contiguous() for n, t in fixture().items()}
        assert all(t.dtype in (torch.float64, torch.int64) for t in tensors.values()), fixture.__name__
        desc = " ".join(fixture.__doc__.split())
        meta = {"generator": "tools/export_torch_modules.py", "torch": torch.__version__,
                "description": f"nn_{fixture.__name__}: {desc}"}
        path = os.path.join(OUT_DIR, f"nn_{fixture.__name__}.safetensors")
        write_safetensors(path, tensors, meta)
        back, back_meta = read_safetensors(path)  # self-check, bit for bit
        assert back_meta == meta and list(back) == list(tensors), path
        for n, t in tensors.items():
            assert back[n].dtype == t.dtype and torch.equal(back[n], t), (path, n)
        print(f"wrote {os.path.relpath(path)} ({len(tensors)} tensors)")


if __name__ == "__main__":
    main()
