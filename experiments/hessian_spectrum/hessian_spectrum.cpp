// Sharpness while training: a small MLP fit to synthetic data, printing every epoch the Hessian's
// top eigenvalue (Lanczos) and its trace (Hutchinson), from core alone (no modules, no datasets).
//
//   hessian_spectrum [--epochs 12] [--seed 0] [--lr 0.1] [--csv FILE]
//
// The data: 512 points in 8 dimensions from 4 overlapping Gaussian clusters (one per class) whose
// centres are drawn from the seed. The Hessian is the full-batch training loss's, with respect to
// all 1,476 weights, averaged over 4 batches of 128. Epoch 0 is the initialisation. For gradient
// descent to be stable the top eigenvalue must stay below 2/lr, which the header prints.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#include "plateau.h"

using namespace plateau;

namespace {

constexpr int64_t kExamples = 512, kFeatures = 8, kClasses = 4, kHidden = 32, kBatch = 128;

struct Options {
  int epochs = 12;
  uint64_t seed = 0;
  double lr = 0.1;
  std::string csv;
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr, "hessian_spectrum: %s\nusage: hessian_spectrum [--epochs N] [--seed S] [--lr LR] [--csv FILE]\n",
               msg.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string opt = argv[i];
    if (i + 1 >= argc) usage("missing value for " + opt);
    const std::string value = argv[i + 1];
    try {
      if (opt == "--epochs")
        o.epochs = std::stoi(value);
      else if (opt == "--seed")
        o.seed = std::stoull(value);
      else if (opt == "--lr")
        o.lr = std::stod(value);
      else if (opt == "--csv")
        o.csv = value;
      else
        usage("unknown option '" + opt + "'");
    } catch (const std::logic_error&) {
      usage("bad value '" + value + "' for " + opt);
    }
  }
  if (o.epochs < 1) usage("--epochs must be at least 1");
  if (!(o.lr > 0)) usage("--lr must be positive");
  return o;
}

// PyTorch's default init for a linear layer: uniform in ±1/√fan_in.
Tensor init(const Shape& shape, int64_t fan_in, Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return uniform(shape, -bound, bound, DType::f32, gen).requires_grad_();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  Generator gen(o.seed);

  // Synthetic data: cluster c's points are centre_c + N(0, 1), centres N(0, 0.7²) per coordinate.
  Tensor centres = normal({kClasses, kFeatures}, 0.0, 0.7, DType::f32, gen);
  Tensor labels = randint(0, kClasses, {kExamples}, gen);
  Tensor inputs = index_select(centres, 0, labels) + normal({kExamples, kFeatures}, 0.0, 1.0, DType::f32, gen);

  TensorList params = {init({kHidden, kFeatures}, kFeatures, gen), init({kHidden}, kFeatures, gen),
                       init({kHidden, kHidden}, kHidden, gen),     init({kHidden}, kHidden, gen),
                       init({kClasses, kHidden}, kHidden, gen),    init({kClasses}, kHidden, gen)};
  int64_t count = 0;
  for (const Tensor& p : params) count += p.numel();

  auto logits_of = [&](const Tensor& x) {
    Tensor h = tanh(linear(x, params[0], params[1]));
    h = tanh(linear(h, params[2], params[3]));
    return linear(h, params[4], params[5]);
  };
  const int64_t batches = kExamples / kBatch;
  auto batch_loss = [&](int64_t b) {
    return cross_entropy(logits_of(slice(inputs, 0, b * kBatch, (b + 1) * kBatch)),
                         slice(labels, 0, b * kBatch, (b + 1) * kBatch));
  };

  std::ofstream csv;
  if (!o.csv.empty()) {
    csv.open(o.csv);
    if (!csv) usage("cannot write '" + o.csv + "'");
    csv << "epoch,loss,accuracy,top_eigenvalue,trace,trace_standard_error\n";
  }
  std::printf("MLP %lld-%lld-%lld-%lld, %lld weights, %lld examples, SGD lr %g (2/lr = %g)\n",
              static_cast<long long>(kFeatures), static_cast<long long>(kHidden), static_cast<long long>(kHidden),
              static_cast<long long>(kClasses), static_cast<long long>(count), static_cast<long long>(kExamples), o.lr,
              2 / o.lr);
  std::printf("%5s %8s %8s %12s %18s\n", "epoch", "loss", "acc", "top eig", "trace ± s.e.");
  for (int epoch = 0; epoch <= o.epochs; ++epoch) {
    if (epoch > 0) {
      // One epoch of minibatch SGD over a fresh permutation.
      Tensor order = randperm(kExamples, gen);
      for (int64_t b = 0; b < batches; ++b) {
        Tensor rows = slice(order, 0, b * kBatch, (b + 1) * kBatch);
        Tensor loss = cross_entropy(logits_of(index_select(inputs, 0, rows)), index_select(labels, 0, rows));
        TensorList g = grad({loss}, params);
        NoGradGuard no_grad;
        for (size_t i = 0; i < params.size(); ++i) add_(params[i], g[i], -o.lr);
      }
    }
    double loss = 0, correct = 0;
    {
      NoGradGuard no_grad;
      Tensor logits = logits_of(inputs);
      loss = cross_entropy(logits, labels).item();
      correct = sum(eq(argmax(logits, 1, false), labels).to(DType::f32)).item();
    }
    HessianEigen top = hessian_top_eigen(batch_loss, batches, params, 1, gen, 30);
    TraceEstimate tr = hessian_trace(batch_loss, batches, params, 30, gen);
    const double accuracy = correct / kExamples;
    std::printf("%5d %8.4f %8.3f %12.4f %10.3f ± %.3f\n", epoch, loss, accuracy, top.values[0], tr.trace,
                tr.standard_error);
    std::fflush(stdout);
    if (csv)
      csv << epoch << "," << loss << "," << accuracy << "," << top.values[0] << "," << tr.trace << ","
          << tr.standard_error << "\n";
  }
  return 0;
}
