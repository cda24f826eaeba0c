// The registry drives the derivative checks: gradcheck and gradgradcheck in f64 for every case of
// every registered op, with contiguous and non-contiguous inputs.
#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <string>

#include "plateau.h"

using namespace plateau;

namespace {

std::set<std::string> names_in_ops_txt() {
  std::ifstream in(std::string(PLATEAU_SOURCE_ROOT) + "/tests/ops.txt");
  REQUIRE(in.good());
  std::set<std::string> names;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') names.insert(line);
  return names;
}

}  // namespace

TEST_CASE("registry: op names equal tests/ops.txt") {
  std::set<std::string> expected = names_in_ops_txt();
  std::set<std::string> registered;
  for (const auto& e : registry::entries()) registered.insert(e.name);
  for (const auto& n : expected) CHECK_MESSAGE(registered.count(n), "op in tests/ops.txt is not registered: " << n);
  for (const auto& n : registered) CHECK_MESSAGE(expected.count(n), "registered op missing from tests/ops.txt: " << n);
  for (const auto& e : registry::entries()) {
    CHECK_MESSAGE(!e.math.empty(), e.name << " has no one-line rule");
    if (e.differentiable && !e.custom_gradient)
      CHECK_MESSAGE(!e.cases.empty(), e.name << " has no test domain");
    else
      CHECK_MESSAGE(bool(e.check), e.name << " (no gradient, or a custom one) has no check");
  }
}

TEST_CASE("registry: gradcheck and gradgradcheck for every op") {
  for (const auto& entry : registry::entries()) {
    if (!entry.differentiable || entry.custom_gradient) continue;
    for (size_t c = 0; c < entry.cases.size(); ++c) {
      const auto& oc = entry.cases[c];
      for (bool noncontiguous : {false, true}) {
        INFO(entry.name << " case '" << oc.label << "'" << (noncontiguous ? " non-contiguous" : " contiguous"));
        TensorList inputs = registry::make_inputs(oc, DType::f64, 100 + c, noncontiguous);
        GradcheckResult first = gradcheck(oc.fn, inputs);
        CHECK_MESSAGE(first.ok, "gradcheck: " << first.message);
        GradcheckResult second = gradgradcheck(oc.fn, inputs);
        CHECK_MESSAGE(second.ok, "gradgradcheck: " << second.message);
      }
    }
  }
}

TEST_CASE("registry: value checks of ops without gradient, and rule checks of custom-gradient ops") {
  for (const auto& entry : registry::entries()) {
    if (entry.differentiable && !entry.custom_gradient) continue;
    INFO(entry.name);
    CHECK_NOTHROW(entry.check());
  }
}

TEST_CASE("registry: every op also runs in f32") {
  for (const auto& entry : registry::entries()) {
    if (!entry.differentiable) continue;
    for (size_t c = 0; c < entry.cases.size(); ++c) {
      const auto& oc = entry.cases[c];
      INFO(entry.name << " case '" << oc.label << "'");
      TensorList in64 = registry::make_inputs(oc, DType::f64, 7, false);
      TensorList in32 = registry::make_inputs(oc, DType::f32, 7, false);
      TensorList out64 = oc.fn(in64), out32 = oc.fn(in32);
      REQUIRE(out64.size() == out32.size());
      for (size_t o = 0; o < out64.size(); ++o) {
        if (!out64[o].is_floating_point()) continue;
        CHECK(out32[o].dtype() == DType::f32);
        std::vector<double> a = out64[o].to_vector<double>(), b = out32[o].to_vector<double>();
        REQUIRE(a.size() == b.size());
        for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == doctest::Approx(a[i]).epsilon(1e-4));
      }
    }
  }
}
