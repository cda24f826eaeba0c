#include "optim/sharpness/landscape.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace plateau::optim {

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

double mean_loss(nn::Module& model, const ModelLoss& loss, int64_t batches) {
  NoGradGuard no_grad;
  double total = 0;
  for (int64_t b = 0; b < batches; ++b) total += loss(model, b).item();
  return total / batches;
}

void check_batches(int64_t batches, const char* what) {
  if (batches < 1) fail(std::string(what) + " needs at least one batch, got " + std::to_string(batches));
}

// Puts copies of the parameters' values back when it goes out of scope.
class Restore {
 public:
  explicit Restore(const TensorList& params) : params_(params) {
    for (const Tensor& p : params_) saved_.push_back(p.detach().clone());
  }
  ~Restore() {
    NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      Tensor p = params_[i];
      copy_(p, saved_[i]);
    }
  }
  const TensorList& saved() const { return saved_; }

 private:
  TensorList params_, saved_;
};

}  // namespace

WorstCase worst_case_sharpness(nn::Module& model, const ModelLoss& loss, int64_t batches,
                               const WorstCaseOptions& options) {
  check_batches(batches, "worst_case_sharpness");
  if (!(options.rho >= 0)) fail("worst_case_sharpness needs rho >= 0, got " + std::to_string(options.rho));
  if (options.steps < 1) fail("worst_case_sharpness needs at least one step, got " + std::to_string(options.steps));
  TensorList params;
  for (const auto& p : options.filter.select(model)) params.push_back(p.tensor);
  if (params.empty()) fail("worst_case_sharpness: the filter keeps no parameter of the model");
  Restore restore(params);
  const double alpha = options.step_size > 0 ? options.step_size : 2 * options.rho / options.steps;
  WorstCase r;
  r.loss = mean_loss(model, loss, batches);
  r.perturbed_loss = r.loss;
  TensorList eps;
  for (const Tensor& p : params) eps.push_back(zeros_like(p.detach()));
  for (int64_t k = 0; k < options.steps; ++k) {
    // ∇L(w + ε), averaged over the batches.
    TensorList g;
    for (int64_t b = 0; b < batches; ++b) {
      TensorList gb = grad({loss(model, b)}, params);
      if (g.empty()) {
        g = gb;
      } else {
        for (size_t i = 0; i < gb.size(); ++i) g[i] = g[i] + gb[i];
      }
    }
    NoGradGuard no_grad;
    double gnorm = 0;
    for (const Tensor& t : g) gnorm += sum(t * t).item();
    gnorm = std::sqrt(gnorm);
    if (gnorm == 0) break;
    double enorm = 0;
    for (size_t i = 0; i < eps.size(); ++i) {
      eps[i] = eps[i] + g[i] * (alpha / gnorm);
      enorm += sum(eps[i] * eps[i]).item();
    }
    enorm = std::sqrt(enorm);
    const double shrink = enorm > options.rho ? options.rho / enorm : 1.0;  // Π onto the ball
    for (size_t i = 0; i < eps.size(); ++i) {
      eps[i] = eps[i] * shrink;
      Tensor p = params[i];
      copy_(p, restore.saved()[i] + eps[i]);
    }
    const double l = mean_loss(model, loss, batches);
    r.trace.push_back(l);
    r.perturbed_loss = std::max(r.perturbed_loss, l);
  }
  r.sharpness = r.perturbed_loss - r.loss;
  return r;
}

std::vector<double> loss_along_line(nn::Module& model, const io::TensorMap& a, const io::TensorMap& b,
                                    const std::vector<double>& alphas, const ModelLoss& loss, int64_t batches) {
  check_batches(batches, "loss_along_line");
  for (const auto& [name, t] : a)
    if (!b.count(name) || b.at(name).shape() != t.shape())
      fail("loss_along_line: the two state dicts differ at '" + name + "'");
  const io::TensorMap own = model.state_dict();
  io::TensorMap original;
  for (const auto& [name, t] : own) original[name] = t.clone();
  std::vector<double> out;
  for (double alpha : alphas) {
    io::TensorMap mixed;
    for (const auto& [name, t] : a) mixed[name] = t.is_floating_point() ? t * (1 - alpha) + b.at(name) * alpha : t;
    model.load_state_dict(mixed);
    out.push_back(mean_loss(model, loss, batches));
  }
  model.load_state_dict(original);
  return out;
}

TensorList filter_normalized_direction(const nn::Module& model, Generator& gen) {
  NoGradGuard no_grad;
  TensorList d;
  for (const auto& p : model.named_parameters()) {
    const Tensor w = p.tensor.detach();
    if (w.dim() < 2) {
      d.push_back(zeros_like(w));
      continue;
    }
    Tensor r = normal(w.shape(), 0, 1, w.dtype(), gen);
    // Per filter: r_f · ‖w_f‖ / ‖r_f‖.
    Shape keep{w.size(0)};
    for (int64_t i = 1; i < w.dim(); ++i) keep.push_back(1);
    Dims rest;
    for (int64_t i = 1; i < w.dim(); ++i) rest.push_back(i);
    Tensor wn = sqrt(sum(w * w, rest, true)), rn = sqrt(sum(r * r, rest, true));
    d.push_back(r * wn / (rn + 1e-10));
  }
  return d;
}

Surface loss_surface(nn::Module& model, const ModelLoss& loss, int64_t batches, const std::vector<double>& alphas,
                     const std::vector<double>& betas, Generator& gen) {
  check_batches(batches, "loss_surface");
  TensorList params = model.parameters();
  TensorList d1 = filter_normalized_direction(model, gen), d2 = filter_normalized_direction(model, gen);
  Restore restore(params);
  Surface s{alphas, betas, {}};
  for (double a : alphas)
    for (double b : betas) {
      {
        NoGradGuard no_grad;
        for (size_t i = 0; i < params.size(); ++i) {
          Tensor p = params[i];
          copy_(p, restore.saved()[i] + d1[i] * a + d2[i] * b);
        }
      }
      s.loss.push_back(mean_loss(model, loss, batches));
    }
  return s;
}

void write_line_csv(const std::string& path, const std::vector<double>& alphas, const std::vector<double>& losses) {
  std::ofstream out(path);
  if (!out) fail("cannot write " + path);
  out << "alpha,loss\n";
  for (size_t i = 0; i < alphas.size() && i < losses.size(); ++i) out << alphas[i] << "," << losses[i] << "\n";
}

void write_surface_csv(const std::string& path, const Surface& s) {
  std::ofstream out(path);
  if (!out) fail("cannot write " + path);
  out << "alpha,beta,loss\n";
  for (size_t i = 0; i < s.alphas.size(); ++i)
    for (size_t j = 0; j < s.betas.size(); ++j)
      out << s.alphas[i] << "," << s.betas[j] << "," << s.loss[i * s.betas.size() + j] << "\n";
}

}  // namespace plateau::optim
