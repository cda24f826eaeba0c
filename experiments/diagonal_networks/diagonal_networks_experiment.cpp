// The diagonal-linear-network experiment of Andriushchenko & Flammarion (ICML 2022) on the runner:
//
//   plateau run diagonal_networks                          GD, n-SAM over a ρ grid, 1-SAM at 0.1, 0.3, 0.9
//   plateau run diagonal_networks --step_mult 10 --one_sam_rhos 0.2,0.3
//
// Prints the table (method, ρ, final test and train loss) and writes it to summary.txt; logs one row
// per training (method, ρ, final losses or "diverged") to metrics.jsonl; sets the results
// (gd_test_loss, nsam_min_test_loss, one_sam_0.3_test_loss, ...). Each training that did not diverge
// also gets <run>/<key>/metrics.jsonl with its log10 losses against the iteration (as "epoch", with a
// "label"), which tools/plot.py draws as one coloured curve per training: the losses span 10 decades
// and plot.py's axes are linear. README.md next to this file has the setting, the notebook's numbers
// and ours.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "experiments/diagonal_networks/diagonal_networks.h"

using namespace plateau;
using namespace plateau::diagonal;
using runner::Config;
using runner::Metrics;
using runner::Run;

namespace {

std::vector<double> parse_rhos(const Config& c, const std::string& key) {
  std::vector<double> rhos;
  std::stringstream list(c.get(key));
  for (std::string item; std::getline(list, item, ',');) {
    if (item.empty()) continue;
    size_t used = 0;
    double rho = 0;
    try {
      rho = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || !(rho >= 0))
      throw std::invalid_argument("plateau: diagonal_networks: --" + key +
                                  " must be a comma-separated list of rho >= 0 "
                                  "(e.g. 0.1,0.3), got '" +
                                  c.get(key) + "'");
    rhos.push_back(rho);
  }
  return rhos;
}

std::string format_number(double x, const char* format = "%.3g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, x);
  return buf;
}

// The key of one training in metrics and results: "gd", "nsam_0.01", "one_sam_0.3".
std::string key_of(Method method, double rho) {
  switch (method) {
    case Method::gd: return "gd";
    case Method::n_sam: return "nsam_" + format_number(rho, "%g");
    case Method::one_sam: return "one_sam_" + format_number(rho, "%g");
  }
  return "?";
}

// The label tools/plot.py colours a training's curves by: "GD", "n-SAM rho 0.01", "1-SAM rho 0.3".
std::string label_of(Method method, double rho) {
  return method == Method::gd ? "GD" : std::string(method_name(method)) + " rho " + format_number(rho, "%g");
}

// <run>/<key>/metrics.jsonl: one row per recorded iteration, log10 of the losses.
void write_curve(const Run& run, const std::string& key, const std::string& label,
                 const std::vector<LossPoint>& curve) {
  const std::filesystem::path dir = std::filesystem::path(run.dir()) / key;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / "metrics.jsonl");
  for (const LossPoint& p : curve) {
    if (!(p.train_loss > 0 && p.test_loss > 0 && std::isfinite(p.train_loss) && std::isfinite(p.test_loss))) continue;
    char line[256];
    std::snprintf(
        line, sizeof line, "{\"epoch\":%lld,\"label\":\"%s\",\"test_log10_loss\":%.17g,\"train_log10_loss\":%.17g}\n",
        static_cast<long long>(p.iteration), label.c_str(), std::log10(p.test_loss), std::log10(p.train_loss));
    out << line;
  }
  if (!out.flush())
    throw std::runtime_error("plateau: diagonal_networks: cannot write " + (dir / "metrics.jsonl").string() +
                             "; check the run directory is writable");
}

struct Training {
  Method method;
  double rho;
  DiagonalOutcome outcome;
};

}  // namespace

