// Losses, as in torch.nn.functional. All are composites of recorded ops (log_softmax, gather, sum,
// ...), so their first and second derivatives follow from those ops' rules.
#include <stdexcept>
#include <string>
#include <vector>

#include "core/autograd/function.h"
#include "core/autograd/registry.h"
#include "core/ops/op_util.h"
#include "core/ops/ops.h"

namespace plateau {

using namespace ops_detail;

namespace {

void check_floating(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) fail(op, std::string(what) + " is undefined");
  if (!t.is_floating_point())
    fail(op, std::string(what) + " must be floating (f32 or f64), got " + dtype_name(t.dtype()) + " of shape " +
                 t.shape().str());
}

Tensor reduce(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return sum(loss);
    case Reduction::mean: return mean(loss);
  }
  return loss;
}

// Per-class weights [C] seen along dim 1 of a tensor of rank `rank`: [1, C, 1, ...].
Tensor class_weight_view(const Tensor& weight, int64_t rank) {
  Shape s;
  for (int64_t d = 0; d < rank; ++d) s.push_back(d == 1 ? weight.numel() : 1);
  return reshape(weight, s);
}

void check_class_weight(const Tensor& weight, const Tensor& input, const char* op) {
  if (!weight.defined()) return;
  const int64_t classes = input.size(1);
  check_floating(weight, op, "class weight");
  if (weight.dim() != 1 || weight.numel() != classes)
    fail(op, "class weight of shape " + weight.shape().str() + " does not match the " + std::to_string(classes) +
                 " classes (dim 1) of input " + input.shape().str() + "; pass a weight of shape [" +
                 std::to_string(classes) + "]");
}

// Class-index targets, resolved without autograd (targets carry no gradient).
struct ClassTargets {
  Tensor safe;            // i64 [N, 1, d...]: the target, with ignored entries replaced by class 0
  Tensor weight;          // [N, d...] in the input's dtype: the class weight, 0 where ignored
  Tensor valid;           // [N, d...]: 1, or 0 where ignored
  double weight_sum = 0;  // Σ weight: the divisor of the mean
};

ClassTargets resolve_targets(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o, const char* op) {
  // input [N, C, d...], target [N, d...]
  Shape expected = input.shape();
  expected.erase(1);
  if (target.shape() != expected)
    fail(op, "class-index target of shape " + target.shape().str() + " does not match input of shape " +
                 input.shape().str() + " (expected target shape " + expected.str() + ": the input without dim 1)");
  const int64_t classes = input.size(1);
  check_class_weight(o.weight, input, op);
  std::vector<double> class_weight =
      o.weight.defined() ? o.weight.to_vector<double>() : std::vector<double>(classes, 1.0);
  std::vector<int64_t> t = target.to_vector<int64_t>();
  std::vector<double> w(t.size()), v(t.size());
  ClassTargets r;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == o.ignore_index) {
      t[i] = 0;
      continue;
    }
    if (t[i] < 0 || t[i] >= classes)
      fail(op, "target " + std::to_string(t[i]) + " is out of range for " + std::to_string(classes) +
                   " classes (input " + input.shape().str() + "); targets must be in [0, " + std::to_string(classes) +
                   ") or equal ignore_index (" + std::to_string(o.ignore_index) + ")");
    w[i] = class_weight[t[i]];
    v[i] = 1.0;
    r.weight_sum += w[i];
  }
  Shape safe_shape = expected;
  safe_shape.insert(1, 1);
  r.safe = to_device(tensor(t, safe_shape), input.device());
  r.weight = to_device(tensor(w, expected, input.dtype()), input.device());
  r.valid = to_device(tensor(v, expected, input.dtype()), input.device());
  return r;
}

// −weight[t]·log_probs[t] per element (0 where ignored), reduced; mean divides by Σ weight.
Tensor weighted_nll(const Tensor& log_probs, const ClassTargets& t, Reduction reduction) {
  Tensor per = neg(squeeze(gather(log_probs, 1, t.safe), 1)) * t.weight;
  if (reduction == Reduction::mean) return sum(per) / t.weight_sum;
  return reduce(per, reduction);
}

