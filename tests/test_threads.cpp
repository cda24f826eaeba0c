// Results are bit-identical run to run for a fixed thread count, and (by design: work is split by
// size, not by thread count) between 1 and 2 threads.
#include <doctest/doctest.h>

#include "plateau.h"

using namespace plateau;

namespace {

// One training-style step of a small convolutional network, big enough to take the parallel paths.
std::vector<float> step_result() {
  Generator gen(11);
  Tensor x = normal({16, 3, 20, 20}, 0, 1, DType::f32, gen);
  Tensor w1 = normal({16, 3, 3, 3}, 0, 0.2, DType::f32, gen).requires_grad_();
  Tensor w2 = normal({10, 16 * 9 * 9}, 0, 0.02, DType::f32, gen).requires_grad_();
  Tensor target = randint(0, 10, {16}, gen);
  Tensor h = max_pool2d(relu(conv2d(x, w1)), {{2, 2}});
  Tensor logits = linear(flatten(h, 1), w2);
  Tensor loss = cross_entropy(logits, target);
  Tensor big = normal({300, 700}, 0, 1, DType::f32, gen).requires_grad_();
  Tensor big_loss = sum(matmul(big, transpose(big, 0, 1))) + sum(exp(mul(big, 0.01)));
  backward({loss, big_loss});
  std::vector<float> out = w1.grad().to_vector<float>();
  for (float v : w2.grad().to_vector<float>()) out.push_back(v);
  for (float v : big.grad().to_vector<float>()) out.push_back(v);
  out.push_back(loss.item<float>());
  out.push_back(big_loss.item<float>());
  return out;
}

}  // namespace

TEST_CASE("threads: identical results run to run, and for 1 and 2 threads") {
  int before = get_num_threads();
  set_num_threads(1);
  CHECK(get_num_threads() == 1);
  std::vector<float> one_a = step_result(), one_b = step_result();
  set_num_threads(2);
  std::vector<float> two_a = step_result(), two_b = step_result();
  set_num_threads(before);
  CHECK(one_a == one_b);
  CHECK(two_a == two_b);
  CHECK(one_a == two_a);
}

TEST_CASE("threads: set_num_threads clamps to at least one thread") {
  int before = get_num_threads();
  set_num_threads(0);
  CHECK(get_num_threads() == 1);
  set_num_threads(before);
  CHECK(get_num_threads() == before);
}
