#pragma once
// The loss landscape between two checkpoints of a classification run, as one run's output: the loss
// along the line from a to b, the surface around b along two filter-normalized directions, the
// worst-case loss increase in a ρ-ball at each (optim/sharpness/landscape.h), as CSV files drawn into
// line.png and surface.png by tools/plot.py.
#include <string>
#include <utility>

#include "data/data.h"
#include "experiments/runner/runner.h"
#include "nn/nn.h"

namespace plateau::runner {

// The model weights of a runner checkpoint ("model." entries) and the run's configuration. The
// checkpoint must come from `experiment`; the error names the file and what it is from.
std::pair<io::TensorMap, Config> checkpoint_model(const std::string& path, const std::string& experiment);

// The two checkpoints a landscape run names (--a, --b), both of `experiment` and of the same model.
struct CheckpointPair {
  io::TensorMap a, b;
  std::string model;  // the model's name (nn::make_model)
};
CheckpointPair checkpoint_pair(const Config& config, const std::string& experiment, const std::string& command);

struct LandscapeOptions {
  int64_t points = 21;  // α from −0.5 to 1.5 along the line
  int64_t grid = 11;    // per axis of the surface, offsets from −1 to 1
  double rho = 0.05;    // of the worst-case increase
  int64_t batch_size = 1000;
};

// Writes line.csv, surface.csv (and their PNGs) into the run's directory, logs the worst-case
// increases as the run's result, and prints them. `model` is the architecture of both checkpoints;
// the loss is the mean cross-entropy over `data` (in batches of batch_size).
void landscape_between(Run& run, nn::Module& model, const io::TensorMap& a, const io::TensorMap& b,
                       const data::TensorDataset& data, const LandscapeOptions& options = {});

}  // namespace plateau::runner
