// The CUDA backend from a machine's point of view: without a device every use says so clearly; with
// one, every registered op agrees with the CPU (core/autograd/parity.h). The parity cases are
// counted as skipped without a device, and their number is checked so that none can disappear.
#include <doctest/doctest.h>

#include <cstdio>

#include "core/autograd/parity.h"
#include "plateau.h"

using namespace plateau;

TEST_CASE("cuda: without a device, the first use throws an error that says so") {
  if (cuda::is_available()) return;  // covered by the parity run instead
  CHECK(cuda::device_count() == 0);
  CHECK_FALSE(cuda::unavailable_reason().empty());
  CHECK_THROWS_WITH_AS(zeros({2, 3}, DType::f32, Device::cuda(0)), doctest::Contains("no CUDA device is available"),
                       std::runtime_error);
  Tensor x = ones({4});
  CHECK_THROWS_WITH_AS(x.to(Device::cuda(0)), doctest::Contains("no CUDA device is available"), std::runtime_error);
  Generator g(1);
  CHECK_THROWS_WITH_AS(uniform({3}, 0, 1, DType::f32, g, Device::cuda(0)),
                       doctest::Contains("no CUDA device is available"), std::runtime_error);
  CHECK(cuda::memory_stats().allocated == 0);
}

TEST_CASE("cuda: the numerics switches keep their defaults and can be changed") {
  CHECK_FALSE(cuda::allow_tf32());
  CHECK(cuda::deterministic());
  cuda::set_allow_tf32(true);
  CHECK(cuda::allow_tf32());
  cuda::set_allow_tf32(false);
  cuda::set_deterministic(false);
  CHECK_FALSE(cuda::deterministic());
  cuda::set_deterministic(true);
}

TEST_CASE("cuda: every registered op has a parity case, and the run counts each one") {
  CHECK_MESSAGE(parity::ops_without_cases().empty(),
                "ops without a case (add one to their registry entry): " << parity::ops_without_cases().size());
  for (const std::string& name : parity::ops_without_cases()) MESSAGE("no parity case: " << name);
  size_t expected = 0;
  for (const auto& entry : registry::entries()) expected += entry.cases.size();
  const size_t engine_checks = 3;  // per-example gradients, HVP, dropout masks
  std::vector<parity::Case> all = parity::cases();
  CHECK(all.size() == expected + engine_checks);

  parity::Report report = parity::run_all();
  std::printf("%s\n", report.summary().c_str());  // .ci/run adds these to its totals
  for (const std::string& f : report.failures) MESSAGE(f);
  CHECK(report.failed == 0);
  CHECK(report.passed + report.failed + report.skipped == static_cast<int>(all.size()));
  if (!cuda::is_available()) {
    // The skip count is the number of registered parity cases: none was dropped on the way.
    CHECK(report.skipped == static_cast<int>(expected + engine_checks));
    CHECK(report.passed == 0);
  } else {
    CHECK(report.skipped == 0);
  }
}
