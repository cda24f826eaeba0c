// per_example_grads and per_example_grad_norms (issue 3) against a brute-force loop of single-example
// gradients, in f64, on an MLP, CNNs (groups, stride, dilation, the Gram and the direct conv norm), a
// transformer block, models that reuse a parameter and normalization layers; and the errors for models
// whose examples mix or whose ops have no per-example rule.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "plateau.h"
#include "tests/helpers.h"

using namespace plateau;

namespace {

constexpr DType kF64 = DType::f64;
constexpr int64_t kBatch = 5;

// The losses [n] of a model on `input` [n, ...] with `target` [n, ...]; the parameters are captured.
using Model = std::function<Tensor(const Tensor& input, const Tensor& target)>;

Tensor param(const Shape& shape, Generator& gen, double std = 0.5) {
  return normal(shape, 0, std, kF64, gen).requires_grad_();
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.contiguous().to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

// max|got − want| <= 1e-10 · max(1, max|want|).
void check_rel(const Tensor& got, const Tensor& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == kF64);
  const std::vector<double> a = got.contiguous().to_vector<double>(), b = want.contiguous().to_vector<double>();
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  INFO("max error " << err << ", max |reference| " << scale);
  CHECK(err <= 1e-10 * std::max(1.0, scale));
}

// For each parameter [B, *shape]: row b is the gradient of the loss of example b, from the model run
// on rows b:b+1 of input and target alone.
TensorList brute_force_grads(const Model& model, const Tensor& input, const Tensor& target, const TensorList& params) {
  const int64_t batch = input.size(0);
  std::vector<TensorList> rows(params.size());
  for (int64_t b = 0; b < batch; ++b) {
    Tensor loss = model(slice(input, 0, b, b + 1), slice(target, 0, b, b + 1));
    REQUIRE(loss.shape() == Shape{1});
    GradOptions options;
    options.allow_unused = true;
    TensorList g = grad({sum(loss)}, params, options);
    for (size_t i = 0; i < params.size(); ++i) rows[i].push_back(g[i].defined() ? g[i] : zeros_like(params[i]));
  }
  TensorList out;
  for (const TensorList& r : rows) out.push_back(stack(r, 0));
  return out;
}

// [B]: the L2 norm of each example's gradient over all parameters.
Tensor brute_force_norms(const TensorList& grads) {
  Tensor total = zeros({grads[0].size(0)}, kF64);
  for (const Tensor& g : grads) total = total + sum(reshape(g * g, {g.size(0), -1}), {1});
  return sqrt(total);
}

// per_example_grads and per_example_grad_norms of the whole batch against the brute-force loop. Every
// parameter must get a nonzero gradient from some example (else the comparison proves little), and the
// rows must sum to the ordinary gradient of Σ losses.
void check_model(const Model& model, const Tensor& input, const Tensor& target, const TensorList& params) {
  Tensor losses = model(input, target);
  REQUIRE(losses.shape() == Shape{input.size(0)});
  const TensorList want = brute_force_grads(model, input, target, params);
  const TensorList got = per_example_grads(losses, params);
  REQUIRE(got.size() == params.size());
  GradOptions keep;
  keep.retain_graph = true;  // the norms below walk the same graph
  const TensorList total = grad({sum(losses)}, params, keep);
  for (size_t i = 0; i < params.size(); ++i) {
    INFO("parameter " << i << " of shape " << params[i].shape().str());
    CHECK(max_abs(want[i]) > 0);
    check_rel(got[i], want[i], "per-example gradient");
    check_rel(sum(got[i], {0}), total[i], "per-example gradients summed over the examples");
  }
  Tensor norms = per_example_grad_norms(losses, params);
  check_rel(norms, brute_force_norms(want), "per-example gradient norms");
}

CrossEntropyOptions no_reduction() {
  CrossEntropyOptions o;
  o.reduction = Reduction::none;
  return o;
}

Tensor ce(const Tensor& logits, const Tensor& target) { return cross_entropy(logits, target, no_reduction()); }

bool has_repeat_in_a_row(const Tensor& ids) {
  const int64_t t = ids.size(1);
  const std::vector<int64_t> v = ids.contiguous().to_vector<int64_t>();
  for (int64_t b = 0; b < ids.size(0); ++b)
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = i + 1; j < t; ++j)
        if (v[b * t + i] == v[b * t + j]) return true;
  return false;
}

