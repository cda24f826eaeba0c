#pragma once
// Datasets: indexed collections of (input, label) examples, TensorDataset over in-memory tensors,
// index-list views (Subset) and seeded train/validation splits.
//
//   auto mnist = std::make_shared<data::TensorDataset>(data::mnist_test_set());
//   data::Split split = data::random_split(mnist->size(), 1000, /*seed=*/0);
//   auto train = data::subset(mnist, split.train), val = data::subset(mnist, split.val);
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace plateau::data {

struct Example {
  Tensor input;
  int64_t label = 0;
};

// A batch of examples stacked along a new dimension 0: inputs [B, ...], labels [B] (i64).
struct Examples {
  Tensor inputs;
  Tensor labels;
};

// An indexed collection of examples. get() and get_batch() are const and may be called from the
// loader's prefetch thread while the caller trains: an implementation must not change shared state.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t index) const = 0;
  // The examples at `indices`, stacked. The default calls get() for each; every input must have the
  // same shape and dtype.
  virtual Examples get_batch(const std::vector<int64_t>& indices) const;

 protected:
  // Throws naming the index and the size when index is outside [0, size()).
  void check_index(int64_t index) const;
};

// Examples held as two tensors: inputs [N, ...] (any dtype) and labels [N] (i64).
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor inputs, Tensor labels);

  int64_t size() const override { return inputs_.size(0); }
  Example get(int64_t index) const override;
  Examples get_batch(const std::vector<int64_t>& indices) const override;

  const Tensor& inputs() const { return inputs_; }
  const Tensor& labels() const { return labels_; }
  // The same inputs (shared, not copied) with other labels: noisy labels, relabelled subsets.
  TensorDataset with_labels(Tensor labels) const { return TensorDataset(inputs_, std::move(labels)); }
  // A copy holding only the examples at `indices`, in that order.
  TensorDataset select(const std::vector<int64_t>& indices) const;

 private:
  Tensor inputs_;  // contiguous
  Tensor labels_;  // contiguous i64
};

// A view of another dataset through an index list: example i is base[indices[i]]. Nothing is copied.
class Subset : public Dataset {
 public:
  Subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices);

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example get(int64_t index) const override;
  Examples get_batch(const std::vector<int64_t>& indices) const override;

  const std::vector<int64_t>& indices() const { return indices_; }
  const std::shared_ptr<const Dataset>& base() const { return base_; }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
};

std::shared_ptr<Subset> subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices);

// A seeded partition of [0, n) into a training part and a validation part: disjoint, covering, each
// in increasing order, and a function of (n, n_val, seed) only.
struct Split {
  std::vector<int64_t> train;
  std::vector<int64_t> val;
};
Split random_split(int64_t n, int64_t n_val, uint64_t seed);
// The general form: parts of the given sizes (summing to n), each in increasing order. The first
// part of random_split(n, {n - v, v}, seed) is not random_split(n, v, seed).train: use one form.
std::vector<std::vector<int64_t>> random_split(int64_t n, const std::vector<int64_t>& sizes, uint64_t seed);

// The training and validation views of `dataset` carved by random_split(dataset->size(), n_val, seed).
struct SplitDatasets {
  std::shared_ptr<Subset> train;
  std::shared_ptr<Subset> val;
};
SplitDatasets train_val_split(std::shared_ptr<const Dataset> dataset, int64_t n_val, uint64_t seed);

}  // namespace plateau::data
