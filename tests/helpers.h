#pragma once
// Helpers shared by the test files.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

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

}  // namespace plateau::testing
