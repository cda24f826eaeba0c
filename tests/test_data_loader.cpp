// Datasets, splits, the DataLoader (order, batches, prefetching, resuming) and the transforms.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <stdexcept>
#include <vector>

#include "helpers.h"
#include "plateau.h"

using namespace plateau;

namespace {

// n examples of shape [C, H, W] whose every element encodes (example, position): value = example + position/1000.
std::shared_ptr<data::TensorDataset> indexed_dataset(int64_t n, int64_t c = 2, int64_t h = 5, int64_t w = 6) {
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c * h * w; ++j) v.push_back(static_cast<float>(i) + static_cast<float>(j) / 1000.0f);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(i % 7);
  return std::make_shared<data::TensorDataset>(tensor(v, {n, c, h, w}), tensor(labels, {n}));
}

void check_equal(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  REQUIRE(a.dtype() == b.dtype());
  CHECK(a.to_vector<double>() == b.to_vector<double>());
}

void check_same_batches(std::vector<data::Batch> a, std::vector<data::Batch> b) {
  REQUIRE(a.size() == b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    check_equal(a[k].inputs, b[k].inputs);
    check_equal(a[k].labels, b[k].labels);
    check_equal(a[k].indices, b[k].indices);
    CHECK(a[k].number == b[k].number);
  }
}

std::vector<data::Batch> collect(data::EpochRange range) {
  std::vector<data::Batch> out;
  for (data::Batch b : range) out.push_back(b);
  return out;
}

}  // namespace

TEST_CASE("data: TensorDataset, Subset and select return the examples they index") {
  auto ds = indexed_dataset(10);
  CHECK(ds->size() == 10);
  data::Example e = ds->get(3);
  CHECK(e.label == 3);
  CHECK(e.input.shape() == Shape({2, 5, 6}));
  CHECK(e.input.to_vector<float>()[7] == doctest::Approx(3.007f));
  data::Examples b = ds->get_batch({9, 0, 9});
  CHECK(b.inputs.shape() == Shape({3, 2, 5, 6}));
  CHECK(b.labels.to_vector<int64_t>() == std::vector<int64_t>{2, 0, 2});
  CHECK(b.inputs.to_vector<float>()[60] == 0.0f);

  auto sub = data::subset(ds, {8, 2, 5});
  CHECK(sub->size() == 3);
  CHECK(sub->get(0).label == 1);  // example 8
  auto nested = data::subset(sub, {2, 0});
  CHECK(nested->get_batch({0, 1}).labels.to_vector<int64_t>() == std::vector<int64_t>{5, 1});
  CHECK(ds->select({4, 4}).labels().to_vector<int64_t>() == std::vector<int64_t>{4, 4});
  data::TensorDataset relabelled = ds->with_labels(zeros({10}, DType::i64));
  CHECK(relabelled.inputs().raw_data() == ds->inputs().raw_data());  // shared, not copied
  CHECK(relabelled.get(6).label == 0);
  // The generic get_batch (a dataset that only implements get) stacks get()'s examples.
  struct Squares : data::Dataset {
    int64_t size() const override { return 4; }
    data::Example get(int64_t i) const override { return {full({2}, static_cast<double>(i * i)), i}; }
  } squares;
  CHECK(squares.get_batch({3, 1}).inputs.to_vector<float>() == std::vector<float>{9, 9, 1, 1});

  testing::check_error([&] { ds->get(10); }, {"dataset index 10 is out of range for a dataset of 10 examples"});
  testing::check_error([&] { data::subset(ds, {1, 11}); }, {"Subset index 11 (position 1)"});
  testing::check_error([] { data::TensorDataset(zeros({3, 2}), zeros({4}, DType::i64)); }, {"3 inputs but 4 labels"});
  testing::check_error([] { data::TensorDataset(zeros({3, 2}), zeros({3})); }, {"labels must be a 1-D i64 tensor"});
}

