// The command line behind `plateau`: run, sweep, eval, list.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "experiments/runner/runner.h"

namespace plateau::runner {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

[[noreturn]] void usage_error(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

const char* kUsage =
    "usage: plateau run <experiment> [--key value ...] [--config file.json] [--out DIR] [--resume RUN_DIR]\n"
    "                   [--quiet] [--no-plot]\n"
    "       plateau sweep <experiment> --grid key=v1,v2 [--grid ...] --seeds N [--key value ...] [--out DIR]\n"
    "       plateau eval <checkpoint.safetensors>\n"
    "       plateau list\n";

struct Parsed {
  Config overrides;
  RunOptions options;
  std::vector<std::pair<std::string, std::vector<std::string>>> grid;
  int64_t seeds = 0;
};

// --key value pairs; runner flags are taken out, everything else is an option of the experiment.
Parsed parse_flags(const std::vector<std::string>& args, bool sweep) {
  Parsed p;
  Config from_file;
  bool have_file = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) usage_error("expected an option --name, got '" + a + "'\n" + kUsage);
    const std::string name = a.substr(2);
    if (name == "quiet") {
      p.options.quiet = true;
      continue;
    }
    if (name == "no-plot") {
      p.options.plot = false;
      continue;
    }
    if (i + 1 >= args.size()) usage_error("option " + a + " needs a value");
    const std::string value = args[++i];
    if (name == "config") {
      from_file = Config::from_json_file(value);
      have_file = true;
    } else if (name == "out") {
      p.options.dir = value;
    } else if (name == "resume" && !sweep) {
      p.options.dir = value;
      p.options.resume = true;
    } else if (name == "keep") {
      p.options.keep_checkpoints = std::max(1, std::stoi(value));
    } else if (name == "grid" && sweep) {
      auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0) usage_error("--grid wants key=v1,v2,..., got '" + value + "'");
      std::vector<std::string> values;
      std::stringstream list(value.substr(eq + 1));
      for (std::string v; std::getline(list, v, ',');)
        if (!v.empty()) values.push_back(v);
      if (values.empty()) usage_error("--grid " + value + " lists no values");
      p.grid.emplace_back(value.substr(0, eq), values);
    } else if (name == "seeds" && sweep) {
      p.seeds = std::stoll(value);
      if (p.seeds < 1) usage_error("--seeds must be at least 1");
    } else {
      p.overrides.set(name, value);
    }
  }
  // The file first, flags over it.
  if (have_file) {
    for (const auto& [k, v] : p.overrides.values()) from_file.set(k, v);
    p.overrides = from_file;
  }
  return p;
}

const ExperimentSpec& experiment_or_fail(const std::string& name) {
  const ExperimentSpec* spec = find_experiment(name);
  if (spec) return *spec;
  std::string known;
  for (const auto& e : experiments()) known += (known.empty() ? "" : ", ") + e.name;
  usage_error("no experiment named '" + name + "'; `plateau list` shows them: " + known);
}

int run_with(const ExperimentSpec& spec, const Config& config, const RunOptions& options) {
  Run run(spec, config, options);
  std::fprintf(stderr, "%s: run directory %s\n", spec.name.c_str(), run.dir().c_str());
  int status = spec.main(run);
  run.finish(status);
  return status;
}

int list() {
  std::vector<std::vector<std::string>> rows = {{"experiment", "description"}};
  for (const auto& e : experiments()) rows.push_back({e.name, e.description});
  std::cout << format_table(rows);
  return 0;
}

