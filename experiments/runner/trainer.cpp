#include "experiments/runner/trainer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "core/core.h"

namespace plateau::runner {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Doubles go into checkpoint metadata as hexadecimal floats: exact, so a resumed run's running sums
// continue bit for bit.
std::string exact(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}
double parse_exact(const io::Metadata& meta, const std::string& key) {
  auto it = meta.find(key);
  if (it == meta.end()) throw std::runtime_error("plateau: checkpoint metadata has no '" + key + "'");
  return std::strtod(it->second.c_str(), nullptr);
}
int64_t parse_int(const io::Metadata& meta, const std::string& key) {
  return static_cast<int64_t>(parse_exact(meta, key));
}

}  // namespace

int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  return static_cast<int64_t>(sum(to_dtype(eq(argmax(logits, 1), labels), DType::f64)).item());
}

StepOutcome step_outcome(const optim::StepResult& result, const Tensor& labels) {
  StepOutcome o;
  o.loss = result.loss;
  o.correct = count_correct(result.output, labels);
  o.forwards = result.passes.forward;
  o.backwards = result.passes.backward;
  o.hessian_vector_products = result.passes.hvp;
  if (const auto& d = result.diagnostics)
    o.diagnostics = {{"grad_norm", d->grad_norm},
                     {"eps_norm", d->perturbation_norm},
                     {"sharpness", d->sharpness},
                     {"grad_cosine", d->grad_cosine}};
  return o;
}

Evaluation evaluate(nn::Module& model, const data::Dataset& dataset, int64_t batch_size) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  Evaluation e;
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t start = 0; start < dataset.size(); start += batch_size) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min(dataset.size(), start + batch_size); ++i) idx.push_back(i);
    data::Examples ex = dataset.get_batch(idx);
    Tensor logits = model(ex.inputs);
    CrossEntropyOptions sum_loss;
    sum_loss.reduction = Reduction::sum;
    loss_sum += cross_entropy(logits, ex.labels, sum_loss).item();
    correct += count_correct(logits, ex.labels);
  }
  model.train(was_training);
  e.examples = dataset.size();
  e.loss = e.examples ? loss_sum / e.examples : 0;
  e.accuracy = e.examples ? static_cast<double>(correct) / e.examples : 0;
  return e;
}

double accuracy_on(nn::Module& model, const data::Dataset& dataset, const std::vector<int64_t>& indices) {
  if (indices.empty()) return 0;
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  int64_t correct = 0;
  for (size_t start = 0; start < indices.size(); start += 1000) {
    std::vector<int64_t> idx(indices.begin() + start, indices.begin() + std::min(indices.size(), start + 1000));
    data::Examples ex = dataset.get_batch(idx);
    correct += count_correct(model(ex.inputs), ex.labels);
  }
  model.train(was_training);
  return static_cast<double>(correct) / indices.size();
}

ClassificationTrainer::ClassificationTrainer(Run& run, nn::Module& model, optim::Optimizer& optimizer,
                                             const data::DataLoader& train, std::shared_ptr<const data::Dataset> val,
                                             std::shared_ptr<const data::Dataset> test, TrainerOptions options,
                                             StepFn step)
    : run_(run),
      model_(model),
      optimizer_(optimizer),
      train_(train),
      val_(std::move(val)),
      test_(std::move(test)),
      options_(std::move(options)),
      step_(std::move(step)) {}

io::TensorMap ClassificationTrainer::state() const {
  io::TensorMap out;
  for (const auto& [name, t] : model_.state_dict()) out["model." + name] = t;
  for (const auto& [name, t] : optimizer_.state_dict().tensors) out["optimizer." + name] = t;
  return out;
}