// The message of fn's exception (empty when it throws none).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& piece) { return s.find(piece) != std::string::npos; }

// A 2-layer MLP: 3 inputs, 6 hidden, 4 classes.
struct Mlp {
  Tensor w1, b1, w2, b2;
  explicit Mlp(Generator& gen)
      : w1(param({6, 3}, gen)), b1(param({6}, gen)), w2(param({4, 6}, gen)), b2(param({4}, gen)) {}
  TensorList params() const { return {w1, b1, w2, b2}; }
  Tensor operator()(const Tensor& x, const Tensor& y) const { return ce(linear(tanh(linear(x, w1, b1)), w2, b2), y); }
};

Conv2dOptions conv_options(int64_t stride, int64_t padding, int64_t dilation = 1, int64_t groups = 1) {
  Conv2dOptions o;
  o.stride = {stride, stride};
  o.padding = {padding, padding};
  o.dilation = {dilation, dilation};
  o.groups = groups;
  return o;
}

}  // namespace

TEST_CASE("per_example: MLP (linear + bias, tanh, cross_entropy) matches the single-example loop") {
  Generator gen(11);
  Mlp mlp(gen);
  Tensor x = normal({kBatch, 3}, 0, 1, kF64, gen), y = randint(0, 4, {kBatch}, gen);
  check_model(mlp, x, y, mlp.params());
}

TEST_CASE("per_example: CNN with stride, padding, groups and dilation matches the single-example loop") {
  Generator gen(12);
  // conv1: 3→4, 3x3, stride 2, padding 1: [B, 3, 8, 8] → [B, 4, 4, 4]. conv2: 4→4 in 2 groups, 3x3,
  // dilation 2, padding 2 → [B, 4, 4, 4]. The conv norms form each gradient (P·(K + og) >= og·K:
  // conv1 16·31 vs 4·27, conv2 16·20 vs 2·18).
  Tensor w1 = param({4, 3, 3, 3}, gen), b1 = param({4}, gen);
  Tensor w2 = param({4, 2, 3, 3}, gen), b2 = param({4}, gen);
  Tensor w3 = param({3, 16}, gen), b3 = param({3}, gen);
  Model model = [&](const Tensor& x, const Tensor& y) {
    Tensor h = relu(conv2d(x, w1, b1, conv_options(2, 1)));
    h = relu(conv2d(h, w2, b2, conv_options(1, 2, 2, 2)));
    h = flatten(max_pool2d(h, {}), 1);  // [B, 4, 2, 2] → [B, 16]
    return ce(linear(h, w3, b3), y);
  };
  Tensor x = normal({kBatch, 3, 8, 8}, 0, 1, kF64, gen), y = randint(0, 3, {kBatch}, gen);
  check_model(model, x, y, {w1, b1, w2, b2, w3, b3});
}

