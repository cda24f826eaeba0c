// The experiment runner: configuration, checkpoints (atomic, the last k kept, refused when the
// configuration differs), and runs that are killed or interrupted and resumed to bit-identical results.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;
using runner::Config;

namespace fs = std::filesystem;

namespace {

using testing::TempDir;

// Counts checkpoints as a checkpointing experiment would write them.
PLATEAU_EXPERIMENT(runner_test_counter, "writes a checkpoint per step (tests only)", (Config{{"steps", "4"}})) {
  for (int64_t s = 1; s <= run.config().get_int("steps"); ++s)
    run.save_checkpoint(s, {{"x", full({2}, static_cast<double>(s), DType::f64)}});
  return 0;
}

// The plateau command line built beside this test binary.
std::string plateau_binary() {
  fs::path self = fs::read_symlink("/proc/self/exe");
  return (self.parent_path().parent_path() / "tools" / "plateau").string();
}

std::vector<nlohmann::json> metrics_without_time(const fs::path& dir) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    j.erase("train_seconds");
    rows.push_back(j);
  }
  return rows;
}

io::TensorMap last_checkpoint(const fs::path& dir) {
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("checkpoint-", 0) == 0) all.push_back(e.path());
  std::sort(all.begin(), all.end());
  REQUIRE(!all.empty());
  return io::load_safetensors(all.back().string());
}

pid_t spawn(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> label_noise_args(const fs::path& dir, int64_t epochs) {
  return {plateau_binary(),       "run",     "label_noise", "--method", "sam",       "--train_size", "1024", "--epochs",
          std::to_string(epochs), "--quiet", "--no-plot",   "--out",    dir.string()};
}

void check_same_run(const fs::path& a, const fs::path& b) {
  CHECK(metrics_without_time(a) == metrics_without_time(b));
  io::TensorMap x = last_checkpoint(a), y = last_checkpoint(b);
  REQUIRE(x.size() == y.size());
  for (const auto& [name, t] : x) {
    INFO(name);
    REQUIRE(y.count(name));
    CHECK(t.to_vector<float>() == y.at(name).to_vector<float>());  // bit for bit
  }
}

}  // namespace

TEST_CASE("runner: configuration overrides, typed values and JSON files") {
  Config c{{"lr", "0.1"}, {"epochs", "3"}, {"nesterov", "true"}};
  c.override_with(Config{{"lr", "0.5"}}, "fit");
  CHECK(c.get_double("lr") == 0.5);
  CHECK(c.get_int("epochs") == 3);
  CHECK(c.get_bool("nesterov"));
  testing::check_error(
      [&] {
        c.override_with(Config{{"lr_max", "1"}}, "fit");
      },
      {"'fit'", "no option 'lr_max'", "epochs, lr, nesterov"});
  testing::check_error([&] { Config{{"epochs", "3.5"}}.get_int("epochs"); }, {"'epochs'", "integer", "3.5"});
  Config j = Config::from_json(R"({"lr": 0.25, "nesterov": false, "model": "mlp_784"})", "cfg.json");
  CHECK(j.get_double("lr") == 0.25);
  CHECK(j.get("model") == "mlp_784");
  CHECK_FALSE(j.get_bool("nesterov"));
  testing::check_error([] { Config::from_json("[1, 2]", "cfg.json"); }, {"cfg.json", "JSON object"});
  testing::check_error([] { Config::from_json("{", "cfg.json"); }, {"cfg.json", "not valid JSON"});
}

TEST_CASE("runner: tables and mean ± std") {
  CHECK(runner::mean_std({1.0, 2.0, 3.0}, 2) == "2.00 ± 1.00");
  std::string t = runner::format_table({{"a", "bb"}, {"ccc", "±"}});
  CHECK(t == "a    bb\n-------\nccc  ±\n");
}

TEST_CASE("runner: the last k checkpoints are kept, and a different configuration is refused by name") {
  TempDir tmp;
  const runner::ExperimentSpec* spec = runner::find_experiment("runner_test_counter");
  REQUIRE(spec);
  runner::RunOptions options;
  options.dir = (tmp.dir / "run").string();
  options.plot = false;
  options.quiet = true;
  Config config = spec->defaults;
  {
    runner::Run run(*spec, config, options);
    REQUIRE(spec->main(run) == 0);
  }
  int64_t files = 0;
  for (const auto& e : fs::directory_iterator(options.dir)) files += e.path().extension() == ".safetensors";
  CHECK(files == 2);
  options.resume = true;
  {
    runner::Run run(*spec, config, options);
    auto ck = run.load_checkpoint();
    REQUIRE(ck.has_value());
    CHECK(ck->first.at("x").to_vector<double>() == std::vector<double>{4, 4});
    CHECK(ck->second.at("step") == "4");
  }
  config.set("steps", "5");
  runner::Run run(*spec, config, options);
  testing::check_error([&] { run.load_checkpoint(); }, {"steps = 4", "steps = 5"});
}

