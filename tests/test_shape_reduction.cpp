#include <doctest/doctest.h>

#include "plateau.h"

using namespace plateau;

TEST_CASE("shape debug") {
  Tensor x = tensor(std::vector<double>{1, 2, 3}, {3}, DType::f64);
  x.requires_grad_(true);
  Tensor y = sum(x);
  MESSAGE(y.str());
  MESSAGE(tape_text({y}));
  TensorList g = grad({y}, {x});
  MESSAGE(g[0].str());
  Tensor z = mul(x, x);
  Tensor s = sum(z);
  s.backward();
  MESSAGE(x.grad().str());
  CHECK(true);
}