TEST_CASE("per_example: conv whose gradient norm takes the Gram form matches the single-example loop") {
  Generator gen(13);
  // conv1 16→16, 3x3, no padding: [B, 16, 4, 4] → [B, 16, 2, 2]; P = 4, K = 144, og = 16, so
  // P·(K + og) = 640 < og·K = 2304 and conv2d_weight_grad_sq_norms takes its Gram branch. conv2 is a
  // pointwise 16→8 conv in 2 groups (K = 8, og = 4, P = 4: 48 >= 32), which forms the gradient.
  Tensor w1 = param({16, 16, 3, 3}, gen, 0.1), b1 = param({16}, gen);
  Tensor w2 = param({8, 8, 1, 1}, gen), b2 = param({8}, gen);
  Tensor w3 = param({3, 32}, gen), b3 = param({3}, gen);
  Model model = [&](const Tensor& x, const Tensor& y) {
    Tensor h = relu(conv2d(x, w1, b1));
    h = tanh(conv2d(h, w2, b2, conv_options(1, 0, 1, 2)));
    return ce(linear(flatten(h, 1), w3, b3), y);
  };
  Tensor x = normal({kBatch, 16, 4, 4}, 0, 1, kF64, gen), y = randint(0, 3, {kBatch}, gen);
  check_model(model, x, y, {w1, b1, w2, b2, w3, b3});
  SUBCASE("the conv weight alone") {  // its norm only, with no other parameter to hide an error
    Tensor losses = model(x, y);
    TensorList want = brute_force_grads(model, x, y, {w1});
    check_rel(per_example_grad_norms(losses, {w1}), brute_force_norms(want), "Gram-form conv norm");
  }
}

TEST_CASE("per_example: transformer block (embedding, layer norm, attention) matches the single-example loop") {
  // T = 3: the attention projections' norms take linear's Gram form (T·(in + out) = 48 < in·out = 64);
  // T = 6 forms their gradients (96 >= 64).
  for (int64_t t : {3, 6}) {
    CAPTURE(t);
    Generator gen(14 + t);
    const int64_t vocab = 7, width = 8, classes = 3;
    Tensor emb = param({vocab, width}, gen), pos = param({t, width}, gen);
    Tensor ln_w = param({width}, gen), ln_b = param({width}, gen);
    Tensor wq = param({width, width}, gen), bq = param({width}, gen);
    Tensor wk = param({width, width}, gen), bk = param({width}, gen);
    Tensor wv = param({width, width}, gen), bv = param({width}, gen);
    Tensor wo = param({width, width}, gen), bo = param({width}, gen);
    Tensor wc = param({classes, width}, gen), bc = param({classes}, gen);
    Model model = [&](const Tensor& ids, const Tensor& y) {
      Tensor e = embedding(emb, ids) + pos;  // [B, T, 8]; pos is shared by every example
      Tensor h = layer_norm(e, {width}, ln_w, ln_b);
      Tensor q = linear(h, wq, bq), k = linear(h, wk, bk), v = linear(h, wv, bv);
      Tensor scores = matmul(q, transpose(k, 1, 2)) / std::sqrt(double(width));
      Tensor attended = linear(matmul(softmax(scores, -1), v), wo, bo);
      Tensor pooled = mean(e + attended, {1});  // [B, 8]
      return ce(linear(pooled, wc, bc), y);
    };
    Tensor ids = randint(0, vocab, {kBatch, t}, gen), y = randint(0, classes, {kBatch}, gen);
    if (t == 3) ids = tensor(std::vector<int64_t>{1, 4, 1, 2, 2, 2, 0, 6, 3, 5, 3, 5, 6, 0, 6}, {kBatch, 3});
    REQUIRE(has_repeat_in_a_row(ids));  // the embedding norm's equality mask matters
    check_model(model, ids, y, {emb, pos, ln_w, ln_b, wq, bq, wk, bk, wv, bv, wo, bo, wc, bc});
    // The embedding's Gram norm on its own.
    Tensor losses = model(ids, y);
    check_rel(per_example_grad_norms(losses, {emb}), brute_force_norms(brute_force_grads(model, ids, y, {emb})),
              "embedding norm");
  }
}

