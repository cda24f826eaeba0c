// SAM against label noise (Foret et al., ICLR 2021, section 4): the main job behind `make demo`.
//
//   plateau run label_noise --method sam --rho 0.05 --seed 1   one training
//   plateau run label_noise_demo                                SGD and SAM, 3 seeds each, and the table
//
// Data: the bundled MNIST test set (10,000 images; data/bundled/mnist/PROVENANCE.md), split once with
// a fixed seed into 7,000 training, 1,000 validation and 2,000 test images. The training labels get
// symmetric noise (40%: each label, with that probability, becomes one of the other nine classes,
// drawn with the run's seed); validation and test labels stay clean. The network (mlp_784, 669,706
// weights) is trained with SGD (momentum 0.9) or with SAM around the same SGD, for the same epochs.
// A network that fits the noisy labels memorises the flipped ones; the paper's claim is that SAM
// resists that memorisation and so keeps a higher clean test accuracy.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "plateau.h"

using namespace plateau;
using runner::Config;
using runner::Metrics;
using runner::Run;

namespace {

constexpr int64_t kTrain = 7000, kVal = 1000, kTest = 2000, kClasses = 10;
constexpr uint64_t kSplitSeed = 20211;  // one split for every run, so seeds vary only the training

Config label_noise_defaults() {
  return Config{{"method", "sgd"},     {"rho", "0.05"}, {"noise", "0.4"},         {"epochs", "30"},
                {"batch_size", "128"}, {"lr", "0.05"},  {"momentum", "0.9"},      {"weight_decay", "0.0005"},
                {"model", "mlp_784"},  {"seed", "0"},   {"bn_policy", "default"}, {"train_size", "7000"},
                {"eta", "0.01"},       {"m", "32"},     {"lambda", "5"}};
}

struct Outcome {
  runner::TrainSummary summary;
  double flipped_train_acc = 0, clean_train_acc = 0;  // on the noisy labels, at the last epoch
  bool ok = false;
};

// One training run inside `run` (its configuration says which method).
Outcome train_once(Run& run) {
  const Config& c = run.config();
  const std::string method = c.get("method");
  const uint64_t seed = run.seed();
  manual_seed(seed);  // initialisation and dropout draw from the default generator

  auto mnist = std::make_shared<data::TensorDataset>(data::mnist_test_set());
  // A smaller training set (tests, quick looks) takes the first part of the same split.
  const int64_t train_size = c.get_int("train_size");
  if (train_size < 1 || train_size > kTrain)
    throw std::invalid_argument("plateau: label_noise: --train_size must be in [1, 7000], got " +
                                std::to_string(train_size));
  auto parts = data::random_split(mnist->size(), {kTrain, kVal, kTest}, kSplitSeed);
  parts[0].resize(train_size);
  data::TensorDataset train_clean = mnist->select(parts[0]);
  data::NoisyLabels noisy = data::symmetric_label_noise(train_clean.labels(), kClasses, c.get_double("noise"), seed);
  auto train = std::make_shared<data::TensorDataset>(train_clean.with_labels(noisy.labels));
  auto val = data::subset(mnist, parts[1]);
  auto test = data::subset(mnist, parts[2]);
  std::vector<int64_t> flipped, clean;
  {
    std::vector<int64_t> m = to_dtype(noisy.flipped, DType::i64).to_vector<int64_t>();
    for (int64_t i = 0; i < static_cast<int64_t>(m.size()); ++i) (m[i] ? flipped : clean).push_back(i);
  }

  std::shared_ptr<nn::Module> model = nn::make_model(c.get("model"), kClasses);
  optim::SGD sgd(
      model->parameters(),
      {.lr = c.get_double("lr"), .momentum = c.get_double("momentum"), .weight_decay = c.get_double("weight_decay")});
  data::DataLoader loader(train, {.batch_size = c.get_int("batch_size"), .seed = seed});
  // Any method of the family by name (experiments/runner/methods.h); the demo compares sgd and sam.
  std::unique_ptr<optim::TrainStep> stepper = runner::make_train_step(c, *model, sgd, loader.num_batches());

  runner::TrainerOptions options;
  options.epochs = c.get_int("epochs");
  options.label = method + " seed " + std::to_string(seed);
  Outcome out;
  options.epoch_metrics = [&](int64_t) -> Metrics {
    out.flipped_train_acc = runner::accuracy_on(*model, *train, flipped);
    out.clean_train_acc = runner::accuracy_on(*model, *train, clean);
    return {{"train_acc_flipped", out.flipped_train_acc}, {"train_acc_unflipped", out.clean_train_acc}};
  };
  options.before_step = [&](int64_t steps) { stepper->set_steps_taken(steps); };  // resumed runs included
  runner::ClassificationTrainer trainer(run, *model, sgd, loader, val, test, options, [&](const data::Batch& b) {
    return runner::step_outcome(stepper->step(b.inputs, b.labels), b.labels);
  });
  out.summary = trainer.fit();
  out.ok = !out.summary.interrupted;
  // Measured again at the end: a run resumed after its last epoch logs no epoch rows.
  out.flipped_train_acc = runner::accuracy_on(*model, *train, flipped);
  out.clean_train_acc = runner::accuracy_on(*model, *train, clean);
  run.set_result({{"test_acc_best_val", out.summary.test_at_best_val},
                  {"test_acc_last", out.summary.test_at_last},
                  {"train_acc_flipped", out.flipped_train_acc},
                  {"train_acc_unflipped", out.clean_train_acc},
                  {"seconds_per_epoch", out.summary.seconds_per_epoch},
                  {"forwards_per_step", out.summary.forwards_per_step},
                  {"backwards_per_step", out.summary.backwards_per_step}});
  return out;
}

}  // namespace

