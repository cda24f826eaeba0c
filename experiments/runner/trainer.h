#pragma once
// A classification training loop on top of a Run: epochs of steps over a DataLoader, evaluation on
// validation and test sets after every epoch, metrics rows, a checkpoint every epoch (and on SIGINT /
// SIGTERM, mid-epoch), and resumption that continues bit for bit. The step itself is the
// experiment's (plain SGD, SAM, ...): the trainer only counts, logs and saves.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "experiments/runner/runner.h"
#include "nn/module.h"
#include "optim/optimizer.h"
#include "optim/perturbation.h"

namespace plateau::runner {

// What one optimisation step reports: the mean loss and the correct predictions of its first
// forward pass on the batch, and how many passes it cost.
struct StepOutcome {
  double loss = 0;
  int64_t correct = 0;
  int64_t forwards = 1, backwards = 1, hessian_vector_products = 0;
  // Per-step numbers the trainer averages over the epoch and logs (a perturbation method's ‖g‖, ‖ε‖,
  // sharpness, cos(g, g_SAM)).
  std::vector<std::pair<std::string, double>> diagnostics;
};
using StepFn = std::function<StepOutcome(const data::Batch& batch)>;

// How many rows of logits [B, K] have their largest entry at the label.
int64_t count_correct(const Tensor& logits, const Tensor& labels);

// What a TrainStep's result tells the trainer: the loss, the correct first-pass predictions, the
// passes, and a perturbation method's diagnostics (grad_norm, eps_norm, sharpness, grad_cosine).
StepOutcome step_outcome(const optim::StepResult& result, const Tensor& labels);

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
  int64_t examples = 0;
};
// Mean cross-entropy and accuracy of `model` (switched to eval mode, then back) on `dataset`.
Evaluation evaluate(nn::Module& model, const data::Dataset& dataset, int64_t batch_size = 1000);
// Accuracy against `labels` on the examples at `indices` of `dataset`, in eval mode.
double accuracy_on(nn::Module& model, const data::Dataset& dataset, const std::vector<int64_t>& indices);

struct TrainerOptions {
  int64_t epochs = 10;
  std::string label;  // logged with every row ("sgd seed 0"), for plots
  // Extra columns for the epoch's row (e.g. accuracy on flipped labels), computed after evaluation.
  std::function<Metrics(int64_t epoch)> epoch_metrics;
  bool quiet_summary = false;  // no summary table on stderr at the end
  // Called before each step with the number of steps taken so far, restored checkpoints included:
  // where a per-step schedule or a method that counts steps (HERO's start) stands after a resume.
  std::function<void(int64_t steps_taken)> before_step;
};

struct TrainSummary {
  int64_t epochs_run = 0;
  int64_t best_epoch = -1;  // the epoch (1-based) with the best validation accuracy
  double best_val_accuracy = 0;
  double test_at_best_val = 0;
  double test_at_last = 0;
  double last_train_accuracy = 0;
  double seconds_per_epoch = 0;
  double forwards_per_step = 0, backwards_per_step = 0, hvps_per_step = 0;
  bool interrupted = false;
};

class ClassificationTrainer {
 public:
  ClassificationTrainer(Run& run, nn::Module& model, optim::Optimizer& optimizer, const data::DataLoader& train,
                        std::shared_ptr<const data::Dataset> val, std::shared_ptr<const data::Dataset> test,
                        TrainerOptions options, StepFn step);

  // Trains (from the last checkpoint of the run directory when resuming) and returns the summary.
  TrainSummary fit();

 private:
  io::TensorMap state() const;
  void restore(const io::TensorMap& state, const io::Metadata& meta);

  Run& run_;
  nn::Module& model_;
  optim::Optimizer& optimizer_;
  const data::DataLoader& train_;
  std::shared_ptr<const data::Dataset> val_, test_;
  TrainerOptions options_;
  StepFn step_;
  // Progress, saved in checkpoints.
  int64_t epoch_ = 0, next_batch_ = 0, steps_ = 0, forwards_ = 0, backwards_ = 0, hvps_ = 0;
  double epoch_loss_sum_ = 0, train_seconds_ = 0;
  std::vector<std::pair<std::string, double>> diagnostic_sums_;  // this epoch's, in first-seen order
  int64_t epoch_correct_ = 0, epoch_examples_ = 0;
  TrainSummary summary_;
};

}  // namespace plateau::runner