TEST_CASE("data: random_split is seeded, disjoint and covering") {
  data::Split s = data::random_split(1000, 150, 42);
  CHECK(s.train.size() == 850);
  CHECK(s.val.size() == 150);
  CHECK(std::is_sorted(s.train.begin(), s.train.end()));
  CHECK(std::is_sorted(s.val.begin(), s.val.end()));
  std::vector<int64_t> all = s.train;
  all.insert(all.end(), s.val.begin(), s.val.end());
  std::sort(all.begin(), all.end());
  std::vector<int64_t> want(1000);
  std::iota(want.begin(), want.end(), 0);
  CHECK(all == want);  // disjoint and covering
  CHECK(data::random_split(1000, 150, 42).val == s.val);
  CHECK(data::random_split(1000, 150, 43).val != s.val);
  // Not a prefix or any fixed pattern: the validation set spreads over the range.
  CHECK(s.val.front() < 100);
  CHECK(s.val.back() > 900);
  auto parts = data::random_split(100, {70, 10, 20}, 1);
  CHECK(parts[0].size() == 70);
  CHECK(parts[2].size() == 20);
  std::set<int64_t> seen;
  for (auto& p : parts) seen.insert(p.begin(), p.end());
  CHECK(seen.size() == 100);
  auto views = data::train_val_split(indexed_dataset(20), 5, 3);
  CHECK(views.train->size() == 15);
  CHECK(views.val->indices() == data::random_split(20, 5, 3).val);
  testing::check_error([] { data::random_split(10, 11, 0); }, {"0 <= n_val <= n", "n_val 11 of 10"});
  testing::check_error([] { data::random_split(10, {3, 3}, 0); }, {"sizes sum to 6 but the dataset has 10"});
}

TEST_CASE("data: DataLoader epochs visit every example once, in an order fixed by (seed, epoch)") {
  auto ds = indexed_dataset(23);
  data::DataLoader loader(ds, {.batch_size = 5, .seed = 11});
  CHECK(loader.num_batches() == 5);
  CHECK(data::DataLoader(ds, {.batch_size = 5, .drop_last = true}).num_batches() == 4);
  std::vector<data::Batch> batches = collect(loader.epoch(2));
  REQUIRE(batches.size() == 5);
  CHECK(batches.back().labels.size(0) == 3);
  std::vector<int64_t> seen;
  for (const auto& b : batches) {
    std::vector<int64_t> idx = b.indices.to_vector<int64_t>(), lab = b.labels.to_vector<int64_t>();
    std::vector<float> in = b.inputs.to_vector<float>();
    for (size_t i = 0; i < idx.size(); ++i) {
      CHECK(lab[i] == idx[i] % 7);
      CHECK(in[i * 60 + 13] == doctest::Approx(static_cast<float>(idx[i]) + 0.013f));  // the example's own input
    }
    seen.insert(seen.end(), idx.begin(), idx.end());
  }
  CHECK(seen == loader.order(2));
  std::vector<int64_t> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> want(23);
  std::iota(want.begin(), want.end(), 0);
  CHECK(sorted == want);
  CHECK(seen != want);  // shuffled
  CHECK(loader.order(2) != loader.order(3));
  // The order of an epoch does not depend on earlier epochs or on the loader instance.
  data::DataLoader fresh(ds, {.batch_size = 5, .seed = 11});
  CHECK(fresh.order(2) == seen);
  CHECK(data::DataLoader(ds, {.batch_size = 5, .seed = 12}).order(2) != seen);
  CHECK(data::DataLoader(ds, {.batch_size = 5, .shuffle = false}).order(0) == want);
  // drop_last drops only the short batch.
  data::DataLoader dropping(ds, {.batch_size = 5, .drop_last = true, .seed = 11});
  auto dropped = collect(dropping.epoch(2));
  REQUIRE(dropped.size() == 4);
  check_same_batches(dropped, std::vector<data::Batch>(batches.begin(), batches.begin() + 4));
}

