#pragma once
// CPU-vs-CUDA parity: every registered op case run on both devices from the same inputs, comparing
// values, gradients (a vector-Jacobian product with one random cotangent) and gradients of gradients
// (the derivative of that product along a random direction), plus whole-engine checks (per-example
// gradients, Hessian-vector products, dropout masks). The CPU is the reference.
#include <functional>
#include <string>
#include <vector>

#include "core/autograd/registry.h"
#include "core/tensor.h"

namespace plateau::parity {

struct Case {
  std::string name;                          // "op: case label" or "engine: what"
  const registry::OpEntry* entry = nullptr;  // null for engine checks
  const registry::OpCase* op_case = nullptr;
  std::function<void(Device)> engine_check;  // engine checks: throws on a mismatch
};

// Every parity case: each case of each registry entry (values only for ops without gradient), then
// the engine checks. An op without a case is reported by ops_without_cases().
std::vector<Case> cases();
std::vector<std::string> ops_without_cases();

struct Tolerance {
  double rtol = 1e-9, atol = 1e-10;  // f64
  double rtol_f32 = 2e-4, atol_f32 = 1e-5;
};

// Runs one case in f64 and f32 (contiguous and strided inputs) on the CPU and on `device`; the empty
// string when they agree, else what differs and by how much.
std::string run(const Case& c, Device device, const Tolerance& tolerance = {});

struct Report {
  int passed = 0, failed = 0, skipped = 0;
  std::vector<std::string> failures;
  std::string skip_reason;      // why everything was skipped (no CUDA device), empty otherwise
  std::string summary() const;  // "cuda parity: P passed, F failed, S skipped"
};
// Every case on cuda:0, or all of them counted as skipped when no CUDA device is available.
Report run_all(const Tolerance& tolerance = {});

}  // namespace plateau::parity
