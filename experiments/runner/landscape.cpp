#include "experiments/runner/landscape.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "optim/optim.h"

namespace plateau::runner {

std::pair<io::TensorMap, Config> checkpoint_model(const std::string& path, const std::string& experiment) {
  io::Metadata meta;
  io::TensorMap state = io::load_safetensors(path, &meta);
  if (meta["experiment"] != experiment)
    throw std::invalid_argument("plateau: " + path + " is not a checkpoint of " + experiment + " (it is of '" +
                                meta["experiment"] + "')");
  io::TensorMap weights;
  for (const auto& [name, t] : state)
    if (name.rfind("model.", 0) == 0) weights[name.substr(6)] = t;
  return {weights, Config::from_json(meta["config"], path)};
}

CheckpointPair checkpoint_pair(const Config& config, const std::string& experiment, const std::string& command) {
  if (config.get("a").empty() || config.get("b").empty())
    throw std::invalid_argument("plateau: " + command + " needs --a CHECKPOINT and --b CHECKPOINT (checkpoints of " +
                                experiment + ")");
  auto [a, config_a] = checkpoint_model(config.get("a"), experiment);
  auto [b, config_b] = checkpoint_model(config.get("b"), experiment);
  if (config_a.get("model") != config_b.get("model"))
    throw std::invalid_argument("plateau: the checkpoints hold different models (" + config_a.get("model") + ", " +
                                config_b.get("model") + ")");
  return {std::move(a), std::move(b), config_b.get("model")};
}

void landscape_between(Run& run, nn::Module& model, const io::TensorMap& a, const io::TensorMap& b,
                       const data::TensorDataset& data, const LandscapeOptions& options) {
  if (options.points < 2 || options.grid < 2 || options.batch_size < 1)
    throw std::invalid_argument("plateau: the landscape needs points >= 2, grid >= 2 and batch_size >= 1");
  model.load_state_dict(b);
  model.eval();
  const int64_t batches = (data.size() + options.batch_size - 1) / options.batch_size;
  optim::ModelLoss loss = [&](nn::Module& m, int64_t batch) {
    std::vector<int64_t> idx;
    for (int64_t i = batch * options.batch_size; i < std::min(data.size(), (batch + 1) * options.batch_size); ++i)
      idx.push_back(i);
    data::Examples ex = data.get_batch(idx);
    return cross_entropy(m(ex.inputs), ex.labels);
  };
  std::vector<double> alphas, offsets;
  for (int64_t i = 0; i < options.points; ++i) alphas.push_back(-0.5 + 2.0 * i / (options.points - 1));
  for (int64_t i = 0; i < options.grid; ++i) offsets.push_back(-1.0 + 2.0 * i / (options.grid - 1));
  std::vector<double> line = optim::loss_along_line(model, a, b, alphas, loss, batches);
  const std::string line_csv = (std::filesystem::path(run.dir()) / "line.csv").string();
  optim::write_line_csv(line_csv, alphas, line);
  Generator gen(run.seed());
  optim::Surface surface = optim::loss_surface(model, loss, batches, offsets, offsets, gen);
  const std::string surface_csv = (std::filesystem::path(run.dir()) / "surface.csv").string();
  optim::write_surface_csv(surface_csv, surface);
  optim::WorstCase at_b = optim::worst_case_sharpness(model, loss, batches, {.rho = options.rho});
  model.load_state_dict(a);
  optim::WorstCase at_a = optim::worst_case_sharpness(model, loss, batches, {.rho = options.rho});
  std::printf("worst-case loss increase in a rho = %g ball: a %.4f (loss %.4f), b %.4f (loss %.4f)\n", options.rho,
              at_a.sharpness, at_a.loss, at_b.sharpness, at_b.loss);
  run.set_result(
      {{"sharpness_a", at_a.sharpness}, {"sharpness_b", at_b.sharpness}, {"loss_a", at_a.loss}, {"loss_b", at_b.loss}});
  if (!run_plot("--line '" + line_csv + "'") || !run_plot("--surface '" + surface_csv + "'"))
    std::fprintf(stderr, "note: tools/plot.py could not draw %s (python3-matplotlib?)\n", run.dir().c_str());
  std::printf("%s/line.png, %s/surface.png\n", run.dir().c_str(), run.dir().c_str());
}

}  // namespace plateau::runner