// Checks logits/log-probs and the options shared by cross_entropy and nll_loss; a [C] input (one
// example, target 0-d) becomes [1, C].
Tensor batched_input(const Tensor& input, const Tensor& target, const char* op, const char* what) {
  check_floating(input, op, what);
  if (!target.defined()) fail(op, "target is undefined");
  if (input.dim() == 0) fail(op, std::string(what) + " must be [N, C, d...] or [C], got a 0-d tensor");
  return input.dim() == 1 ? unsqueeze(input, 0) : input;
}

Tensor unbatched_result(const Tensor& loss, const Tensor& input, Reduction reduction) {
  return input.dim() == 1 && reduction == Reduction::none ? squeeze(loss, 0) : loss;
}

}  // namespace

// loss_i = −Σ_c w_c t_ic log softmax(x_i)_c (probability targets) or −w_t log softmax(x_i)_t, with
// label smoothing (1−ε)·nll + ε/C·Σ_c −w_c log p_c;  gradients through log_softmax and gather
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& o) {
  autograd::OpScope scope("cross_entropy");
  const char* op = "cross_entropy";
  Tensor x = batched_input(logits, target, op, "logits");
  const double eps = o.label_smoothing;
  if (!(eps >= 0.0 && eps <= 1.0)) fail(op, "label_smoothing must be in [0, 1], got " + std::to_string(eps));
  const int64_t classes = x.size(1);
  check_class_weight(o.weight, x, op);
  Tensor log_probs = log_softmax(x, 1);
  Tensor weight_view = o.weight.defined() ? class_weight_view(o.weight.to(x.dtype()), x.dim()) : Tensor();

  if (target.is_floating_point()) {
    Tensor t = logits.dim() == 1 ? unsqueeze(target, 0) : target;
    if (t.shape() != x.shape())
      fail(op, "probability target of shape " + target.shape().str() + " must have the shape of logits " +
                   logits.shape().str());
    if (eps > 0) t = t * (1.0 - eps) + eps / static_cast<double>(classes);
    Tensor prod = log_probs * t;
    if (weight_view.defined()) prod = prod * weight_view;
    Tensor per = neg(sum(prod, {1}));  // [N, d...]
    // The mean is over examples (and positions), whatever the class weights.
    Tensor loss =
        o.reduction == Reduction::mean ? sum(per) / static_cast<double>(per.numel()) : reduce(per, o.reduction);
    return unbatched_result(loss, logits, o.reduction);
  }
  if (target.dtype() != DType::i64)
    fail(op, std::string("target must be class indices (i64) or probabilities (floating), got ") +
                 dtype_name(target.dtype()));
  Tensor t = logits.dim() == 1 ? unsqueeze(target, 0) : target;
  ClassTargets ct = resolve_targets(x, t, o, op);
  Tensor loss = weighted_nll(log_probs, ct, o.reduction);
  if (eps > 0) {
    // The smoothing term drops ignored rows too, and its mean shares the nll's divisor.
    Tensor weighted = weight_view.defined() ? log_probs * weight_view : log_probs;
    Tensor smooth = neg(sum(weighted, {1})) * ct.valid;
    Tensor reduced = o.reduction == Reduction::mean ? sum(smooth) / ct.weight_sum : reduce(smooth, o.reduction);
    loss = loss * (1.0 - eps) + reduced * (eps / static_cast<double>(classes));
  }
  return unbatched_result(loss, logits, o.reduction);
}

