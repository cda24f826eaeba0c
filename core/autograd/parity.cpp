// CPU-vs-CUDA parity runner (see parity.h). The CPU kernels are the reference: a case passes when
// the device's values, gradients and gradients of gradients match them within a tolerance that
// allows for a different summation order and libm, nothing more.
#include "core/autograd/parity.h"

#include <cmath>
#include <sstream>

#include "core/autograd/autograd.h"
#include "core/autograd/functional.h"
#include "core/autograd/per_example.h"
#include "core/backend/cuda/runtime.h"
#include "core/ops/ops.h"
#include "core/random/generator.h"

namespace plateau::parity {

namespace {

// x's values on `device`; strided: as every other element of a buffer twice as wide (the layout of
// registry::make_inputs' non-contiguous inputs), so the device's strided paths run too.
Tensor to_device_like(const Tensor& x, Device device, bool strided) {
  if (!x.defined()) return x;
  Tensor y;
  {
    NoGradGuard no_grad;
    if (strided && x.dim() >= 1 && x.numel() > 1) {
      Shape wide = x.shape();
      wide[wide.size() - 1] *= 2;
      y = slice(zeros(wide, x.dtype(), device), -1, 0, wide.back(), 2);
      copy_(y, x.detach());
    } else {
      y = x.detach().to(device);
    }
  }
  if (x.requires_grad()) y.requires_grad_(true);
  return y;
}

// Runs fn with the default generator in a fixed state (ops that draw, such as dropout, then draw
// the same numbers on both devices) and gives the generator back as it was.
TensorList call(const registry::OpFn& fn, const TensorList& inputs) {
  Generator saved = default_generator();
  default_generator() = Generator(2718, 0);
  TensorList out;
  try {
    out = fn(inputs);
  } catch (...) {
    default_generator() = saved;
    throw;
  }
  default_generator() = saved;
  return out;
}

// Where `got` (on a device) differs from `want` (CPU) beyond the tolerance; empty when it does not.
std::string compare(const Tensor& want, const Tensor& got, double rtol, double atol, const std::string& what) {
  if (want.defined() != got.defined())
    return what + ": defined on " + (want.defined() ? "cpu" : "the device") + " only";
  if (!want.defined()) return "";
  if (want.shape() != got.shape() || want.dtype() != got.dtype())
    return what + ": cpu gives " + want.shape().str() + " " + dtype_name(want.dtype()) + ", the device " +
           got.shape().str() + " " + dtype_name(got.dtype());
  std::vector<double> a = want.to_vector<double>(), b = got.to(Device::cpu()).to_vector<double>();
  bool exact = !want.is_floating_point();
  for (size_t i = 0; i < a.size(); ++i) {
    bool ok = exact ? a[i] == b[i]
                    : (std::isnan(a[i]) ? std::isnan(b[i])
                                        : (a[i] == b[i] || std::abs(a[i] - b[i]) <= atol + rtol * std::abs(a[i])));
    if (!ok) {
      std::ostringstream s;
      s.precision(17);
      s << what << ": element " << i << " of " << want.shape().str() << " is " << b[i] << " on the device, " << a[i]
        << " on cpu";
      return s.str();
    }
  }
  return "";
}

std::string compare_lists(const TensorList& want, const TensorList& got, double rtol, double atol,
                          const std::string& what) {
  if (want.size() != got.size()) return what + ": different numbers of tensors";
  for (size_t i = 0; i < want.size(); ++i) {
    std::string e = compare(want[i], got[i], rtol, atol, what + " " + std::to_string(i));
    if (!e.empty()) return e;
  }
  return "";
}

// Floating outputs that carry a graph, each with a cotangent drawn on the CPU (the same on both sides).
struct Backward {
  TensorList outputs, cotangents;
};
Backward differentiable_outputs(const TensorList& outputs, DType dtype, Device device) {
  Backward b;
  for (size_t o = 0; o < outputs.size(); ++o) {
    if (!outputs[o].defined() || !outputs[o].requires_grad()) continue;
    Generator g(500 + o);
    b.outputs.push_back(outputs[o]);
    b.cotangents.push_back(uniform(outputs[o].shape(), -1, 1, dtype, g).to(device));
  }
  return b;
}

TensorList wrt_of(const TensorList& inputs) {
  TensorList w;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) w.push_back(t);
  return w;
}

// The vjp with create_graph, then the derivative of Σ vjp_i · w_i (w random): both lists, per device.
struct Derivatives {
  TensorList first, second;
  bool has_second = false;
};
Derivatives derivatives(const TensorList& inputs, const TensorList& outputs, DType dtype, Device device) {
  Derivatives d;
  TensorList wrt = wrt_of(inputs);
  Backward b = differentiable_outputs(outputs, dtype, device);
  if (wrt.empty() || b.outputs.empty()) return d;
  GradOptions o;
  o.grad_outputs = b.cotangents;
  o.create_graph = true;
  o.allow_unused = true;
  d.first = grad(b.outputs, wrt, o);
  Tensor s;
  for (size_t i = 0; i < d.first.size(); ++i) {
    if (!d.first[i].defined() || !d.first[i].requires_grad()) continue;
    Generator g(900 + i);
    Tensor w = uniform(d.first[i].shape(), -1, 1, dtype, g).to(device);
    Tensor term = sum(d.first[i] * w);
    s = s.defined() ? s + term : term;
  }
  if (s.defined()) {
    GradOptions o2;
    o2.allow_unused = true;
    d.second = grad({s}, wrt, o2);
    d.has_second = true;
  }
  return d;
}

std::string run_op_case(const registry::OpEntry& entry, const registry::OpCase& oc, Device device,
                        const Tolerance& tol) {
  for (DType dtype : {DType::f64, DType::f32}) {
    double rtol = dtype == DType::f64 ? tol.rtol : tol.rtol_f32, atol = dtype == DType::f64 ? tol.atol : tol.atol_f32;
    for (bool strided : {false, true}) {
      std::string where = std::string(dtype_name(dtype)) + (strided ? " strided" : "");
      TensorList in_cpu = registry::make_inputs(oc, dtype, 31, strided);
      TensorList in_dev;
      for (const Tensor& t : in_cpu) in_dev.push_back(to_device_like(t, device, strided));
      TensorList out_cpu = call(oc.fn, in_cpu), out_dev = call(oc.fn, in_dev);
      std::string e = compare_lists(out_cpu, out_dev, rtol, atol, where + " output");
      if (!e.empty() || !entry.differentiable) {
        if (!e.empty()) return e;
        continue;
      }
      Derivatives d_cpu = derivatives(in_cpu, out_cpu, dtype, Device::cpu());
      Derivatives d_dev = derivatives(in_dev, out_dev, dtype, device);
      e = compare_lists(d_cpu.first, d_dev.first, rtol, atol, where + " gradient of input");
      if (!e.empty()) return e;
      if (d_cpu.has_second != d_dev.has_second) return where + ": the gradient carries a graph on one device only";
      e = compare_lists(d_cpu.second, d_dev.second, rtol, atol, where + " gradient of gradient, input");
      if (!e.empty()) return e;
    }
  }
  return "";
}

void require(const std::string& error) {
  if (!error.empty()) throw std::runtime_error(error);
}

// A conv + linear classifier's per-example losses: the parameters enter through conv2d, linear and
// a bias, the three per-example rules of the engine.
struct SmallNet {
  Tensor x, target, conv_w, conv_b, fc_w, fc_b;
  SmallNet(Device device) {
    Generator g(77);
    x = normal({4, 2, 6, 6}, 0, 1, DType::f64, g).to(device);
    target = tensor(std::vector<int64_t>{0, 3, 1, 4}, {4}).to(device);
    conv_w = (normal({3, 2, 3, 3}, 0, 0.4, DType::f64, g)).to(device).requires_grad_();
    conv_b = normal({3}, 0, 0.1, DType::f64, g).to(device).requires_grad_();
    fc_w = normal({5, 48}, 0, 0.2, DType::f64, g).to(device).requires_grad_();
    fc_b = normal({5}, 0, 0.1, DType::f64, g).to(device).requires_grad_();
  }
  TensorList params() const { return {conv_w, conv_b, fc_w, fc_b}; }
  Tensor losses(const TensorList& p) const {
    Tensor h = relu(conv2d(x, p[0], p[1]));
    CrossEntropyOptions o;
    o.reduction = Reduction::none;
    return cross_entropy(linear(flatten(h, 1), p[2], p[3]), target, o);
  }
};

std::vector<Case> engine_cases() {
  std::vector<Case> out;
  out.push_back({"engine: per-example gradients (conv2d, linear, bias)", nullptr, nullptr, [](Device device) {
                   SmallNet a(Device::cpu()), b(device);
                   require(compare_lists(per_example_grads(a.losses(a.params()), a.params()),
                                         per_example_grads(b.losses(b.params()), b.params()), 1e-9, 1e-11,
                                         "per-example gradient of parameter"));
                   require(compare(per_example_grad_norms(a.losses(a.params()), a.params()),
                                   per_example_grad_norms(b.losses(b.params()), b.params()), 1e-9, 1e-11,
                                   "per-example gradient norms"));
                 }});
  out.push_back({"engine: Hessian-vector product of a small network's loss", nullptr, nullptr, [](Device device) {
                   auto run = [](Device d) {
                     SmallNet n(d);
                     TensorList v;
                     Generator g(99);
                     for (const Tensor& p : n.params()) v.push_back(normal(p.shape(), 0, 1, DType::f64, g).to(d));
                     return hvp([&n](const TensorList& p) { return mean(n.losses(p)); }, n.params(), v).derivatives;
                   };
                   require(compare_lists(run(Device::cpu()), run(device), 1e-9, 1e-11, "Hessian-vector product of"));
                 }});
  out.push_back({"engine: dropout masks from one generator", nullptr, nullptr, [](Device device) {
                   Tensor x = ones({64, 33}, DType::f32);
                   Generator g1(5, 2), g2(5, 2);
                   require(compare(dropout(x, 0.3, true, g1), dropout(x.to(device), 0.3, true, g2), 0, 0, "dropout"));
                 }});
  return out;
}

}  // namespace

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const registry::OpEntry& e : registry::entries())
    for (const registry::OpCase& c : e.cases) out.push_back({e.name + ": " + c.label, &e, &c, {}});
  for (Case& c : engine_cases()) out.push_back(std::move(c));
  return out;
}

