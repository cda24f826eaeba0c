#pragma once
// Helpers shared by the test files.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "plateau.h"

namespace plateau::testing {

// The message of the exception fn throws must start with "plateau: " and contain every piece.
inline void check_error(const std::function<void()>& fn, const std::vector<std::string>& pieces) {
  std::string message;
  try {
    fn();
  } catch (const std::exception& e) {
    message = e.what();
  }
  INFO("message: " << message);
  REQUIRE(!message.empty());
  CHECK(message.rfind("plateau: ", 0) == 0);
  for (const auto& p : pieces) CHECK(message.find(p) != std::string::npos);
}

// An f64 tensor of the given shape holding `values`, for tests written in closed forms.
inline Tensor f64(std::vector<double> values, Shape shape) { return tensor(values, shape, DType::f64); }
inline std::vector<double> values(const Tensor& t) { return t.contiguous().to_vector<double>(); }

// A module holding one parameter vector "w" (optimizer, perturbation and landscape tests).
class Vec : public nn::Module {
 public:
  explicit Vec(Tensor init) : Module("Vec"), w(std::move(init)) { register_parameter("w", w); }
  Tensor w;
};

// A file of the source tree (fixtures, the corpus, bundled data).
inline std::string source_path(const std::string& relative) {
  return std::string(PLATEAU_SOURCE_ROOT) + "/" + relative;
}

// A fresh directory per test case, removed at the end.
struct TempDir {
  std::filesystem::path dir;
  TempDir() {
    static int counter = 0;
    dir = std::filesystem::temp_directory_path() /
          ("plateau-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (dir / name).string(); }
  // Writes `bytes` to dir/name; returns the path.
  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    std::string path = file(name);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return path;
  }
};

}  // namespace plateau::testing