void ClassificationTrainer::restore(const io::TensorMap& state, const io::Metadata& meta) {
  io::TensorMap model_state;
  optim::OptimizerState opt;
  for (const auto& [name, t] : state) {
    if (name.rfind("model.", 0) == 0) model_state[name.substr(6)] = t;
    if (name.rfind("optimizer.", 0) == 0) opt.tensors[name.substr(10)] = t;
  }
  for (const auto& [key, value] : meta)
    if (key.rfind("optimizer.", 0) == 0) opt.metadata[key.substr(10)] = value;
  model_.load_state_dict(model_state);
  optimizer_.load_state_dict(opt);
  epoch_ = parse_int(meta, "trainer.epoch");
  next_batch_ = parse_int(meta, "trainer.next_batch");
  steps_ = parse_int(meta, "trainer.steps");
  forwards_ = parse_int(meta, "trainer.forwards");
  hvps_ = meta.count("trainer.hvps") ? parse_int(meta, "trainer.hvps") : 0;
  backwards_ = parse_int(meta, "trainer.backwards");
  epoch_loss_sum_ = parse_exact(meta, "trainer.epoch_loss_sum");
  epoch_correct_ = parse_int(meta, "trainer.epoch_correct");
  epoch_examples_ = parse_int(meta, "trainer.epoch_examples");
  train_seconds_ = parse_exact(meta, "trainer.train_seconds");
  summary_.best_epoch = parse_int(meta, "trainer.best_epoch");
  summary_.best_val_accuracy = parse_exact(meta, "trainer.best_val_accuracy");
  summary_.test_at_best_val = parse_exact(meta, "trainer.test_at_best_val");
  summary_.test_at_last = parse_exact(meta, "trainer.test_at_last");
  summary_.last_train_accuracy = parse_exact(meta, "trainer.last_train_accuracy");
  default_generator().set_offset(static_cast<uint64_t>(parse_exact(meta, "trainer.generator_offset")));
  diagnostic_sums_.clear();
  for (const auto& [key, value] : meta)
    if (key.rfind("trainer.diagnostic.", 0) == 0)
      diagnostic_sums_.emplace_back(key.substr(19), std::strtod(value.c_str(), nullptr));
  const bool training = meta.count("trainer.training") && meta.at("trainer.training") == "1";
  model_.train(training);
}