TEST_CASE("data: prefetching, resuming mid-epoch and the thread count leave the batches unchanged") {
  auto ds = indexed_dataset(37);
  std::vector<data::Transform> transforms = {data::random_crop(2), data::horizontal_flip(), data::cutout(3)};
  data::LoaderOptions on{.batch_size = 8, .seed = 5, .prefetch = true, .prefetch_depth = 3};
  data::LoaderOptions off = on;
  off.prefetch = false;
  data::DataLoader with(ds, on, transforms), without(ds, off, transforms);
  for (int64_t epoch : {0, 1, 4}) check_same_batches(collect(with.epoch(epoch)), collect(without.epoch(epoch)));

  // Starting at batch 3 gives the tail of the full epoch; batch() computes one directly.
  auto full = collect(with.epoch(1));
  auto tail = collect(with.epoch(1, 3));
  check_same_batches(tail, std::vector<data::Batch>(full.begin() + 3, full.end()));
  check_same_batches({without.batch(1, 4)}, {full[4]});
  CHECK(collect(with.epoch(1, with.num_batches())).empty());
  testing::check_error([&] { with.epoch(1, 6); }, {"cannot start epoch 1 at batch 6: an epoch has 5 batches"});

  // next()-style iteration, and leaving an epoch early (the producer thread is stopped).
  {
    data::EpochRange range = with.epoch(4);
    std::optional<data::Batch> first = range.next();
    REQUIRE(first.has_value());
    check_equal(first->inputs, without.batch(4, 0).inputs);
  }
  int old_threads = get_num_threads();
  set_num_threads(1);
  auto one = collect(with.epoch(0));
  set_num_threads(2);
  check_same_batches(one, collect(with.epoch(0)));
  set_num_threads(old_threads);

  // The transformed example is the transforms applied with example_generator(seed, epoch, index).
  data::Batch b = without.batch(4, 2);
  int64_t index = b.indices.to_vector<int64_t>()[1];
  Generator gen = data::example_generator(5, 4, index);
  Tensor manual = data::compose(transforms)(ds->get(index).input, gen);
  check_equal(reshape(slice(b.inputs, 0, 1, 2), {2, 5, 6}), manual);
}

TEST_CASE("data: an exception in a transform reaches the caller through the prefetch thread") {
  auto ds = indexed_dataset(12);
  int calls = 0;
  data::Transform failing = [&calls](const Tensor& x, Generator&) {
    if (++calls > 5) throw std::runtime_error("plateau: transform failed on purpose");
    return x;
  };
  data::DataLoader loader(ds, {.batch_size = 4, .seed = 1, .prefetch = true}, {failing});
  data::EpochRange range = loader.epoch(0);
  CHECK(range.next().has_value());
  CHECK_THROWS_WITH_AS(range.next(), doctest::Contains("transform failed on purpose"), std::runtime_error);
  CHECK_FALSE(range.next().has_value());
  // A transform that changes the shape of only some examples cannot be batched.
  data::Transform uneven = [](const Tensor& x, Generator& gen) {
    return data::draw_below(gen, 2) == 0 ? x : zeros({1});
  };
  testing::check_error([&] { data::DataLoader(ds, {.batch_size = 12, .prefetch = false}, {uneven}).batch(0, 0); },
                       {"a batch needs equal shapes"});
}