int sweep(const std::string& name, const std::vector<std::string>& args) {
  const ExperimentSpec& spec = experiment_or_fail(name);
  Parsed p = parse_flags(args, true);
  if (p.seeds == 0) usage_error("sweep needs --seeds N");
  Config base = spec.defaults;
  base.override_with(p.overrides, name);
  for (const auto& [key, values] : p.grid) base.override_with(Config{{key, values[0]}}, name);  // checks the keys
  std::string root = p.options.dir.empty() ? (fs::path("runs") / name / "sweep").string() : p.options.dir;
  // Every combination of the grid, in order.
  std::vector<std::vector<std::pair<std::string, std::string>>> combos = {{}};
  for (const auto& [key, values] : p.grid) {
    std::vector<std::vector<std::pair<std::string, std::string>>> next;
    for (const auto& c : combos)
      for (const auto& v : values) {
        auto e = c;
        e.emplace_back(key, v);
        next.push_back(e);
      }
    combos = next;
  }
  const int64_t first_seed = base.get_int("seed");
  json summary = json::array();
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> metric_names;
  for (const auto& combo : combos) {
    std::string label;
    Config config = base;
    for (const auto& [k, v] : combo) {
      label += (label.empty() ? "" : ",") + k + "=" + v;
      config.set(k, v);
    }
    if (label.empty()) label = "defaults";
    std::map<std::string, std::vector<double>> values;
    for (int64_t s = 0; s < p.seeds; ++s) {
      Config c = config;
      c.set("seed", std::to_string(first_seed + s));
      RunOptions options = p.options;
      options.dir = (fs::path(root) / label / ("seed" + std::to_string(first_seed + s))).string();
      options.plot = false;
      fs::path result = fs::path(options.dir) / "result.json";
      if (!fs::exists(result)) {
        // Resumable: a seed that has a checkpoint but no result continues from it.
        options.resume = fs::exists(fs::path(options.dir) / "manifest.json");
        std::fprintf(stderr, "sweep %s: %s seed %lld\n", name.c_str(), label.c_str(),
                     static_cast<long long>(first_seed + s));
        int status = run_with(spec, c, options);
        if (status != 0 || Run::stop_requested()) return status ? status : 130;
      }
      std::ifstream in(result);
      json r = json::parse(in, nullptr, false);
      if (r.is_discarded()) continue;
      for (auto& [k, v] : r.items())
        if (v.is_number() && k != "status" && k != "wall_seconds") values[k].push_back(v.get<double>());
    }
    json entry = {{"config", label}};
    std::vector<std::string> row = {label};
    if (metric_names.empty())
      for (const auto& [k, v] : values) metric_names.push_back(k);
    for (const auto& k : metric_names) {
      entry[k] = values[k];
      row.push_back(mean_std(values[k]));
    }
    summary.push_back(entry);
    rows.push_back(row);
  }
  std::vector<std::string> header = {"config (mean ± std over " + std::to_string(p.seeds) + " seeds)"};
  header.insert(header.end(), metric_names.begin(), metric_names.end());
  rows.insert(rows.begin(), header);
  std::string table = format_table(rows);
  std::cout << table;
  fs::create_directories(root);
  std::ofstream(fs::path(root) / "sweep.json") << summary.dump(1) << "\n";
  std::ofstream(fs::path(root) / "sweep.txt") << table;
  if (!run_plot("--sweep '" + root + "'")) std::fprintf(stderr, "note: tools/plot.py could not plot the sweep\n");
  return 0;
}

int eval(const std::string& checkpoint) {
  io::Metadata meta;
  io::TensorMap state = io::load_safetensors(checkpoint, &meta);
  if (!meta.count("experiment"))
    usage_error(checkpoint + ": not a checkpoint of the runner (no 'experiment' in its metadata)");
  const ExperimentSpec& spec = experiment_or_fail(meta["experiment"]);
  if (!spec.evaluate) usage_error("experiment '" + spec.name + "' has no evaluation of checkpoints");
  Config config = spec.defaults;
  config.override_with(Config::from_json(meta["config"], checkpoint), spec.name);
  RunOptions options;
  options.dir = (fs::path(checkpoint).parent_path() / "eval").string();
  options.plot = false;
  Run run(spec, config, options);
  return spec.evaluate(run, state, meta);
}

}  // namespace

int run_experiment(const std::string& name, const std::vector<std::string>& args) {
  const ExperimentSpec& spec = experiment_or_fail(name);
  Parsed p = parse_flags(args, false);
  Config config = spec.defaults;
  config.override_with(p.overrides, name);
  return run_with(spec, config, p.options);
}

int cli_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
      std::cout << kUsage;
      return args.empty() ? 2 : 0;
    }
    const std::string command = args[0];
    if (command == "list") return list();
    if ((command == "run" || command == "sweep" || command == "eval") && args.size() < 2)
      usage_error(command + " needs an argument\n" + kUsage);
    std::vector<std::string> rest(args.begin() + 2, args.end());
    if (command == "run") return run_experiment(args[1], rest);
    if (command == "sweep") return sweep(args[1], rest);
    if (command == "eval") return eval(args[1]);
    usage_error("unknown command '" + command + "'\n" + kUsage);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}

}  // namespace plateau::runner
