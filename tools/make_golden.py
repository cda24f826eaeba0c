#!/usr/bin/python3
"""Generate the golden fixtures in tests/golden/ with PyTorch.

Run with Debian's PyTorch 1.13:  /usr/bin/python3 tools/make_golden.py

Each fixture is written twice, as <name>_f64.safetensors and
<name>_f32.safetensors, computed by torch in that dtype.  Random inputs are
drawn in float64 from torch.manual_seed(0) (per fixture) and rounded to the
target dtype, so both files see the same data.  Tensor naming:
  in.<n>     inputs (not trained)          param.<n>  parameters
  out.<n>    forward outputs (out.loss is a scalar, shape [])
  grad.<n>   d out.loss / d (param|in).<n>
  v.<n>      random direction              hvp.<n>    Hessian(out.loss) . v
The safetensors format is written by hand (Debian ships no safetensors).
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")
DTYPES = {torch.float64: ("F64", "<f8", "f64"), torch.float32: ("F32", "<f4", "f32")}
INT_DTYPE = ("I64", "<i8")


# ---------------------------------------------------------------- format I/O
def write_safetensors(path, tensors, metadata):
    """Write an ordered dict name -> tensor; data packed in header order."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        if t.dtype == torch.int64:
            code, np_dtype = INT_DTYPE
        else:
            code, np_dtype = DTYPES[t.dtype][:2]
        data = np.ascontiguousarray(t.detach().numpy().astype(np_dtype)).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def read_safetensors(path):
    """Minimal reader used for the self-check; returns (tensors, metadata)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    assert (8 + n) % 8 == 0, "header not padded to 8 bytes"
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    data = buf[8 + n:]
    metadata = header.pop("__metadata__", {})
    np_dtypes = {"F64": "<f8", "F32": "<f4", "I64": "<i8"}
    tensors, expect = {}, 0
    for name, info in header.items():
        begin, end = info["data_offsets"]
        assert begin == expect, f"{name}: gap or overlap in data section"
        arr = np.frombuffer(data[begin:end], dtype=np_dtypes[info["dtype"]])
        tensors[name] = torch.from_numpy(arr.copy().reshape(info["shape"]))
        expect = end
    assert expect == len(data), "trailing bytes after last tensor"
    return tensors, metadata


# ----------------------------------------------------------------- helpers
def randn(*shape, scale=1.0):
    return torch.randn(*shape, dtype=torch.float64) * scale


def grads_and_hvp(loss, params, extra_inputs=None):
    """grad.* for params and extra_inputs; v.*/hvp.* over params only."""
    extra_inputs = extra_inputs or {}
    names = list(params) + list(extra_inputs)
    leaves = [params[n] for n in params] + [extra_inputs[n] for n in extra_inputs]
    grads = torch.autograd.grad(loss, leaves, create_graph=True)
    out = {f"grad.{n}": g.detach() for n, g in zip(names, grads)}
    pgrads = grads[:len(params)]
    vs = {n: randn(*p.shape).to(p.dtype) for n, p in params.items()}
    hvps = torch.autograd.grad(pgrads, list(params.values()),
                               grad_outputs=list(vs.values()))
    out.update({f"v.{n}": v for n, v in vs.items()})
    out.update({f"hvp.{n}": h.detach() for n, h in zip(params, hvps)})
    return out


def leaf(t, dtype):
    return t.to(dtype).contiguous().requires_grad_(True)


# ---------------------------------------------------------------- fixtures
def mlp_ce(dtype):
    x, target = randn(8, 5), torch.randint(0, 3, (8,))
    p = {"w1": randn(7, 5, scale=0.5), "b1": randn(7, scale=0.1),
         "w2": randn(3, 7, scale=0.5), "b2": randn(3, scale=0.1)}
    p = {n: leaf(t, dtype) for n, t in p.items()}
    x = x.to(dtype)
    logits = F.linear(torch.tanh(F.linear(x, p["w1"], p["b1"])), p["w2"], p["b2"])
    loss = F.cross_entropy(logits, target)
    res = {"in.x": x, "in.target": target}
    res.update({f"param.{n}": t for n, t in p.items()})
    res.update({"out.logits": logits, "out.loss": loss})
    res.update(grads_and_hvp(loss, p))
    return res, "logits = linear(tanh(linear(x,w1,b1)),w2,b2); loss = cross_entropy(logits,target) mean"


def conv_bn_relu_pool(dtype):
    x, r = randn(2, 3, 6, 6), randn(2, 4, 3, 3)
    p = {"w": randn(4, 3, 3, 3, scale=0.3), "b": randn(4, scale=0.1),
         "gamma": 1.0 + randn(4, scale=0.1), "beta": randn(4, scale=0.1)}
    p = {n: leaf(t, dtype) for n, t in p.items()}
    x, r = leaf(x, dtype), r.to(dtype)
    rm0, rv0 = torch.zeros(4, dtype=dtype), torch.ones(4, dtype=dtype)
    rm, rv = rm0.clone(), rv0.clone()
    conv = F.conv2d(x, p["w"], p["b"], stride=1, padding=1)
    y = F.batch_norm(conv, rm, rv, p["gamma"], p["beta"], training=True,
                     momentum=0.1, eps=1e-5)
    y = F.max_pool2d(F.relu(y), kernel_size=2, stride=2)
    loss = (y * r).sum()
    res = {"in.x": x.detach(), "in.running_mean": rm0, "in.running_var": rv0, "in.r": r}
    res.update({f"param.{n}": t for n, t in p.items()})
    res.update({"out.y": y, "out.loss": loss, "out.running_mean": rm, "out.running_var": rv})
    res.update(grads_and_hvp(loss, p, {"x": x}))
    return res, ("y = max_pool2d(relu(batch_norm(conv2d(x,w,b,pad=1), training, momentum=0.1, "
                 "eps=1e-5)), 2, 2); loss = sum(y*r); hvp over w,b,gamma,beta")


def attention(dtype):
    r = randn(2, 4, 8)
    p = {"q": randn(2, 4, 8), "k": randn(2, 5, 8), "v_": randn(2, 5, 8)}
    p = {n: leaf(t, dtype) for n, t in p.items()}
    r = r.to(dtype)
    scores = p["q"] @ p["k"].transpose(-2, -1) / math.sqrt(8)
    attn = torch.softmax(scores, dim=-1) @ p["v_"]
    loss = (attn * r).sum()
    res = {"in.r": r}
    res.update({f"param.{n}": t for n, t in p.items()})
    res.update({"out.attn": attn, "out.loss": loss})
    res.update(grads_and_hvp(loss, p))
    return res, "attn = softmax(q k^T / sqrt(8), -1) v_; loss = sum(attn*r)"


def label_smoothing(dtype):
    logits, target = randn(6, 5), torch.randint(0, 5, (6,))
    probs = torch.softmax(randn(6, 5), dim=-1)
    target_ig = target.clone()
    target_ig[[1, 4]] = 2
    p = {"logits": leaf(logits, dtype)}
    z, probs = p["logits"], probs.to(dtype)
    loss = F.cross_entropy(z, target, label_smoothing=0.1)
    res = {"in.target": target, "in.target_ig": target_ig, "in.probs": probs,
           "param.logits": z, "out.loss": loss}
    with torch.no_grad():
        res["out.loss_sum"] = F.cross_entropy(z, target, reduction="sum", label_smoothing=0.1)
        res["out.loss_none"] = F.cross_entropy(z, target, reduction="none", label_smoothing=0.1)
        res["out.loss_ignore"] = F.cross_entropy(z, target_ig, ignore_index=2, label_smoothing=0.1)
        res["out.loss_probs"] = F.cross_entropy(z, probs)
    res.update(grads_and_hvp(loss, p))
    return res, ("loss = cross_entropy(logits,target,label_smoothing=0.1) mean; loss_sum/loss_none: "
                 "reduction sum/none; loss_ignore: target_ig, ignore_index=2; loss_probs: "
                 "probability targets, no smoothing; grad/hvp for loss only")


FIXTURES = [mlp_ce, conv_bn_relu_pool, attention, label_smoothing]


# -------------------------------------------------------------------- main
def main():
    torch.set_num_threads(1)  # deterministic reduction order
    os.makedirs(OUT_DIR, exist_ok=True)
    for fixture in FIXTURES:
        for dtype, (_, _, suffix) in DTYPES.items():
            torch.manual_seed(0)
            tensors, desc = fixture(dtype)
            tensors = {n: t.detach().contiguous() for n, t in tensors.items()}
            assert all(t.dtype in (dtype, torch.int64) for t in tensors.values())
            meta = {"generator": "tools/make_golden.py", "torch": torch.__version__,
                    "description": f"{fixture.__name__} ({suffix}): {desc}"}
            path = os.path.join(OUT_DIR, f"{fixture.__name__}_{suffix}.safetensors")
            write_safetensors(path, tensors, meta)
            # Self-check: re-read and compare bit for bit.
            back, back_meta = read_safetensors(path)
            assert back_meta == meta and list(back) == list(tensors), path
            for n, t in tensors.items():
                assert back[n].dtype == t.dtype and back[n].shape == t.shape, (path, n)
                assert torch.equal(back[n], t), (path, n)
            print(f"wrote {os.path.relpath(path)} ({len(tensors)} tensors)")


if __name__ == "__main__":
    main()
