#include "data/dataset.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/ops/ops.h"
#include "data/keys.h"

namespace plateau::data {

namespace {

// Copies rows `indices` of a contiguous [N, ...] tensor into a new [B, ...] tensor. Plain memcpy:
// this runs on the prefetch thread, so it stays off the library's thread pool.
Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& indices) {
  Shape shape = t.shape();
  shape[0] = static_cast<int64_t>(indices.size());
  Tensor out = empty(shape, t.dtype());
  size_t row_bytes = static_cast<size_t>(t.numel() / std::max<int64_t>(t.size(0), 1)) * element_size(t.dtype());
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (size_t i = 0; i < indices.size(); ++i)
    std::memcpy(dst + i * row_bytes, src + static_cast<size_t>(indices[i]) * row_bytes, row_bytes);
  return out;
}

}  // namespace

void Dataset::check_index(int64_t index) const {
  if (index < 0 || index >= size())
    throw std::out_of_range("plateau: dataset index " + std::to_string(index) + " is out of range for a dataset of " +
                            std::to_string(size()) + " examples");
}

Examples Dataset::get_batch(const std::vector<int64_t>& indices) const {
  Examples out;
  out.labels = empty({static_cast<int64_t>(indices.size())}, DType::i64);
  int64_t* labels = out.labels.data<int64_t>();
  size_t row_bytes = 0;
  for (size_t i = 0; i < indices.size(); ++i) {
    Example e = get(indices[i]);
    Tensor x = e.input.contiguous();
    if (i == 0) {
      Shape shape = x.shape();
      shape.insert(0, static_cast<int64_t>(indices.size()));
      out.inputs = empty(shape, x.dtype());
      row_bytes = static_cast<size_t>(x.numel()) * element_size(x.dtype());
    }
    Shape want(out.inputs.shape().begin() + 1, out.inputs.shape().end());
    if (x.shape() != want || x.dtype() != out.inputs.dtype())
      throw std::invalid_argument("plateau: Dataset::get_batch: example " + std::to_string(indices[i]) + " has shape " +
                                  x.shape().str() + " " + dtype_name(x.dtype()) + ", but example " +
                                  std::to_string(indices[0]) + " has " + want.str() + " " +
                                  dtype_name(out.inputs.dtype()) + ": a batch needs equal shapes");
    std::memcpy(static_cast<char*>(out.inputs.raw_data()) + i * row_bytes, x.raw_data(), row_bytes);
    labels[i] = e.label;
  }
  if (indices.empty()) out.inputs = empty({0});
  return out;
}

TensorDataset::TensorDataset(Tensor inputs, Tensor labels) {
  if (!inputs.defined() || !labels.defined())
    throw std::invalid_argument("plateau: TensorDataset needs defined inputs and labels tensors");
  if (inputs.dim() < 1)
    throw std::invalid_argument("plateau: TensorDataset inputs must have a leading example dimension, got shape " +
                                inputs.shape().str());
  if (labels.dim() != 1 || labels.dtype() != DType::i64)
    throw std::invalid_argument("plateau: TensorDataset labels must be a 1-D i64 tensor, got shape " +
                                labels.shape().str() + " " + dtype_name(labels.dtype()));
  if (labels.size(0) != inputs.size(0))
    throw std::invalid_argument("plateau: TensorDataset has " + std::to_string(inputs.size(0)) + " inputs but " +
                                std::to_string(labels.size(0)) + " labels");
  inputs_ = inputs.detach().contiguous();
  labels_ = labels.detach().contiguous();
}

Example TensorDataset::get(int64_t index) const {
  check_index(index);
  Examples one = get_batch({index});
  Shape shape(one.inputs.shape().begin() + 1, one.inputs.shape().end());
  return {reshape(one.inputs, shape), labels_.data<int64_t>()[index]};
}

Examples TensorDataset::get_batch(const std::vector<int64_t>& indices) const {
  for (int64_t i : indices) check_index(i);
  return {gather_rows(inputs_, indices), gather_rows(labels_, indices)};
}

TensorDataset TensorDataset::select(const std::vector<int64_t>& indices) const {
  Examples e = get_batch(indices);
  return TensorDataset(e.inputs, e.labels);
}

Subset::Subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
  if (!base_) throw std::invalid_argument("plateau: Subset needs a dataset, got a null pointer");
  for (size_t i = 0; i < indices_.size(); ++i)
    if (indices_[i] < 0 || indices_[i] >= base_->size())
      throw std::out_of_range("plateau: Subset index " + std::to_string(indices_[i]) + " (position " +
                              std::to_string(i) + ") is out of range for a dataset of " +
                              std::to_string(base_->size()) + " examples");
}

Example Subset::get(int64_t index) const {
  check_index(index);
  return base_->get(indices_[index]);
}

Examples Subset::get_batch(const std::vector<int64_t>& indices) const {
  std::vector<int64_t> mapped(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    check_index(indices[i]);
    mapped[i] = indices_[indices[i]];
  }
  return base_->get_batch(mapped);
}

std::shared_ptr<Subset> subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices) {
  return std::make_shared<Subset>(std::move(base), std::move(indices));
}

std::vector<std::vector<int64_t>> random_split(int64_t n, const std::vector<int64_t>& sizes, uint64_t seed) {
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw std::invalid_argument("plateau: random_split sizes must be >= 0, got " + std::to_string(s));
    total += s;
  }
  if (total != n)
    throw std::invalid_argument("plateau: random_split sizes sum to " + std::to_string(total) +
                                " but the dataset has " + std::to_string(n) + " examples");
  Generator gen(seed, stream_key(KeyDomain::split, static_cast<uint64_t>(n)));
  std::vector<int64_t> perm = randperm(n, gen).to_vector<int64_t>();
  std::vector<std::vector<int64_t>> parts;
  int64_t start = 0;
  for (int64_t s : sizes) {
    std::vector<int64_t> part(perm.begin() + start, perm.begin() + start + s);
    std::sort(part.begin(), part.end());
    parts.push_back(std::move(part));
    start += s;
  }
  return parts;
}

Split random_split(int64_t n, int64_t n_val, uint64_t seed) {
  if (n_val < 0 || n_val > n)
    throw std::invalid_argument("plateau: random_split needs 0 <= n_val <= n, got n_val " + std::to_string(n_val) +
                                " of " + std::to_string(n));
  auto parts = random_split(n, {n - n_val, n_val}, seed);
  return {std::move(parts[0]), std::move(parts[1])};
}

SplitDatasets train_val_split(std::shared_ptr<const Dataset> dataset, int64_t n_val, uint64_t seed) {
  if (!dataset) throw std::invalid_argument("plateau: train_val_split needs a dataset, got a null pointer");
  Split s = random_split(dataset->size(), n_val, seed);
  return {subset(dataset, std::move(s.train)), subset(dataset, std::move(s.val))};
}

}  // namespace plateau::data