TEST_CASE("per_example: a parameter used twice gets the sum of its uses per example") {
  SUBCASE("the same linear weight applied twice") {
    Generator gen(21);
    Tensor w = param({4, 4}, gen), b1 = param({4}, gen), b2 = param({4}, gen);
    Model model = [&](const Tensor& x, const Tensor& y) {
      Tensor h = tanh(linear(x, w, b1));
      return ce(linear(h, w, b2), y);
    };
    Tensor x = normal({kBatch, 4}, 0, 1, kF64, gen), y = randint(0, 4, {kBatch}, gen);
    check_model(model, x, y, {w, b1, b2});
    check_model(model, x, y, {w});  // the norm of the reused weight alone
  }
  SUBCASE("a tied embedding and output weight") {
    Generator gen(22);
    const int64_t vocab = 6, width = 5;
    Tensor emb = param({vocab, width}, gen), b = param({vocab}, gen);
    Model model = [&](const Tensor& ids, const Tensor& y) {
      Tensor h = tanh(mean(embedding(emb, ids), {1}));  // [B, 5]
      return ce(linear(h, emb, b), y);                  // logits [B, 6] through embᵀ
    };
    Tensor ids = tensor(std::vector<int64_t>{0, 3, 3, 1, 5, 5, 2, 2, 4, 1, 0, 1, 3, 4, 3}, {kBatch, 3});
    Tensor y = randint(0, vocab, {kBatch}, gen);
    check_model(model, ids, y, {emb, b});
    check_model(model, ids, y, {emb});
  }
}

TEST_CASE("per_example: group_norm and eval-mode batch_norm inside a CNN match the single-example loop") {
  Generator gen(31);
  Tensor w1 = param({4, 2, 3, 3}, gen), b1 = param({4}, gen);
  Tensor gn_w = param({4}, gen), gn_b = param({4}, gen);
  Tensor w2 = param({4, 4, 3, 3}, gen), b2 = param({4}, gen);
  Tensor bn_w = param({4}, gen), bn_b = param({4}, gen);
  Tensor running_mean = normal({4}, 0, 0.3, kF64, gen), running_var = uniform({4}, 0.5, 2.0, kF64, gen);
  Tensor w3 = param({3, 4}, gen), b3 = param({3}, gen);
  Model model = [&](const Tensor& x, const Tensor& y) {
    Tensor h = relu(group_norm(conv2d(x, w1, b1, conv_options(1, 1)), 2, gn_w, gn_b));
    h = relu(batch_norm(conv2d(h, w2, b2, conv_options(1, 1)), running_mean, running_var, bn_w, bn_b, false));
    return ce(linear(mean(h, {2, 3}), w3, b3), y);
  };
  Tensor x = normal({kBatch, 2, 6, 6}, 0, 1, kF64, gen), y = randint(0, 3, {kBatch}, gen);
  check_model(model, x, y, {w1, b1, gn_w, gn_b, w2, b2, bn_w, bn_b, w3, b3});
}

TEST_CASE("per_example: a batch of one gives the ordinary gradient with a leading 1") {
  Generator gen(41);
  Mlp mlp(gen);
  Tensor x = normal({1, 3}, 0, 1, kF64, gen), y = randint(0, 4, {1}, gen);
  Tensor losses = mlp(x, y);
  const TensorList params = mlp.params();
  const TensorList got = per_example_grads(losses, params);
  GradOptions keep;
  keep.retain_graph = true;
  const TensorList want = grad({sum(losses)}, params, keep);
  REQUIRE(got.size() == params.size());
  Tensor sq = zeros({1}, kF64);
  for (size_t i = 0; i < params.size(); ++i) {
    CHECK(max_abs(want[i]) > 0);
    check_rel(got[i], unsqueeze(want[i], 0), "gradient of a batch of one");
    sq = sq + sum(want[i] * want[i]);
  }
  check_rel(per_example_grad_norms(losses, params), sqrt(sq), "norm of a batch of one");
}

