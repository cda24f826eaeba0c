// The sharpness-aware family against label noise on Fashion-MNIST (issue 5, reproductions 2 and 3).
//
//   plateau run fmnist_label_noise --method hero --noise 0.4 --seed 1      one training
//   plateau sweep fmnist_label_noise --grid method=sgd,sam,asam,fisher_sam,msam,hero --grid noise=0,0.4 --seeds 3
//   plateau sweep fmnist_label_noise --method msam --noise 0 --grid m=4,16,64,128 --seeds 2
//
// Data: Fashion-MNIST from Debian's dataset-fashion-mnist. The 60,000 training images are split once
// with a fixed seed; the first train_size (2,000) form the training set (its labels get symmetric
// noise, drawn with the run's seed), the next val_size (1,000) the clean validation set. The test set
// is the first test_size (5,000) of the 10,000 official test images, clean. The sizes are small so that
// SGD memorises the flipped labels within the 60 epochs (98% of them at 40% noise) and the whole grid
// fits in an hour on 2 cores. Every method trains the same LeNet-5 with the same SGD (momentum 0.9,
// cosine schedule per step) for the same epochs; only the step differs (experiments/runner/methods.h).
// At the end each run measures, on a fixed 512-image slice of its (noisy) training set, the top Hessian
// eigenvalue (Lanczos) and the worst-case loss increase in a ρ-ball (5 projected ascent steps).
#include <cmath>
#include <filesystem>

#include "plateau.h"

using namespace plateau;
using runner::Config;
using runner::Metrics;
using runner::Run;

namespace {

constexpr int64_t kClasses = 10;
constexpr uint64_t kSplitSeed = 20225;  // one split for every run, so seeds vary only noise and training

Config defaults() {
  return Config{{"method", "sgd"},        {"rho", "default"},        {"eta", "0.01"},       {"m", "32"},
                {"lambda", "5"},          {"hero_start_epoch", "0"}, {"steps", "2"},        {"noise", "0.4"},
                {"epochs", "60"},         {"batch_size", "128"},     {"lr", "0.1"},         {"momentum", "0.9"},
                {"weight_decay", "0"},    {"model", "lenet5"},       {"seed", "0"},         {"bn_policy", "default"},
                {"train_size", "2000"},   {"val_size", "1000"},      {"test_size", "5000"}, {"measure_size", "512"},
                {"sharpness_rho", "0.05"}};
}

// The top Hessian eigenvalue and the worst-case ρ-ball loss increase of the mean loss over `slice`.
std::pair<double, double> measure_sharpness(nn::Module& model, const data::TensorDataset& slice, double rho,
                                            uint64_t seed) {
  model.eval();  // running statistics, no dropout: the loss is a fixed function of the weights
  data::Examples all = slice.get_batch([&] {
    std::vector<int64_t> idx(static_cast<size_t>(slice.size()));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
    return idx;
  }());
  Generator gen(seed);
  HessianEigen eig = hessian_top_eigen([&](int64_t) { return cross_entropy(model(all.inputs), all.labels); }, 1,
                                       model.parameters(), 1, gen, 20);
  optim::WorstCase worst = optim::worst_case_sharpness(
      model, [&](nn::Module& m, int64_t) { return cross_entropy(m(all.inputs), all.labels); }, 1,
      {.rho = rho, .steps = 5});
  model.train();
  return {eig.values.at(0), worst.sharpness};
}

}  // namespace