PLATEAU_REGISTER_OP({"cross_entropy",
                     "dlogits = (softmax(x) − onehot(t))·w_t (smoothing, weights, ignore_index as composites)",
                     {{"class indices, mean",
                       {registry::real({4, 3}), registry::index({4}, 3)},
                       [](const TensorList& in) -> TensorList { return {cross_entropy(in[0], in[1])}; }},
                      {"[N, C, d] weights, smoothing 0.2, ignore_index 1, mean",
                       {registry::real({3, 4, 2}), registry::index({3, 2}, 4), registry::constant({4}, 0.5, 2.0)},
                       [](const TensorList& in) -> TensorList {
                         // Entry 0 is never ignored, so the mean's divisor is never zero.
                         Tensor target = in[1].clone();
                         target.data<int64_t>()[0] = 0;
                         CrossEntropyOptions o;
                         o.weight = in[2];
                         o.ignore_index = 1;
                         o.label_smoothing = 0.2;
                         return {cross_entropy(in[0], target, o)};
                       }},
                      {"probability targets, smoothing 0.1, reduction none",
                       {registry::real({3, 5}), registry::real({3, 5})},
                       [](const TensorList& in) -> TensorList {
                         CrossEntropyOptions o;
                         o.reduction = Reduction::none;
                         o.label_smoothing = 0.1;
                         return {cross_entropy(in[0], softmax(in[1], 1), o)};
                       }}}});

// loss_i = −w_t · log_probs[i, t] (0 where t is ignore_index);  dlog_probs = −w_t at t
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const CrossEntropyOptions& o) {
  autograd::OpScope scope("nll_loss");
  const char* op = "nll_loss";
  Tensor x = batched_input(log_probs, target, op, "log_probs");
  if (o.label_smoothing != 0.0) fail(op, "label_smoothing is not supported; use cross_entropy on the logits");
  if (target.dtype() != DType::i64)
    fail(op, std::string("target must be class indices (i64), got ") + dtype_name(target.dtype()) +
                 "; for probability targets use cross_entropy");
  ClassTargets ct = resolve_targets(x, log_probs.dim() == 1 ? unsqueeze(target, 0) : target, o, op);
  return unbatched_result(weighted_nll(x, ct, o.reduction), log_probs, o.reduction);
}

PLATEAU_REGISTER_OP({"nll_loss",
                     "dlog_probs[i, t_i] = −w_t (scaled by the reduction)",
                     {{"sum",
                       {registry::real({5, 3}), registry::index({5}, 3)},
                       [](const TensorList& in) -> TensorList {
                         CrossEntropyOptions o;
                         o.reduction = Reduction::sum;
                         return {nll_loss(in[0], in[1], o)};
                       }},
                      {"[N, C, d] weights, ignore_index 0, mean",
                       {registry::real({2, 3, 3}), registry::index({2, 3}, 3), registry::constant({3}, 0.5, 2.0)},
                       [](const TensorList& in) -> TensorList {
                         Tensor target = in[1].clone();
                         target.data<int64_t>()[0] = 2;  // never all ignored
                         CrossEntropyOptions o;
                         o.weight = in[2];
                         o.ignore_index = 0;
                         return {nll_loss(in[0], target, o)};
                       }}}});

// loss = (input − target)²;  dinput = 2(input − target)·g, dtarget = −dinput
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  autograd::OpScope scope("mse_loss");
  check_floating(input, "mse_loss", "input");
  check_floating(target, "mse_loss", "target");
  Tensor d = input - target;
  return reduce(d * d, reduction);
}

PLATEAU_REGISTER_OP({"mse_loss",
                     "dinput = 2(input − target)·g / n (mean)",
                     {{"mean",
                       {registry::real({3, 4}), registry::real({3, 4})},
                       [](const TensorList& in) -> TensorList { return {mse_loss(in[0], in[1])}; }},
                      {"none, broadcast target",
                       {registry::real({2, 3}), registry::real({3})},
                       [](const TensorList& in) -> TensorList { return {mse_loss(in[0], in[1], Reduction::none)}; }}}});