PLATEAU_EXPERIMENT(diagonal_networks,
                   "diagonal linear networks (Andriushchenko & Flammarion 2022): GD, n-SAM and 1-SAM on sparse "
                   "regression, final test losses",
                   (Config{{"iterations", "10000"},
                           {"step_mult", "15"},
                           {"alpha", "0.1"},
                           {"seed", "0"},
                           {"rhos", "0.001,0.003,0.01,0.03,0.1,0.3,0.9"},
                           {"one_sam_rhos", "0.1,0.3,0.9"},
                           {"n", "20"},
                           {"d", "30"},
                           {"sparsity", "3"},
                           {"n_test", "1000"}})) {
  const auto t0 = std::chrono::steady_clock::now();
  const Config& c = run.config();
  DiagonalDataOptions data;
  data.n = c.get_int("n");
  data.d = c.get_int("d");
  data.sparsity = c.get_int("sparsity");
  data.n_test = c.get_int("n_test");
  data.seed = run.seed();
  const DiagonalSetup setup = make_diagonal_setup(data);
  DiagonalTrainOptions options;
  options.step_size = c.get_double("step_mult") / static_cast<double>(data.d);
  options.alpha = c.get_double("alpha");
  options.iterations = c.get_int("iterations");
  options.record_at = log_spaced_iterations(options.iterations);

  std::vector<std::pair<Method, double>> plan = {{Method::gd, 0.0}};
  for (double rho : parse_rhos(c, "rhos")) plan.emplace_back(Method::n_sam, rho);
  for (double rho : parse_rhos(c, "one_sam_rhos")) plan.emplace_back(Method::one_sam, rho);

  std::vector<Training> trainings;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (Run::stop_requested()) return 130;
    const auto [method, rho] = plan[i];
    run.progress(label_of(method, rho), static_cast<int64_t>(i), static_cast<int64_t>(plan.size()), {});
    DiagonalOutcome o = train_diagonal_network(setup, method, rho, options);
    if (!o.diverged) write_curve(run, key_of(method, rho), label_of(method, rho), o.curve);
    Metrics summary = {{"method", std::string(method_name(method))},
                       {"rho", rho},
                       {"iterations", o.iterations_run},
                       {"status", std::string(o.diverged ? "diverged" : "ok")}};
    if (!o.diverged) {
      summary.emplace_back("final_train_loss", o.train_loss);
      summary.emplace_back("final_test_loss", o.test_loss);
    }
    run.log(summary);
    trainings.push_back({method, rho, std::move(o)});
  }
  run.progress("done", static_cast<int64_t>(plan.size()), static_cast<int64_t>(plan.size()), {});
  run.end_progress();

  std::vector<std::vector<std::string>> rows = {{"method", "rho", "final test loss", "final train loss"}};
  Metrics results;
  const Training* best_nsam = nullptr;
  for (const Training& t : trainings) {
    const bool has_rho = t.method != Method::gd;
    const std::string diverged = "diverged (iteration " + std::to_string(t.outcome.iterations_run) + ")";
    rows.push_back({method_name(t.method), has_rho ? format_number(t.rho, "%g") : "-",
                    t.outcome.diverged ? diverged : format_number(t.outcome.test_loss, "%.3e"),
                    t.outcome.diverged ? "diverged" : format_number(t.outcome.train_loss, "%.3e")});
    const std::string key = key_of(t.method, t.rho);
    if (t.outcome.diverged) {
      results.emplace_back(key + "_test_loss", std::string("diverged"));
    } else {
      results.emplace_back(key + "_test_loss", t.outcome.test_loss);
      results.emplace_back(key + "_train_loss", t.outcome.train_loss);
    }
    if (t.method == Method::n_sam && !t.outcome.diverged &&
        (!best_nsam || t.outcome.test_loss < best_nsam->outcome.test_loss))
      best_nsam = &t;
  }
  if (best_nsam) {
    results.emplace_back("nsam_min_test_loss", best_nsam->outcome.test_loss);
    results.emplace_back("nsam_min_rho", best_nsam->rho);
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.set_result(results);

  char header[256];
  std::snprintf(header, sizeof header,
                "diagonal linear network: n = %lld, d = %lld, %lld-sparse beta*, step %s/d, alpha %s, %lld iterations, "
                "seed %llu\n",
                static_cast<long long>(data.n), static_cast<long long>(data.d), static_cast<long long>(data.sparsity),
                c.get("step_mult").c_str(), c.get("alpha").c_str(), static_cast<long long>(options.iterations),
                static_cast<unsigned long long>(data.seed));
  char tail[128];
  std::snprintf(tail, sizeof tail, "wall time %.1f s\n", wall);
  const std::string report = header + runner::format_table(rows) + tail;
  std::printf("%s", report.c_str());
  run.write_file("summary.txt", report);
  return 0;
}