TEST_CASE("data: normalize, random_crop, horizontal_flip and cutout") {
  Generator unused(0);
  Tensor x = tensor(std::vector<float>{1, 2, 3, 4, 10, 20, 30, 40}, {2, 2, 2});
  CHECK(data::normalize({2, 20}, {0.5, 10})(x, unused).to_vector<float>() ==
        std::vector<float>{-2, 0, 2, 4, -1, 0, 1, 2});
  testing::check_error([&] { data::normalize({0}, {1})(x, unused); },
                       {"given 1 channels but the example is [2, 2, 2]"});
  testing::check_error([] { data::normalize({0}, {0}); }, {"std > 0"});

  // random_crop: the output is the input shifted by one (dy, dx) in [-p, p]², zero where it falls
  // outside; each shift is drawn uniformly.
  const int64_t h = 6, w = 7, p = 2, draws = 5000;
  std::vector<float> img(h * w);
  for (int64_t i = 0; i < h * w; ++i) img[i] = static_cast<float>(i + 1);
  Tensor image = tensor(img, {1, h, w});
  std::vector<int64_t> dy_count(2 * p + 1, 0);
  for (int64_t e = 0; e < draws; ++e) {
    Generator gen = data::example_generator(9, 0, e);
    std::vector<float> out = data::random_crop(p)(image, gen).to_vector<float>();
    bool matched = false;
    for (int64_t dy = -p; dy <= p && !matched; ++dy)
      for (int64_t dx = -p; dx <= p && !matched; ++dx) {
        bool ok = true;
        for (int64_t y = 0; y < h && ok; ++y)
          for (int64_t c = 0; c < w && ok; ++c) {
            bool inside = y + dy >= 0 && y + dy < h && c + dx >= 0 && c + dx < w;
            ok = out[y * w + c] == (inside ? img[(y + dy) * w + c + dx] : 0.0f);
          }
        if (ok) {
          matched = true;
          dy_count[dy + p]++;
        }
      }
    REQUIRE(matched);
  }
  double q = 1.0 / (2 * p + 1), se = std::sqrt(draws * q * (1 - q));
  for (int64_t c : dy_count) CHECK(std::abs(static_cast<double>(c) - draws * q) < 4 * se);

  // horizontal_flip: mirrored exactly, with probability p.
  int64_t flips = 0;
  for (int64_t e = 0; e < draws; ++e) {
    Generator gen = data::example_generator(9, 1, e);
    std::vector<float> out = data::horizontal_flip(0.3)(image, gen).to_vector<float>();
    bool mirrored = true, same = true;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t c = 0; c < w; ++c) {
        mirrored = mirrored && out[y * w + c] == img[y * w + (w - 1 - c)];
        same = same && out[y * w + c] == img[y * w + c];
      }
    REQUIRE(mirrored != same);
    flips += mirrored;
  }
  CHECK(std::abs(static_cast<double>(flips) - 0.3 * draws) < 4 * std::sqrt(draws * 0.3 * 0.7));

  // cutout: on ones, the zeros form the clipped square around a centre; the mean zeroed area
  // matches its exact expectation E[len_y]·E[len_x], the centre being uniform and the axes independent.
  const int64_t s = 4;
  Tensor ones_image = ones({3, h, w});
  auto clipped_length = [&](int64_t centre, int64_t size) {
    return std::clamp<int64_t>(centre + s / 2, 0, size) - std::clamp<int64_t>(centre - s / 2, 0, size);
  };
  double mean_y = 0, mean_x = 0;
  for (int64_t c = 0; c < h; ++c) mean_y += clipped_length(c, h) / static_cast<double>(h);
  for (int64_t c = 0; c < w; ++c) mean_x += clipped_length(c, w) / static_cast<double>(w);
  double area_sum = 0, area_sq = 0;
  for (int64_t e = 0; e < draws; ++e) {
    Generator gen = data::example_generator(9, 2, e);
    std::vector<float> out = data::cutout(s)(ones_image, gen).to_vector<float>();
    int64_t y0 = h, y1 = 0, x0 = w, x1 = 0, zeros_count = 0;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t c = 0; c < w; ++c)
        if (out[y * w + c] == 0.0f) {
          y0 = std::min(y0, y), y1 = std::max(y1, y + 1), x0 = std::min(x0, c), x1 = std::max(x1, c + 1);
          ++zeros_count;
        }
    REQUIRE(zeros_count == (y1 - y0) * (x1 - x0));  // a rectangle
    REQUIRE(y1 - y0 <= s);
    REQUIRE(x1 - x0 <= s);
    for (int64_t ch = 1; ch < 3; ++ch)  // every channel zeroed alike
      REQUIRE(std::equal(out.begin(), out.begin() + h * w, out.begin() + ch * h * w));
    area_sum += static_cast<double>(zeros_count);
    area_sq += static_cast<double>(zeros_count * zeros_count);
  }
  double mean = area_sum / draws, var = area_sq / draws - mean * mean;
  CHECK(std::abs(mean - mean_y * mean_x) < 4 * std::sqrt(var / draws));
  testing::check_error(
      [] {
        Generator g;
        data::cutout(2)(zeros({4, 4}), g);
      },
      {"cutout needs an f32 image of shape [C, H, W], got [4, 4]"});
}

TEST_CASE("data: a transform that runs parallel ops on the prefetch thread works beside the training thread") {
  // Both threads call parallel_for at once (2^18-element elementwise ops run in chunks on the pool);
  // the pool takes one job at a time, so neither job is corrupted.
  int old_threads = get_num_threads();
  set_num_threads(2);
  auto ds = indexed_dataset(16);
  data::Transform heavy = [](const Tensor& x, Generator&) {
    Tensor big = full({1 << 18}, 1.0) * 3.0;
    return x + (sum(big).item<double>() - 3.0 * (1 << 18));  // adds exactly 0 when the op was not corrupted
  };
  data::DataLoader with(ds, {.batch_size = 2, .seed = 3, .prefetch = true, .prefetch_depth = 4}, {heavy});
  data::DataLoader without(ds, {.batch_size = 2, .seed = 3, .prefetch = false}, {heavy});
  std::vector<data::Batch> got;
  for (data::Batch b : with.epoch(0)) {
    got.push_back(b);
    for (int i = 0; i < 5; ++i) CHECK(sum(full({1 << 18}, 2.0) * 0.5).item<double>() == (1 << 18));
  }
  check_same_batches(got, collect(without.epoch(0)));
  set_num_threads(old_threads);
}