PLATEAU_EXPERIMENT(label_noise,
                   "one training (--method sgd, sam, or any of the family) on MNIST (bundled test set) with "
                   "symmetric label noise",
                   (label_noise_defaults())) {
  Outcome o = train_once(run);
  if (!o.ok) return 130;
  std::printf(
      "%s: test accuracy %.4f at the best validation epoch (%lld), %.4f at the last; train accuracy on "
      "noisy labels: flipped %.4f, unflipped %.4f\n",
      run.config().get("method").c_str(), o.summary.test_at_best_val, static_cast<long long>(o.summary.best_epoch),
      o.summary.test_at_last, o.flipped_train_acc, o.clean_train_acc);
  return 0;
}

// `plateau eval <checkpoint>`: the checkpoint's model on the validation and test sets.
static const bool label_noise_evaluator =
    runner::register_evaluator("label_noise", [](Run& run, const io::TensorMap& state, const io::Metadata&) {
      const Config& c = run.config();
      auto mnist = std::make_shared<data::TensorDataset>(data::mnist_test_set());
      auto parts = data::random_split(mnist->size(), {kTrain, kVal, kTest}, kSplitSeed);
      std::shared_ptr<nn::Module> model = nn::make_model(c.get("model"), kClasses);
      io::TensorMap weights;
      for (const auto& [name, t] : state)
        if (name.rfind("model.", 0) == 0) weights[name.substr(6)] = t;
      model->load_state_dict(weights);
      runner::Evaluation val = runner::evaluate(*model, *data::subset(mnist, parts[1]));
      runner::Evaluation test = runner::evaluate(*model, *data::subset(mnist, parts[2]));
      std::printf("%s (%s): validation accuracy %.4f, test accuracy %.4f (loss %.4f)\n", c.get("model").c_str(),
                  c.get("method").c_str(), val.accuracy, test.accuracy, test.loss);
      run.log({{"val_acc", val.accuracy}, {"test_acc", test.accuracy}, {"test_loss", test.loss}});
      return 0;
    });

namespace {

Config demo_defaults() {
  Config c = label_noise_defaults();
  c.set("seeds", "3");
  c.set("methods", "sgd,sam");
  return c;
}

}  // namespace

