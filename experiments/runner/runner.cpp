#include "experiments/runner/runner.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "core/threads.h"

namespace plateau::runner {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("plateau: " + msg); }

constexpr const char* kCheckpointFormat = "1";

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string timestamp() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return buf;
}

std::string source_root() {
#ifdef PLATEAU_SOURCE_ROOT
  return PLATEAU_SOURCE_ROOT;
#else
  return ".";
#endif
}

// tools/plot.py in the source tree, or where `meson install` put it.
std::string plot_script() {
  fs::path in_tree = fs::path(source_root()) / "tools" / "plot.py";
  if (fs::exists(in_tree)) return in_tree.string();
#ifdef PLATEAU_INSTALL_DATADIR
  return (fs::path(PLATEAU_INSTALL_DATADIR) / "plot.py").string();
#else
  return in_tree.string();
#endif
}

// Debian's python3, which has python3-matplotlib, even when another python3 comes first on PATH.
std::string python() { return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

std::string git_commit() {
  std::string cmd = "git -C '" + source_root() + "' rev-parse HEAD 2>/dev/null";
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "unknown";
  char buf[64] = {0};
  std::string out = std::fgets(buf, sizeof buf, p) ? std::string(buf) : "";
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.size() == 40 ? out : "unknown";
}

json metric_json(const Metric& m) {
  return std::visit([](const auto& v) { return json(v); }, m);
}

std::atomic<bool> stop_flag{false};

extern "C" void on_stop_signal(int sig) {
  // The second signal ends the process at once.
  if (stop_flag.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

std::vector<ExperimentSpec>& registry() {
  static std::vector<ExperimentSpec>* r = new std::vector<ExperimentSpec>;
  return *r;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

std::string metric_text(const Metric& m) {
  if (const double* d = std::get_if<double>(&m)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, std::abs(*d) >= 1000 || (*d != 0 && std::abs(*d) < 1e-3) ? "%.3g" : "%.4f", *d);
    return buf;
  }
  if (const int64_t* i = std::get_if<int64_t>(&m)) return std::to_string(*i);
  return std::get<std::string>(m);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Config

const std::string& Config::get(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) fail("config has no key '" + key + "'");
  return it->second;
}

int64_t Config::get_int(const std::string& key) const {
  const std::string& v = get(key);
  try {
    size_t used = 0;
    int64_t x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  fail("config key '" + key + "' must be an integer, got '" + v + "'");
}

double Config::get_double(const std::string& key) const {
  const std::string& v = get(key);
  try {
    size_t used = 0;
    double x = std::stod(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  fail("config key '" + key + "' must be a number, got '" + v + "'");
}

bool Config::get_bool(const std::string& key) const {
  const std::string& v = get(key);
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  fail("config key '" + key + "' must be true or false, got '" + v + "'");
}

void Config::override_with(const Config& overrides, const std::string& experiment) {
  for (const auto& [key, value] : overrides.values_) {
    if (!has(key)) {
      std::string known;
      for (const auto& [k, v] : values_) known += (known.empty() ? "" : ", ") + k;
      fail("experiment '" + experiment + "' has no option '" + key + "'; its options: " + known);
    }
    values_[key] = value;
  }
}

std::string Config::to_json() const { return json(values_).dump(); }

Config Config::from_json(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(origin + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) fail(origin + ": the configuration must be a JSON object of option: value");
  Config c;
  for (auto& [key, value] : j.items()) {
    if (value.is_string())
      c.set(key, value.get<std::string>());
    else if (value.is_boolean())
      c.set(key, value.get<bool>() ? "true" : "false");
    else if (value.is_number())
      c.set(key, value.dump());
    else
      fail(origin + ": option '" + key + "' must be a string, number or boolean");
  }
  return c;
}

Config Config::from_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read the configuration file '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  return from_json(text.str(), path);
}

// ---------------------------------------------------------------------------------------------
// Registry

bool register_experiment(ExperimentSpec spec) {
  if (!spec.defaults.has("seed")) spec.defaults.set("seed", "0");
  for (const auto& e : registry())
    if (e.name == spec.name) throw std::logic_error("plateau: experiment '" + spec.name + "' registered twice");
  registry().push_back(std::move(spec));
  return true;
}

bool register_evaluator(const std::string& experiment,
                        std::function<int(Run&, const io::TensorMap&, const io::Metadata&)> evaluate) {
  for (auto& e : registry())
    if (e.name == experiment) {
      e.evaluate = std::move(evaluate);
      return true;
    }
  throw std::logic_error("plateau: register_evaluator: no experiment '" + experiment + "' (register it first)");
}

const std::vector<ExperimentSpec>& experiments() { return registry(); }

const ExperimentSpec* find_experiment(const std::string& name) {
  for (const auto& e : registry())
    if (e.name == name) return &e;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Run

Run::Run(const ExperimentSpec& spec, Config config, RunOptions options)
    : spec_(spec), config_(std::move(config)), options_(std::move(options)) {
  start_seconds_ = now_seconds();
  if (!options_.dir.empty()) {
    dir_ = options_.dir;
  } else {
    std::string base = (fs::path(options_.runs_root) / spec_.name / timestamp()).string();
    dir_ = base;
    for (int i = 1; fs::exists(dir_); ++i) dir_ = base + "-" + std::to_string(i);
  }
  if (options_.resume && !fs::exists(fs::path(dir_) / "manifest.json"))
    fail("--resume " + dir_ + ": no manifest.json there; give the directory of an earlier run of '" + spec_.name + "'");
  fs::create_directories(dir_);
  if (!options_.resume) {
    json manifest = {{"experiment", spec_.name},   {"config", config_.values()},   {"seed", seed()},
                     {"git_commit", git_commit()}, {"threads", get_num_threads()}, {"device", "cpu"},
                     {"started", timestamp()}};
    char host[256] = {0};
    if (gethostname(host, sizeof host - 1) == 0) manifest["host"] = host;
    write_file("manifest.json", manifest.dump(1) + "\n");
  } else {
    std::ifstream in(fs::path(dir_) / "manifest.json");
    json manifest = json::parse(in, nullptr, false);
    if (manifest.is_discarded() || manifest.value("experiment", "") != spec_.name)
      fail("--resume " + dir_ + ": its manifest is not a run of '" + spec_.name + "'");
  }
  metrics_ = std::fopen((fs::path(dir_) / "metrics.jsonl").c_str(), "a");
  if (!metrics_) fail("cannot write " + (fs::path(dir_) / "metrics.jsonl").string());
  stop_flag = false;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

Run::~Run() {
  end_progress();
  if (metrics_) std::fclose(metrics_);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

void Run::log(const Metrics& row) {
  json j = json::object();
  for (const auto& [k, v] : row) j[k] = metric_json(v);
  std::fprintf(metrics_, "%s\n", j.dump().c_str());
  std::fflush(metrics_);
}

void Run::truncate_metrics(const std::string& key, int64_t last) {
  std::fclose(metrics_);
  fs::path path = fs::path(dir_) / "metrics.jsonl";
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;  // a line torn by a kill
    if (j.contains(key) && j[key].is_number() && j[key].get<int64_t>() > last) continue;
    kept += line + "\n";
  }
  in.close();
  write_file("metrics.jsonl", kept);
  metrics_ = std::fopen(path.c_str(), "a");
}

void Run::progress(const std::string& prefix, int64_t done, int64_t total, const Metrics& values,
                   int64_t examples_done) {
  if (options_.quiet) return;
  const double now = now_seconds();
  // A new bar (or one restarted at a lower count, the next epoch's) restarts the rate and the ETA.
  if (!progress_shown_ || done <= progress_done_) {
    progress_start_ = now;
    progress_examples_start_ = examples_done;
  }
  progress_shown_ = true;
  progress_done_ = done;
  const double elapsed = now - progress_start_;
  const int width = 20;
  const int filled = total > 0 ? static_cast<int>(width * done / total) : 0;
  std::string line = prefix + " [" + std::string(filled, '#') + std::string(width - filled, ' ') + "] " +
                     std::to_string(done) + "/" + std::to_string(total);
  for (const auto& [k, v] : values) line += "  " + k + " " + metric_text(v);
  if (elapsed > 0 && examples_done > progress_examples_start_ && done > 1) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "  %.0f ex/s", (examples_done - progress_examples_start_) / elapsed);
    line += buf;
  }
  if (done > 0 && total > done) line += "  ETA " + format_duration(elapsed / done * (total - done));
  // On a terminal the bar redraws in place; in a log file only the finished bar is written.
  if (isatty(STDERR_FILENO))
    std::fprintf(stderr, "\r%-100s", line.c_str());
  else if (done == total)
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
  if (done == total && isatty(STDERR_FILENO)) end_progress();
}

void Run::end_progress() {
  if (progress_shown_ && isatty(STDERR_FILENO)) std::fprintf(stderr, "\n");
  progress_shown_ = false;
}

void Run::save_checkpoint(int64_t step, const io::TensorMap& state, io::Metadata metadata) {
  metadata["format_version"] = kCheckpointFormat;
  metadata["experiment"] = spec_.name;
  metadata["config"] = config_.to_json();
  metadata["step"] = std::to_string(step);
  char name[64];
  std::snprintf(name, sizeof name, "checkpoint-%08lld.safetensors", static_cast<long long>(step));
  io::save_safetensors((fs::path(dir_) / name).string(), state, metadata);
  std::vector<fs::path> all;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string f = entry.path().filename().string();
    if (f.rfind("checkpoint-", 0) == 0 && entry.path().extension() == ".safetensors") all.push_back(entry.path());
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + options_.keep_checkpoints < all.size(); ++i) fs::remove(all[i]);
}

std::optional<std::pair<io::TensorMap, io::Metadata>> Run::load_checkpoint() {
  std::vector<fs::path> all;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string f = entry.path().filename().string();
    if (f.rfind("checkpoint-", 0) == 0 && entry.path().extension() == ".safetensors") all.push_back(entry.path());
  }
  if (all.empty()) return std::nullopt;
  std::sort(all.begin(), all.end());
  io::Metadata meta;
  io::TensorMap state = io::load_safetensors(all.back().string(), &meta);
  const std::string file = all.back().string();
  if (meta["format_version"] != kCheckpointFormat)
    fail(file + ": checkpoint format version '" + meta["format_version"] + "', this build reads " + kCheckpointFormat);
  if (meta["experiment"] != spec_.name)
    fail(file + ": a checkpoint of '" + meta["experiment"] + "', not of '" + spec_.name + "'");
  Config saved = Config::from_json(meta["config"], file);
  for (const auto& [key, value] : config_.values()) {
    std::string before = saved.has(key) ? saved.get(key) : "(absent)";
    if (before != value)
      fail(file + ": the checkpoint was written with " + key + " = " + before + ", this run has " + key + " = " +
           value + "; resume with the same options, or start a new run");
  }
  return std::make_pair(std::move(state), std::move(meta));
}

bool Run::stop_requested() { return stop_flag.load(); }
void Run::request_stop() { stop_flag = true; }

void Run::set_result(const Metrics& result) { result_ = result; }

std::string Run::write_file(const std::string& name, const std::string& text) const {
  fs::path path = fs::path(dir_) / name;
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) fail("cannot write " + tmp.string());
    out << text;
    if (!out.flush()) fail("writing " + tmp.string() + " failed");
  }
  fs::rename(tmp, path);
  return path.string();
}

void Run::finish(int status) {
  end_progress();
  if (!result_.empty()) {
    json j = json::object();
    for (const auto& [k, v] : result_) j[k] = metric_json(v);
    j["status"] = status;
    j["wall_seconds"] = now_seconds() - start_seconds_;
    write_file("result.json", j.dump(1) + "\n");
  }
  // Curves need metrics rows; a run that logged none (a measurement) has nothing to draw.
  std::error_code ec;
  const bool logged = fs::file_size(fs::path(dir_) / "metrics.jsonl", ec) > 0 && !ec;
  if (options_.plot && status == 0 && logged && !run_plot("'" + dir_ + "'"))
    std::fprintf(stderr, "note: tools/plot.py could not plot %s (is python3-matplotlib installed?)\n", dir_.c_str());
}

bool run_plot(const std::string& args) {
  std::string cmd = python() + " '" + plot_script() + "' " + args + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// ---------------------------------------------------------------------------------------------
// Tables

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      // Display width: count UTF-8 lead bytes, so "±" counts once.
      size_t w = 0;
      for (unsigned char ch : row[c]) w += (ch & 0xC0) != 0x80;
      width[c] = std::max(width[c], w);
    }
  std::string out;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) {
      size_t w = 0;
      for (unsigned char ch : rows[r][c]) w += (ch & 0xC0) != 0x80;
      out += (c ? "  " : "") + rows[r][c] + std::string(width[c] - w, ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += "\n";
    if (r == 0) {
      size_t total = 0;
      for (size_t c = 0; c < width.size(); ++c) total += width[c] + (c ? 2 : 0);
      out += std::string(total, '-') + "\n";
    }
  }
  return out;
}

std::string mean_std(const std::vector<double>& values, int digits) {
  if (values.empty()) return "-";
  double mean = 0;
  for (double v : values) mean += v;
  mean /= values.size();
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  double sd = values.size() > 1 ? std::sqrt(var / (values.size() - 1)) : 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f ± %.*f", digits, mean, digits, sd);
  return buf;
}

}  // namespace plateau::runner
