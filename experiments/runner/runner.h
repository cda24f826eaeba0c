#pragma once
// The experiment runner: every experiment is a function of a Run, registered by name, started by
//
//   plateau run <experiment> [--key value ...] [--config file.json] [--resume RUN_DIR]
//
// A Run gives the experiment its configuration (defaults in code, overridden by flags or a JSON
// file), a seed, a run directory runs/<experiment>/<timestamp>/ with a manifest, metrics appended as
// JSON Lines, a progress bar, atomic checkpoints (the last k kept) that a resumed run continues from,
// and a stop flag raised by SIGINT / SIGTERM so the experiment can checkpoint and exit cleanly.
//
//   PLATEAU_EXPERIMENT(my_fit, "fits a line", (Config{{"epochs", "10"}, {"lr", "0.1"}})) {
//     for (int64_t epoch = 0; epoch < run.config().get_int("epochs"); ++epoch) run.log({{"epoch", epoch}});
//     return 0;
//   }
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/io/io.h"

namespace plateau::runner {

// String values by key, in a fixed order; typed getters parse and name the key on a bad value.
class Config {
 public:
  Config() = default;
  Config(std::initializer_list<std::pair<const std::string, std::string>> values) : values_(values) {}

  bool has(const std::string& key) const { return values_.count(key) > 0; }
  const std::string& get(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_double(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  void set(const std::string& key, const std::string& value) { values_[key] = value; }
  const std::map<std::string, std::string>& values() const { return values_; }

  // Overrides must name known keys (the defaults'); the error lists the known ones.
  void override_with(const Config& overrides, const std::string& experiment);
  std::string to_json() const;
  static Config from_json(const std::string& text, const std::string& origin);
  static Config from_json_file(const std::string& path);

 private:
  std::map<std::string, std::string> values_;
};

// A metrics row: names to numbers (or to strings, for labels such as the method).
using Metric = std::variant<double, int64_t, std::string>;
using Metrics = std::vector<std::pair<std::string, Metric>>;

class Run;

struct ExperimentSpec {
  std::string name;
  std::string description;
  Config defaults;  // "seed" is added (0) when missing
  std::function<int(Run&)> main;
  // `plateau eval <checkpoint>`: evaluates a checkpoint of this experiment (optional).
  std::function<int(Run&, const io::TensorMap&, const io::Metadata&)> evaluate = nullptr;
};

// Adds an experiment to the registry (the PLATEAU_EXPERIMENT macro does it at static initialisation).
bool register_experiment(ExperimentSpec spec);
// Gives a registered experiment its checkpoint evaluation (for `plateau eval`).
bool register_evaluator(const std::string& experiment,
                        std::function<int(Run&, const io::TensorMap&, const io::Metadata&)> evaluate);
const std::vector<ExperimentSpec>& experiments();
const ExperimentSpec* find_experiment(const std::string& name);

struct RunOptions {
  std::string runs_root = "runs";  // runs/<experiment>/<timestamp>/
  std::string dir;                 // explicit run directory (overrides runs_root)
  bool resume = false;             // continue the run in `dir` from its last checkpoint
  bool quiet = false;              // no progress bar
  int64_t keep_checkpoints = 2;
  bool plot = true;  // call tools/plot.py at the end
};

class Run {
 public:
  Run(const ExperimentSpec& spec, Config config, RunOptions options);
  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  const Config& config() const { return config_; }
  const std::string& experiment() const { return spec_.name; }
  const std::string& dir() const { return dir_; }
  uint64_t seed() const { return static_cast<uint64_t>(config_.get_int("seed")); }
  bool resuming() const { return options_.resume; }

  // One JSON object per line in metrics.jsonl; flushed, so a killed run keeps what it logged.
  void log(const Metrics& row);
  // The progress bar on stderr: "epoch 3/10 [#####     ] 512/1000  loss 0.41  acc 0.87  1830 ex/s  ETA 0:42".
  void progress(const std::string& prefix, int64_t done, int64_t total, const Metrics& values,
                int64_t examples_done = 0);
  void end_progress();

  // Checkpoints are written atomically as checkpoint-<step>.safetensors with the format version, the
  // experiment, the configuration and `metadata` in the header; only the last k are kept.
  void save_checkpoint(int64_t step, const io::TensorMap& state, io::Metadata metadata = {});
  // The newest checkpoint of this run's directory, if any. Refuses one whose configuration differs
  // from this run's, naming the key.
  std::optional<std::pair<io::TensorMap, io::Metadata>> load_checkpoint();

  // Drops the metrics rows whose `key` exceeds `last` (a resumed run logs them again).
  void truncate_metrics(const std::string& key, int64_t last);

  // Raised by SIGINT / SIGTERM: finish the current step, checkpoint, return.
  static bool stop_requested();
  static void request_stop();

  // A result the sweep aggregates (written to result.json when the experiment returns).
  void set_result(const Metrics& result);
  const Metrics& result() const { return result_; }

  // Writes `text` into the run directory (tables, summaries) and returns its path.
  std::string write_file(const std::string& name, const std::string& text) const;
  void finish(int status);

 private:
  const ExperimentSpec& spec_;
  Config config_;
  RunOptions options_;
  std::string dir_;
  std::FILE* metrics_ = nullptr;
  Metrics result_;
  double start_seconds_ = 0;
  double progress_start_ = 0;
  int64_t progress_examples_start_ = 0;
  int64_t progress_done_ = 0;
  bool progress_shown_ = false;
};

// Runs a registered experiment with flags `args` (--key value pairs, --config, --resume DIR,
// --out DIR, --quiet); returns its exit status.
int run_experiment(const std::string& name, const std::vector<std::string>& args);
// The command line: run, sweep, eval, list, ops. tools/plateau.cpp is `return cli_main(argc, argv)`.
int cli_main(int argc, char** argv);

// Runs tools/plot.py (from the source tree or the installed copy) with `args`; false if it failed.
bool run_plot(const std::string& args);

// Text tables for summaries: the first row is the header.
std::string format_table(const std::vector<std::vector<std::string>>& rows);
// mean ± std (sample std, n − 1) of values, formatted with `digits` decimals.
std::string mean_std(const std::vector<double>& values, int digits = 4);

}  // namespace plateau::runner

#define PLATEAU_EXPERIMENT_CONCAT_(a, b) a##b
#define PLATEAU_EXPERIMENT_CONCAT(a, b) PLATEAU_EXPERIMENT_CONCAT_(a, b)
// Defines and registers `int name(plateau::runner::Run& run)`; `defaults` is a parenthesised Config.
#define PLATEAU_EXPERIMENT(name, description, defaults)                                                   \
  static int name(plateau::runner::Run& run);                                                             \
  static const bool PLATEAU_EXPERIMENT_CONCAT(registered_, name) =                                        \
      plateau::runner::register_experiment({#name, description, plateau::runner::Config defaults, name}); \
  static int name(plateau::runner::Run& run)