PLATEAU_EXPERIMENT(fmnist_label_noise,
                   "one training of the SAM family (--method) on Fashion-MNIST with symmetric label noise, with "
                   "sharpness measured at the end",
                   (defaults())) {
  const Config& c = run.config();
  const uint64_t seed = run.seed();
  manual_seed(seed);

  data::TensorDataset full = data::load_fashion_mnist(data::SplitName::train);
  const int64_t train_size = c.get_int("train_size"), val_size = c.get_int("val_size");
  if (train_size < 1 || val_size < 1 || train_size + val_size > full.size())
    throw std::invalid_argument(
        "plateau: fmnist_label_noise: --train_size and --val_size must be >= 1 and sum to at "
        "most " +
        std::to_string(full.size()) + ", got " + std::to_string(train_size) + " and " + std::to_string(val_size));
  auto parts = data::random_split(full.size(), {train_size, val_size, full.size() - train_size - val_size}, kSplitSeed);
  data::TensorDataset train_clean = full.select(parts[0]);
  data::NoisyLabels noisy = data::symmetric_label_noise(train_clean.labels(), kClasses, c.get_double("noise"), seed);
  auto train = std::make_shared<data::TensorDataset>(train_clean.with_labels(noisy.labels));
  auto val = std::make_shared<data::TensorDataset>(full.select(parts[1]));
  auto test_full = std::make_shared<data::TensorDataset>(data::load_fashion_mnist(data::SplitName::test));
  const int64_t test_size = c.get_int("test_size");
  if (test_size < 1 || test_size > test_full->size())
    throw std::invalid_argument("plateau: fmnist_label_noise: --test_size must be in [1, " +
                                std::to_string(test_full->size()) + "], got " + std::to_string(test_size));
  std::vector<int64_t> test_indices(static_cast<size_t>(test_size));
  for (int64_t i = 0; i < test_size; ++i) test_indices[static_cast<size_t>(i)] = i;
  auto test = std::make_shared<data::TensorDataset>(test_full->select(test_indices));
  std::vector<int64_t> flipped, clean, measured;
  {
    std::vector<int64_t> mask = to_dtype(noisy.flipped, DType::i64).to_vector<int64_t>();
    for (int64_t i = 0; i < static_cast<int64_t>(mask.size()); ++i) (mask[i] ? flipped : clean).push_back(i);
    for (int64_t i = 0; i < std::min(train_size, c.get_int("measure_size")); ++i) measured.push_back(i);
  }

  std::shared_ptr<nn::Module> model = nn::make_model(c.get("model"), kClasses);
  optim::SGD sgd(
      model->parameters(),
      {.lr = c.get_double("lr"), .momentum = c.get_double("momentum"), .weight_decay = c.get_double("weight_decay")});
  data::DataLoader loader(train, {.batch_size = c.get_int("batch_size"), .seed = seed});
  const int64_t epochs = c.get_int("epochs");
  optim::LRScheduler schedule(sgd, optim::cosine_lr(epochs * loader.num_batches()));
  std::unique_ptr<optim::TrainStep> stepper = runner::make_train_step(c, *model, sgd, loader.num_batches());

  runner::TrainerOptions options;
  options.epochs = epochs;
  options.label = c.get("method") + " seed " + std::to_string(seed);
  options.epoch_metrics = [&](int64_t) -> Metrics {
    return {{"train_acc_flipped", runner::accuracy_on(*model, *train, flipped)},
            {"train_acc_unflipped", runner::accuracy_on(*model, *train, clean)}};
  };
  // The lr of this step and the method's step count (HERO's start), resumed runs included.
  options.before_step = [&](int64_t steps) {
    schedule.set_last_step(steps);
    stepper->set_steps_taken(steps);
  };
  runner::ClassificationTrainer trainer(run, *model, sgd, loader, val, test, options, [&](const data::Batch& b) {
    return runner::step_outcome(stepper->step(b.inputs, b.labels), b.labels);
  });
  runner::TrainSummary summary = trainer.fit();
  if (summary.interrupted) return 130;

  const double flipped_acc = runner::accuracy_on(*model, *train, flipped);
  const double clean_acc = runner::accuracy_on(*model, *train, clean);
  auto [top_eigenvalue, worst_case] =
      measure_sharpness(*model, train->select(measured), c.get_double("sharpness_rho"), seed);
  run.set_result({{"test_acc_best_val", summary.test_at_best_val},
                  {"test_acc_last", summary.test_at_last},
                  {"train_acc_flipped", flipped_acc},
                  {"train_acc_unflipped", clean_acc},
                  {"top_eigenvalue", top_eigenvalue},
                  {"worst_case_sharpness", worst_case},
                  {"seconds_per_epoch", summary.seconds_per_epoch},
                  {"forwards_per_step", summary.forwards_per_step},
                  {"backwards_per_step", summary.backwards_per_step},
                  {"hvp_per_step", summary.hvps_per_step}});
  std::printf(
      "%s, noise %s: test accuracy %.4f at the best validation epoch (%lld), %.4f at the last; train accuracy on "
      "flipped labels %.4f, unflipped %.4f; top Hessian eigenvalue %.3f; worst-case loss increase (rho %g) %.4f; "
      "%.2f s/epoch\n",
      c.get("method").c_str(), c.get("noise").c_str(), summary.test_at_best_val,
      static_cast<long long>(summary.best_epoch), summary.test_at_last, flipped_acc, clean_acc, top_eigenvalue,
      c.get_double("sharpness_rho"), worst_case, summary.seconds_per_epoch);
  return 0;
}

PLATEAU_EXPERIMENT(
    fmnist_landscape,
    "loss between two fmnist_label_noise checkpoints, the surface around the second, and the "
    "worst case in a rho-ball at each, on clean test images (CSV + PNG)",
    (Config{{"a", ""}, {"b", ""}, {"points", "21"}, {"grid", "11"}, {"rho", "0.05"}, {"examples", "2000"}})) {
  const Config& c = run.config();
  runner::CheckpointPair pair = runner::checkpoint_pair(c, "fmnist_label_noise", "fmnist_landscape");
  std::shared_ptr<nn::Module> model = nn::make_model(pair.model, kClasses);
  data::TensorDataset test = data::load_fashion_mnist(data::SplitName::test);
  const int64_t examples = c.get_int("examples");
  if (examples < 1 || examples > test.size())
    throw std::invalid_argument("plateau: fmnist_landscape: --examples must be in [1, " + std::to_string(test.size()) +
                                "], got " + std::to_string(examples));
  std::vector<int64_t> first(static_cast<size_t>(examples));
  for (int64_t i = 0; i < examples; ++i) first[static_cast<size_t>(i)] = i;
  runner::landscape_between(run, *model, pair.a, pair.b, test.select(first),
                            {.points = c.get_int("points"), .grid = c.get_int("grid"), .rho = c.get_double("rho")});
  return 0;
}
