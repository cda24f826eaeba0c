// Tensors, factories, dtypes and the Philox generator.
#include <doctest/doctest.h>

#include "plateau.h"

using namespace plateau;

TEST_CASE("tensor: factories, shapes, strides, items") {
  Tensor t = zeros({2, 3}, DType::f64);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.strides() == Shape{3, 1});
  CHECK(t.numel() == 6);
  CHECK(t.is_contiguous());
  CHECK(t.dtype() == DType::f64);
  CHECK(t.device() == Device::cpu());
  CHECK(full({}, 2.5).item() == 2.5);
  CHECK(arange(4).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(arange(0.5, 2.0, 0.5, DType::f64).to_vector<double>() == std::vector<double>{0.5, 1.0, 1.5});
  CHECK(eye(2).to_vector<float>() == std::vector<float>{1, 0, 0, 1});
  CHECK(tensor({1.5, 2.5}, {2}, DType::i64).to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  CHECK_THROWS_WITH_AS(tensor(std::vector<double>{1.0, 2.0}, {3}), doctest::Contains("2 values for shape [3]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(t.item(), doctest::Contains("[2, 3]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(t.data<float>(), doctest::Contains("f64"), std::invalid_argument);
  CHECK(t.str().find("[2, 3]") != std::string::npos);
}

TEST_CASE("tensor: only floating tensors require grad; non-leaves cannot be re-flagged") {
  CHECK_THROWS_WITH_AS(arange(3).requires_grad_(), doctest::Contains("i64"), std::invalid_argument);
  Tensor x = ones({2}, DType::f64).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_FALSE(y.is_leaf());
  CHECK_THROWS_WITH_AS(y.requires_grad_(), doctest::Contains("mul"), std::invalid_argument);
}

TEST_CASE("tensor: views share storage and track contiguity") {
  Tensor base = arange(0, 6, 1, DType::f64);
  Tensor m = view(base, {2, 3});
  Tensor t = transpose(m, 0, 1);
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.contiguous().to_vector<double>() == std::vector<double>{0, 3, 1, 4, 2, 5});
  Tensor s = slice(base, 0, 1, 6, 2);
  CHECK(s.to_vector<double>() == std::vector<double>{1, 3, 5});
  fill_(s, -1.0);
  CHECK(base.to_vector<double>() == std::vector<double>{0, -1, 2, -1, 4, -1});
  CHECK(base.version() == 1);
}

TEST_CASE("random: Philox4x32-10 known-answer vectors (Random123)") {
  auto r = philox4x32({0, 0, 0, 0}, {0, 0});
  CHECK(r == std::array<uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  r = philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
  CHECK(r == std::array<uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  r = philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u});
  CHECK(r == std::array<uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("random: streams, offsets and the default generator replay exactly") {
  Generator a(42, 0), b(42, 1);
  Tensor x = uniform({8}, 0, 1, DType::f64, a);
  CHECK(x.to_vector<double>() != uniform({8}, 0, 1, DType::f64, b).to_vector<double>());  // another stream
  Generator c(42, 0);
  c.set_offset(4);
  Tensor tail = uniform({4}, 0, 1, DType::f64, c);  // skipping 4 blocks gives the draw's second half
  std::vector<double> xs = x.to_vector<double>();
  CHECK(tail.to_vector<double>() == std::vector<double>(xs.begin() + 4, xs.end()));
  manual_seed(9);
  Tensor d1 = normal({5});
  manual_seed(9);
  CHECK(d1.to_vector<float>() == normal({5}).to_vector<float>());
}
