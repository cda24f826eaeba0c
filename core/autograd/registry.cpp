#include "core/autograd/registry.h"

#include <algorithm>
#include <stdexcept>

#include "core/autograd/grad_mode.h"
#include "core/ops/ops.h"

namespace plateau::registry {

namespace {
std::vector<OpEntry>& storage() {
  static std::vector<OpEntry> all;
  return all;
}
bool sorted = false;
}  // namespace

void register_op(OpEntry entry) {
  for (const OpEntry& e : storage())
    if (e.name == entry.name) throw std::logic_error("plateau: op '" + entry.name + "' is registered twice");
  storage().push_back(std::move(entry));
  sorted = false;
}

const std::vector<OpEntry>& entries() {
  if (!sorted) {
    std::sort(storage().begin(), storage().end(), [](const OpEntry& a, const OpEntry& b) { return a.name < b.name; });
    sorted = true;
  }
  return storage();
}

const OpEntry* find(const std::string& name) {
  for (const OpEntry& e : entries())
    if (e.name == name) return &e;
  return nullptr;
}

static Tensor make_one(const InputSpec& spec, DType dtype, Generator& gen, bool noncontiguous) {
  NoGradGuard no_grad;
  switch (spec.domain) {
    case Domain::index: return randint(0, static_cast<int64_t>(spec.high), spec.shape, gen);
    case Domain::mask: return gt(uniform(spec.shape, 0, 1, DType::f64, gen), 0.5);
    case Domain::real:
    case Domain::away_from_zero: break;
  }
  Tensor x = uniform(spec.shape, spec.low, spec.high, DType::f64, gen);
  if (spec.domain == Domain::away_from_zero) {
    Tensor s = sub(mul(to_dtype(gt(uniform(spec.shape, 0, 1, DType::f64, gen), 0.5), DType::f64), 2.0), 1.0);
    x = mul(x, s);
  }
  x = to_dtype(x, dtype);
  if (noncontiguous && x.dim() >= 1 && x.numel() > 1) {
    // Same values, every other element of a buffer twice as long in the last dim.
    Shape wide = x.shape();
    wide[wide.size() - 1] *= 2;
    Tensor buffer = zeros(wide, dtype);
    Tensor view = slice(buffer, -1, 0, wide.back(), 2);
    copy_(view, x);
    x = view;
  }
  return x;
}

TensorList make_inputs(const OpCase& c, DType dtype, uint64_t seed, bool noncontiguous) {
  Generator gen(seed, 17);
  TensorList inputs;
  for (const InputSpec& spec : c.inputs) {
    Tensor t = make_one(spec, dtype, gen, noncontiguous);
    if (spec.differentiable && t.is_floating_point()) t.requires_grad_(true);
    inputs.push_back(t);
  }
  return inputs;
}

}  // namespace plateau::registry