TEST_CASE("per_example: a parameter the losses do not use gets zeros") {
  Generator gen(51);
  Mlp mlp(gen);
  Tensor unused = param({2, 3}, gen);
  Tensor x = normal({kBatch, 3}, 0, 1, kF64, gen), y = randint(0, 4, {kBatch}, gen);
  Tensor losses = mlp(x, y);
  TensorList params = mlp.params();
  params.insert(params.begin() + 1, unused);
  const TensorList got = per_example_grads(losses, params);
  REQUIRE(got.size() == params.size());
  CHECK(got[1].shape() == Shape{kBatch, 2, 3});
  CHECK(got[1].dtype() == kF64);
  CHECK(max_abs(got[1]) == 0);
  // The others are unaffected, and so are the norms.
  const TensorList want = brute_force_grads(mlp, x, y, mlp.params());
  for (size_t i = 0; i < want.size(); ++i) check_rel(got[i < 1 ? i : i + 1], want[i], "next to an unused parameter");
  check_rel(per_example_grad_norms(losses, params), brute_force_norms(want), "norms with an unused parameter");
}

TEST_CASE("per_example: batch norm in training mode is refused, suggesting eval mode or group_norm") {
  Generator gen(61);
  Tensor w = param({4, 2, 3, 3}, gen), w2 = param({3, 4}, gen);
  Tensor x = normal({kBatch, 2, 5, 5}, 0, 1, kF64, gen), y = randint(0, 3, {kBatch}, gen);
  Tensor h = batch_norm(conv2d(x, w), {}, {}, {}, {}, /*training=*/true);
  Tensor losses = ce(linear(mean(relu(h), {2, 3}), w2), y);
  for (bool norms : {false, true}) {
    CAPTURE(norms);
    testing::check_error(
        [&] {
          if (norms)
            per_example_grad_norms(losses, {w, w2});
          else
            per_example_grads(losses, {w, w2});
        },
        {"batch_norm", "eval mode", "group_norm"});
  }
}

TEST_CASE("per_example: a reduction over dimension 0 is refused, naming it") {
  Generator gen(62);
  Tensor w = param({4, 3}, gen), w2 = param({2, 4}, gen);
  Tensor x = normal({kBatch, 3}, 0, 1, kF64, gen), y = randint(0, 2, {kBatch}, gen);
  SUBCASE("centering by the batch mean") {
    Tensor h = tanh(linear(x, w));
    Tensor losses = ce(linear(h - mean(h, {0}, true), w2), y);
    testing::check_error([&] { per_example_grads(losses, {w, w2}); }, {"dimension 0"});
    const std::string message = error_of([&] { per_example_grads(losses, {w, w2}); });
    INFO("message: " << message);
    CHECK((contains(message, "'mean'") || contains(message, "'sum'")));
  }
  SUBCASE("centering by the batch mean, without keepdim") {
    Tensor h = tanh(linear(x, w));
    Tensor losses = ce(linear(h - mean(h, {0}), w2), y);
    const std::string message = error_of([&] { per_example_grads(losses, {w, w2}); });
    INFO("message: " << message);
    CHECK(contains(message, "dimension 0"));
    CHECK((contains(message, "'mean'") || contains(message, "'sum'")));
  }
  SUBCASE("a sum over dim 0 whose result keeps B rows") {
    Tensor h = tanh(linear(x, w));                               // [B, 4]
    Tensor pairs = sum(unsqueeze(h, 0) * unsqueeze(h, 1), {0});  // [B, 4]: row j = h_j · Σ_i h_i
    Tensor losses = ce(linear(pairs, w2), y);
    testing::check_error([&] { per_example_grads(losses, {w, w2}); }, {"'sum'", "dimension 0"});
  }
}

TEST_CASE("per_example: a matmul contracting the example dimension is refused, naming it") {
  Generator gen(63);
  Tensor w = param({3, 3}, gen);
  Tensor x = normal({kBatch, 3}, 0, 1, kF64, gen);
  Tensor h = tanh(linear(x, w));
  Tensor m = matmul(transpose(h, 0, 1), h);  // [3, 3]: Σ over the examples
  Tensor losses = sum(matmul(x, m), {1});
  testing::check_error([&] { per_example_grads(losses, {w}); }, {"'matmul'", "dimension 0"});
  testing::check_error([&] { per_example_grad_norms(losses, {w}); }, {"'matmul'", "dimension 0"});
}