// loss = t·(log t − input) (0 where t = 0), or exp(t)·(t − input) with log_target;
// dinput = −t·g, dt = (log t + 1 − input)·g
Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction, bool log_target, bool batchmean) {
  autograd::OpScope scope("kl_div");
  const char* op = "kl_div";
  check_floating(input, op, "input");
  check_floating(target, op, "target");
  if (batchmean && reduction == Reduction::none)
    fail(op, "batchmean needs a reducing reduction (mean or sum), got none");
  Tensor loss;
  if (log_target) {
    loss = exp(target) * (target - input);
  } else {
    // t·log t with the t = 0 entries read as 1 inside the log: the value and both derivatives are
    // then 0 there instead of 0·(−inf).
    Tensor safe = where(gt(target, 0.0), target, scalar_tensor(1.0, target.dtype(), target.device()));
    loss = target * log(safe) - target * input;
  }
  if (batchmean && input.dim() > 0) return sum(loss) / static_cast<double>(input.size(0));
  return reduce(loss, batchmean ? Reduction::sum : reduction);
}

PLATEAU_REGISTER_OP(
    {"kl_div",
     "dinput = −t·g, dt = (log t + 1 − input)·g",
     {{"probabilities, mean",
       {registry::real({3, 4}), registry::positive({3, 4}, 0.1, 1.0)},
       [](const TensorList& in) -> TensorList { return {kl_div(in[0], in[1])}; }},
      {"log target, batchmean",
       {registry::real({3, 4}), registry::real({3, 4})},
       [](const TensorList& in) -> TensorList { return {kl_div(in[0], in[1], Reduction::mean, true, true)}; }},
      {"none", {registry::real({5}), registry::positive({5}, 0.1, 1.0)}, [](const TensorList& in) -> TensorList {
         return {kl_div(in[0], in[1], Reduction::none)};
       }}}});

// loss = max(x, 0) − x·y + log(1 + exp(−|x|)) (stable form); with pos_weight p:
// (1 − y)·x + (1 + (p − 1)·y)·(log(1 + exp(−|x|)) + max(−x, 0));  dx = (σ(x) − y)·g without p
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, Reduction reduction,
                                        const Tensor& pos_weight) {
  autograd::OpScope scope("binary_cross_entropy_with_logits");
  const char* op = "binary_cross_entropy_with_logits";
  check_floating(logits, op, "logits");
  check_floating(target, op, "target");
  if (target.shape() != logits.shape())
    fail(op, "target of shape " + target.shape().str() + " must have the shape of logits " + logits.shape().str());
  Tensor softplus_neg_abs = log1p(exp(neg(abs(logits))));
  Tensor loss;
  if (pos_weight.defined()) {
    check_floating(pos_weight, op, "pos_weight");
    if (broadcast_shapes(pos_weight.shape(), target.shape(), op) != target.shape())
      fail(op, "pos_weight of shape " + pos_weight.shape().str() + " must broadcast to the target shape " +
                   target.shape().str() + " (one weight per class: the last dim)");
    Tensor log_weight = (pos_weight - 1.0) * target + 1.0;
    loss = (1.0 - target) * logits + log_weight * (softplus_neg_abs + relu(neg(logits)));
  } else {
    loss = relu(logits) - logits * target + softplus_neg_abs;
  }
  return reduce(loss, reduction);
}

PLATEAU_REGISTER_OP(
    {"binary_cross_entropy_with_logits",
     "dx = (σ(x)·(1 + (p − 1)·y) − p·y)·g; dy = −x·g (p = 1)",
     {{"mean",
       {registry::real({3, 4}, -3.0, 3.0), registry::positive({3, 4}, 0.0, 1.0)},
       [](const TensorList& in) -> TensorList { return {binary_cross_entropy_with_logits(in[0], in[1])}; }},
      {"pos_weight, sum",
       {registry::real({2, 3}, -3.0, 3.0), registry::positive({2, 3}, 0.0, 1.0), registry::constant({3}, 0.5, 3.0)},
       [](const TensorList& in) -> TensorList {
         return {binary_cross_entropy_with_logits(in[0], in[1], Reduction::sum, in[2])};
       }}}});

}  // namespace plateau
