#pragma once
// Measuring sharpness (the tools of issue 5): the worst-case loss increase in a ρ-ball, the loss
// along the line between two weight settings, and a 2-D loss surface along two filter-normalized
// random directions (Li et al., NeurIPS 2018). Each evaluates a loss closure averaged over batches
// and leaves the model's weights as it found them. tools/plot.py draws the CSV files.
#include <functional>
#include <string>
#include <vector>

#include "optim/perturbation.h"

namespace plateau::optim {

// The loss of the model on batch `batch` (a scalar); the tools average it over `batches`.
using ModelLoss = std::function<Tensor(nn::Module& model, int64_t batch)>;

struct WorstCaseOptions {
  double rho = 0.05;
  int64_t steps = 5;        // K ascent steps
  double step_size = 0;     // per step; 0: 2ρ/K
  ParamFilter filter = {};  // which parameters are perturbed
};

struct WorstCase {
  double loss = 0;            // L(w)
  double perturbed_loss = 0;  // the largest L(w + ε) seen, ‖ε‖ ≤ ρ
  double sharpness = 0;       // perturbed_loss − loss
  std::vector<double> trace;  // L(w + ε_k) after each step
};

// max over ‖ε‖₂ ≤ ρ of L(w + ε) − L(w), by K steps ε ← Π(ε + α·∇L(w + ε)/‖∇L(w + ε)‖) from ε = 0, Π the
// projection onto the ball. A lower bound of the true maximum (ascent may stop short of it).
WorstCase worst_case_sharpness(nn::Module& model, const ModelLoss& loss, int64_t batches,
                               const WorstCaseOptions& options = {});

// L((1 − α)·a + α·b) for each α: every floating tensor of the state dicts (parameters and buffers)
// is interpolated. a and b are state dicts of `model` (Module::state_dict or a checkpoint's).
std::vector<double> loss_along_line(nn::Module& model, const io::TensorMap& a, const io::TensorMap& b,
                                    const std::vector<double>& alphas, const ModelLoss& loss, int64_t batches);

// A direction like the model's parameters, filter-normalized: Gaussian, then each filter (slice along
// dim 0) of a parameter of rank ≥ 2 rescaled to the norm of the same filter of the weights; parameters
// of rank ≤ 1 (biases, norm scales) get zero, as Li et al. do.
TensorList filter_normalized_direction(const nn::Module& model, Generator& gen);

struct Surface {
  std::vector<double> alphas, betas;
  std::vector<double> loss;  // loss[i * betas.size() + j] = L(w + alphas[i]·d1 + betas[j]·d2)
};
Surface loss_surface(nn::Module& model, const ModelLoss& loss, int64_t batches, const std::vector<double>& alphas,
                     const std::vector<double>& betas, Generator& gen);

// CSV files for tools/plot.py: "alpha,loss" rows, and "alpha,beta,loss" rows.
void write_line_csv(const std::string& path, const std::vector<double>& alphas, const std::vector<double>& losses);
void write_surface_csv(const std::string& path, const Surface& surface);

}  // namespace plateau::optim