TEST_CASE("per_example: an op without a per-example rule is refused, naming it") {
  // conv2d_input_grad records no ExampleMap: used in a forward pass, its node stays unknown.
  Generator gen(64);
  Tensor w = param({4, 2, 3, 3}, gen), w2 = param({3, 2}, gen);
  Tensor g = normal({kBatch, 4, 3, 3}, 0, 1, kF64, gen), y = randint(0, 3, {kBatch}, gen);
  Tensor h = conv2d_input_grad(g, w, {kBatch, 2, 5, 5}, {});  // [B, 2, 5, 5]
  Tensor losses = ce(linear(mean(h, {2, 3}), w2), y);
  testing::check_error([&] { per_example_grads(losses, {w, w2}); }, {"'conv2d_input_grad'", "no per-example rule"});
  testing::check_error(
      [&] {
        per_example_grad_norms(losses, {w, w2});
      },
      {"'conv2d_input_grad'", "no per-example rule"});
}

TEST_CASE("per_example: malformed losses and parameters are refused") {
  Generator gen(65);
  Mlp mlp(gen);
  Tensor x = normal({kBatch, 3}, 0, 1, kF64, gen), y = randint(0, 4, {kBatch}, gen);
  Tensor losses = mlp(x, y);
  testing::check_error([&] { per_example_grads(unsqueeze(losses, 1), mlp.params()); },
                       {"losses must be [B]", "[5, 1]"});
  testing::check_error([&] { per_example_grads(sum(losses), mlp.params()); }, {"losses must be [B]"});
  testing::check_error([&] { per_example_grad_norms(unsqueeze(losses, 1), mlp.params()); }, {"losses must be [B]"});
  testing::check_error([&] { per_example_grads(zeros({0}, kF64), mlp.params()); }, {"losses is empty"});
  testing::check_error([&] { per_example_grad_norms(zeros({0}, kF64), mlp.params()); }, {"losses is empty"});
  testing::check_error([&] { per_example_grads(losses.detach(), mlp.params()); }, {"does not require grad"});
  Tensor doubled = mlp.w1 * 2.0;
  testing::check_error([&] { per_example_grads(losses, {doubled}); },
                       {"parameter 0", "leaf tensor", "computed by an op"});
  testing::check_error([&] { per_example_grads(losses, {mlp.w1, x}); }, {"parameter 1", "not requiring grad"});
  testing::check_error([&] { per_example_grads(losses, {mlp.w1, mlp.w1}); }, {"listed twice"});
}

TEST_CASE("per_example: f32 linear layers (the streaming outer-product kernel) match the single-example loop") {
  // Rows of 16 and 32 floats are whole cache lines, so the per-example outer products take the
  // non-temporal store path; 10 does not.
  Generator gen(21);
  Tensor x = normal({6, 16}, 0, 1, DType::f32, gen);
  Tensor w1 = normal({32, 16}, 0, 0.3, DType::f32, gen).requires_grad_();
  Tensor w2 = normal({10, 32}, 0, 0.3, DType::f32, gen).requires_grad_();
  Tensor target = randint(0, 10, {6}, gen);
  CrossEntropyOptions none;
  none.reduction = Reduction::none;
  auto losses_of = [&](const Tensor& in, const Tensor& t) {
    return cross_entropy(linear(tanh(linear(in, w1)), w2), t, none);
  };
  TensorList pe = per_example_grads(losses_of(x, target), {w1, w2});
  for (int64_t b = 0; b < 6; ++b) {
    TensorList g = grad({sum(losses_of(slice(x, 0, b, b + 1), slice(target, 0, b, b + 1)))}, {w1, w2});
    for (size_t i = 0; i < g.size(); ++i)
      CHECK(max_abs(squeeze(slice(pe[i], 0, b, b + 1), 0) - g[i]) <= 1e-6 * std::max(1.0, max_abs(g[i])));
  }
}