PLATEAU_EXPERIMENT(label_noise_demo,
                   "SGD vs SAM (rho 0.05) on MNIST with 40% label noise, 3 seeds each: the table of make demo",
                   (demo_defaults())) {
  const auto t0 = std::chrono::steady_clock::now();
  const Config& c = run.config();
  std::vector<std::string> methods;
  {
    std::stringstream list(c.get("methods"));
    for (std::string m; std::getline(list, m, ',');) methods.push_back(m);
  }
  const int64_t seeds = c.get_int("seeds");
  const runner::ExperimentSpec* single = runner::find_experiment("label_noise");
  std::map<std::string, std::vector<Outcome>> outcomes;
  for (int64_t s = 0; s < seeds; ++s)
    for (const std::string& method : methods) {
      Config sub = label_noise_defaults();
      for (const auto& [key, value] : c.values())
        if (sub.has(key)) sub.set(key, value);
      sub.set("method", method);
      sub.set("seed", std::to_string(run.seed() + s));
      runner::RunOptions options;
      options.dir = (std::filesystem::path(run.dir()) / (method + "-seed" + std::to_string(run.seed() + s))).string();
      options.plot = false;
      // A sub-run that finished is read back; one that was interrupted continues.
      options.resume = std::filesystem::exists(std::filesystem::path(options.dir) / "manifest.json");
      Run sub_run(*single, sub, options);
      Outcome o = train_once(sub_run);
      sub_run.finish(o.ok ? 0 : 130);
      if (!o.ok) return 130;
      outcomes[method].push_back(o);
    }

  std::vector<std::vector<std::string>> rows = {{"method", "test acc (best val)", "test acc (last)",
                                                 "train acc flipped", "train acc unflipped", "s/epoch",
                                                 "passes/step (F+B)"}};
  for (const std::string& method : methods) {
    std::vector<double> best, last, flipped, clean, secs, passes;
    for (const Outcome& o : outcomes[method]) {
      best.push_back(o.summary.test_at_best_val);
      last.push_back(o.summary.test_at_last);
      flipped.push_back(o.flipped_train_acc);
      clean.push_back(o.clean_train_acc);
      secs.push_back(o.summary.seconds_per_epoch);
      passes.push_back(o.summary.forwards_per_step + o.summary.backwards_per_step);
    }
    rows.push_back({method, runner::mean_std(best), runner::mean_std(last), runner::mean_std(flipped),
                    runner::mean_std(clean), runner::mean_std(secs, 2), runner::mean_std(passes, 1)});
  }
  std::string report = "label noise " + c.get("noise") + ", " + c.get("epochs") + " epochs, " + std::to_string(seeds) +
                       " seeds (mean ± std); training accuracy is on the noisy labels\n" + runner::format_table(rows);
  if (outcomes.count("sgd") && outcomes.count("sam")) {
    for (const char* which : {"best", "last"}) {
      std::vector<double> gaps;
      for (size_t i = 0; i < outcomes["sam"].size() && i < outcomes["sgd"].size(); ++i) {
        const auto& a = outcomes["sam"][i].summary;
        const auto& b = outcomes["sgd"][i].summary;
        gaps.push_back(std::string(which) == "best" ? a.test_at_best_val - b.test_at_best_val
                                                    : a.test_at_last - b.test_at_last);
      }
      double mean = 0, var = 0;
      for (double g : gaps) mean += g;
      mean /= gaps.size();
      for (double g : gaps) var += (g - mean) * (g - mean);
      const double sd = gaps.size() > 1 ? std::sqrt(var / (gaps.size() - 1)) : 0;
      char line[256];
      std::snprintf(line, sizeof line, "SAM - SGD test accuracy (%s epoch), paired by seed: %+.4f ± %.4f; %s 2 std\n",
                    std::string(which) == "best" ? "best-validation" : "last", mean, sd,
                    std::abs(mean) > 2 * sd ? "exceeds" : "does not exceed");
      report += line;
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  char tail[128];
  std::snprintf(tail, sizeof tail, "wall time %.0f s (%d threads)\n", wall, get_num_threads());
  report += tail;
  std::printf("\n%s", report.c_str());
  run.write_file("summary.txt", report);
  std::printf("curves: %s/curves.png, metrics: %s/*/metrics.jsonl\n", run.dir().c_str(), run.dir().c_str());
  return 0;
}

PLATEAU_EXPERIMENT(label_noise_landscape,
                   "loss between two label_noise checkpoints, the surface around the second, and the worst "
                   "case in a rho-ball at each (CSV + PNG)",
                   (Config{{"a", ""}, {"b", ""}, {"points", "21"}, {"grid", "11"}, {"rho", "0.05"}})) {
  const Config& c = run.config();
  runner::CheckpointPair pair = runner::checkpoint_pair(c, "label_noise", "label_noise_landscape");
  std::shared_ptr<nn::Module> model = nn::make_model(pair.model, kClasses);
  // The clean test images of the label_noise split.
  auto mnist = std::make_shared<data::TensorDataset>(data::mnist_test_set());
  auto parts = data::random_split(mnist->size(), {kTrain, kVal, kTest}, kSplitSeed);
  runner::landscape_between(run, *model, pair.a, pair.b, mnist->select(parts[2]),
                            {.points = c.get_int("points"), .grid = c.get_int("grid"), .rho = c.get_double("rho")});
  return 0;
}