TrainSummary ClassificationTrainer::fit() {
  auto checkpoint = [&] {
    io::Metadata meta;
    for (const auto& [key, value] : optimizer_.state_dict().metadata) meta["optimizer." + key] = value;
    meta["trainer.epoch"] = std::to_string(epoch_);
    meta["trainer.next_batch"] = std::to_string(next_batch_);
    meta["trainer.steps"] = std::to_string(steps_);
    meta["trainer.forwards"] = std::to_string(forwards_);
    meta["trainer.hvps"] = std::to_string(hvps_);
    meta["trainer.backwards"] = std::to_string(backwards_);
    meta["trainer.epoch_loss_sum"] = exact(epoch_loss_sum_);
    meta["trainer.epoch_correct"] = std::to_string(epoch_correct_);
    meta["trainer.epoch_examples"] = std::to_string(epoch_examples_);
    meta["trainer.train_seconds"] = exact(train_seconds_);
    meta["trainer.best_epoch"] = std::to_string(summary_.best_epoch);
    meta["trainer.best_val_accuracy"] = exact(summary_.best_val_accuracy);
    meta["trainer.test_at_best_val"] = exact(summary_.test_at_best_val);
    meta["trainer.test_at_last"] = exact(summary_.test_at_last);
    meta["trainer.last_train_accuracy"] = exact(summary_.last_train_accuracy);
    meta["trainer.generator_offset"] = std::to_string(default_generator().offset());
    meta["trainer.training"] = model_.is_training() ? "1" : "0";
    for (const auto& [name, total] : diagnostic_sums_) meta["trainer.diagnostic." + name] = exact(total);
    // The step count orders checkpoints, mid-epoch ones included.
    run_.save_checkpoint(steps_, state(), meta);
  };

  model_.train();
  if (run_.resuming()) {
    if (auto ck = run_.load_checkpoint()) {
      restore(ck->first, ck->second);
      std::fprintf(stderr, "%s: resuming at epoch %lld, batch %lld\n", run_.experiment().c_str(),
                   static_cast<long long>(epoch_ + 1), static_cast<long long>(next_batch_));
    }
    run_.truncate_metrics("epoch", epoch_);
  }
  const int64_t batches = train_.num_batches();
  while (epoch_ < options_.epochs) {
    double t0 = now_seconds();
    const std::string prefix = (options_.label.empty() ? "" : options_.label + " ") + "epoch " +
                               std::to_string(epoch_ + 1) + "/" + std::to_string(options_.epochs);
    for (data::Batch b : train_.epoch(epoch_, next_batch_)) {
      if (options_.before_step) options_.before_step(steps_);
      StepOutcome o = step_(b);
      const int64_t n = b.labels.size(0);
      epoch_loss_sum_ += o.loss * n;
      epoch_correct_ += o.correct;
      epoch_examples_ += n;
      forwards_ += o.forwards;
      backwards_ += o.backwards;
      hvps_ += o.hessian_vector_products;
      for (const auto& [name, value] : o.diagnostics) {
        auto it = std::find_if(diagnostic_sums_.begin(), diagnostic_sums_.end(),
                               [&](const auto& d) { return d.first == name; });
        if (it == diagnostic_sums_.end())
          diagnostic_sums_.emplace_back(name, value);
        else
          it->second += value;
      }
      ++steps_;
      next_batch_ = b.number + 1;
      run_.progress(
          prefix, next_batch_, batches,
          {{"loss", epoch_loss_sum_ / epoch_examples_}, {"acc", static_cast<double>(epoch_correct_) / epoch_examples_}},
          epoch_examples_);
      if (Run::stop_requested()) {
        train_seconds_ += now_seconds() - t0;
        checkpoint();
        run_.end_progress();
        std::fprintf(stderr, "%s: stopped; checkpoint written, continue with --resume %s\n", run_.experiment().c_str(),
                     run_.dir().c_str());
        summary_.interrupted = true;
        return summary_;
      }
    }
    train_seconds_ += now_seconds() - t0;
    Evaluation val = evaluate(model_, *val_), test = evaluate(model_, *test_);
    const double train_loss = epoch_examples_ ? epoch_loss_sum_ / epoch_examples_ : 0;
    const double train_acc = epoch_examples_ ? static_cast<double>(epoch_correct_) / epoch_examples_ : 0;
    if (summary_.best_epoch < 0 || val.accuracy > summary_.best_val_accuracy) {
      summary_.best_epoch = epoch_ + 1;
      summary_.best_val_accuracy = val.accuracy;
      summary_.test_at_best_val = test.accuracy;
    }
    Metrics row = {{"epoch", epoch_ + 1},      {"label", options_.label},
                   {"train_loss", train_loss}, {"train_acc", train_acc},
                   {"val_loss", val.loss},     {"val_acc", val.accuracy},
                   {"test_loss", test.loss},   {"test_acc", test.accuracy},
                   {"steps", steps_},          {"train_seconds", train_seconds_}};
    // Means over the epoch's steps (the sums travel in checkpoints, so a resumed epoch's mean is whole).
    for (const auto& [name, total] : diagnostic_sums_) row.emplace_back(name, total / std::max<int64_t>(1, batches));
    diagnostic_sums_.clear();
    if (options_.epoch_metrics)
      for (auto& m : options_.epoch_metrics(epoch_ + 1)) row.push_back(m);
    run_.log(row);
    summary_.test_at_last = test.accuracy;
    summary_.last_train_accuracy = train_acc;
    next_batch_ = 0;
    epoch_loss_sum_ = 0;
    epoch_correct_ = epoch_examples_ = 0;
    ++epoch_;
    checkpoint();
  }
  summary_.epochs_run = epoch_;
  summary_.seconds_per_epoch = epoch_ ? train_seconds_ / epoch_ : 0;
  summary_.forwards_per_step = steps_ ? static_cast<double>(forwards_) / steps_ : 0;
  summary_.backwards_per_step = steps_ ? static_cast<double>(backwards_) / steps_ : 0;
  summary_.hvps_per_step = steps_ ? static_cast<double>(hvps_) / steps_ : 0;
  if (!options_.quiet_summary) {
    char best[64], last[64], val[64], secs[64], passes[64];
    std::snprintf(best, sizeof best, "%.4f", summary_.test_at_best_val);
    std::snprintf(last, sizeof last, "%.4f", summary_.test_at_last);
    std::snprintf(val, sizeof val, "%.4f (epoch %lld)", summary_.best_val_accuracy,
                  static_cast<long long>(summary_.best_epoch));
    std::snprintf(secs, sizeof secs, "%.2f", summary_.seconds_per_epoch);
    std::snprintf(passes, sizeof passes, "%.1f + %.1f", summary_.forwards_per_step, summary_.backwards_per_step);
    if (hvps_ > 0)
      std::snprintf(passes, sizeof passes, "%.1f + %.1f + %.1f HVP", summary_.forwards_per_step,
                    summary_.backwards_per_step, summary_.hvps_per_step);
    std::fprintf(
        stderr, "%s",
        format_table({{"run", "best val acc", "test acc (best val)", "test acc (last)", "s/epoch", "passes/step (F+B)"},
                      {options_.label.empty() ? run_.experiment() : options_.label, val, best, last, secs, passes}})
            .c_str());
  }
  return summary_;
}

}  // namespace plateau::runner