TEST_CASE("runner: a run killed with SIGKILL and resumed ends bit-identical to one never stopped") {
  TempDir tmp;
  REQUIRE(fs::exists(plateau_binary()));
  const fs::path straight = tmp.dir / "straight", killed = tmp.dir / "killed";
  REQUIRE(wait_for(spawn(label_noise_args(straight, 3))) == 0);

  // Kill as soon as the first epoch's checkpoint is on disk (a torn write would be a .tmp file).
  pid_t pid = spawn(label_noise_args(killed, 3));
  bool seen = false;
  for (int i = 0; i < 3000 && !seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (fs::exists(killed))
      for (const auto& e : fs::directory_iterator(killed))
        seen = seen ||
               (e.path().filename().string().rfind("checkpoint-", 0) == 0 && e.path().extension() == ".safetensors");
  }
  kill(pid, SIGKILL);
  wait_for(pid);
  REQUIRE(seen);
  std::vector<std::string> resume = label_noise_args(killed, 3);
  resume[resume.size() - 2] = "--resume";
  REQUIRE(wait_for(spawn(resume)) == 0);
  check_same_run(straight, killed);
}

TEST_CASE("runner: SIGINT checkpoints mid-epoch, and resuming continues bit for bit") {
  TempDir tmp;
  const fs::path straight = tmp.dir / "straight", stopped = tmp.dir / "stopped";
  REQUIRE(wait_for(spawn(label_noise_args(straight, 4))) == 0);
  pid_t pid = spawn(label_noise_args(stopped, 4));
  // Interrupt once the first epoch is logged: the stop flag is read after each step, so the
  // checkpoint falls inside epoch 2 or 3.
  for (int i = 0; i < 3000 && metrics_without_time(stopped).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGINT);
  REQUIRE(wait_for(pid) == 130);
  CHECK(metrics_without_time(stopped).size() < 4);
  std::vector<std::string> resume = label_noise_args(stopped, 4);
  resume[resume.size() - 2] = "--resume";
  REQUIRE(wait_for(spawn(resume)) == 0);
  check_same_run(straight, stopped);
}

TEST_CASE("runner: --resume refuses a checkpoint written with other options, naming the option") {
  TempDir tmp;
  const fs::path dir = tmp.dir / "run";
  REQUIRE(wait_for(spawn(label_noise_args(dir, 1))) == 0);
  std::vector<std::string> other = label_noise_args(dir, 1);
  other[other.size() - 2] = "--resume";
  other[4] = "sgd";  // --method
  REQUIRE(wait_for(spawn(other)) == 1);
}

TEST_CASE("runner: each method by name, and the passes per step it reports to the trainer") {
  struct Expected {
    const char* method;
    int64_t forwards, backwards, hvps;
  };
  const std::vector<Expected> expected = {
      {"sgd", 1, 1, 0},        {"sam", 2, 2, 0},           {"usam", 2, 2, 0},
      {"msam", 2, 2, 0},       {"multistep_sam", 4, 4, 0}, {"asam", 2, 2, 0},
      {"asam_every", 2, 2, 0}, {"fisher_sam", 2, 2, 0},    {"fisher_sam_empirical", 2, 3, 0},
      {"hero", 2, 2, 1},       {"delta_sam", 5, 2, 0},
  };
  Generator gen(4);
  Tensor x = normal({8, 6}, 0, 1, DType::f32, gen), y = randint(0, 3, {8}, gen);
  for (const auto& e : expected) {
    INFO(e.method);
    manual_seed(1);
    auto model = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(6, 5), std::make_shared<nn::ReLU>(),
                                                  std::make_shared<nn::Linear>(5, 3));
    optim::SGD sgd(model->parameters(), {.lr = 0.1});
    Config c{{"method", e.method}, {"m", "4"}, {"steps", "3"}};
    auto step = runner::make_train_step(c, *model, sgd, 10);
    Tensor before;
    {
      NoGradGuard no_grad;
      before = (*model)(x);
    }
    runner::StepOutcome o = runner::step_outcome(step->step(x, y), y);
    CHECK(o.forwards == e.forwards);
    CHECK(o.backwards == e.backwards);
    CHECK(o.hessian_vector_products == e.hvps);
    CHECK(std::isfinite(o.loss));
    // The first pass's predictions at w, before the update.
    CHECK(o.correct == runner::count_correct(before, y));
    if (std::string(e.method) != "sgd") CHECK(o.diagnostics.size() == 4);
  }
  CHECK(runner::default_rho("hero") == 0.5);
  CHECK(runner::default_rho("sam") == 0.05);
  nn::Linear layer(2, 2);
  optim::SGD sgd(layer.parameters(), {.lr = 0.1});
  testing::check_error(
      [&] {
        runner::make_train_step(Config{{"method", "adam_sam"}}, layer, sgd, 1);
      },
      {"unknown --method 'adam_sam'", "hero"});
}