std::vector<std::string> ops_without_cases() {
  std::vector<std::string> names;
  for (const registry::OpEntry& e : registry::entries())
    if (e.cases.empty()) names.push_back(e.name);
  return names;
}

std::string run(const Case& c, Device device, const Tolerance& tolerance) {
  try {
    if (c.engine_check) {
      c.engine_check(device);
      return "";
    }
    return run_op_case(*c.entry, *c.op_case, device, tolerance);
  } catch (const std::exception& e) {
    return std::string("threw: ") + e.what();
  }
}

std::string Report::summary() const {
  std::string s = "cuda parity: " + std::to_string(passed) + " passed, " + std::to_string(failed) + " failed, " +
                  std::to_string(skipped) + " skipped";
  if (!skip_reason.empty()) s += " (" + skip_reason + ")";
  return s;
}

Report run_all(const Tolerance& tolerance) {
  Report r;
  std::vector<Case> all = cases();
  if (!cuda::is_available()) {
    r.skipped = static_cast<int>(all.size());
    r.skip_reason = "no CUDA device: " + cuda::unavailable_reason();
    return r;
  }
  for (const Case& c : all) {
    std::string e = run(c, Device::cuda(0), tolerance);
    if (e.empty()) {
      ++r.passed;
    } else {
      ++r.failed;
      r.failures.push_back(c.name + ": " + e);
    }
  }
  return r;
}

}  // namespace plateau::parity
