#pragma once
// DataLoader: batches of a dataset in a seeded order, with per-example transforms and a background
// thread that prepares the next batches while the caller trains.
//
//   data::DataLoader loader(train, {.batch_size = 128, .seed = 7}, {data::random_crop(4), data::horizontal_flip()});
//   for (int64_t epoch = 0; epoch < epochs; ++epoch)
//     for (data::Batch b : loader.epoch(epoch)) train_step(b.inputs, b.labels);
//
// Determinism: epoch e's order comes from shuffle_generator(seed, e) and example i's transforms in
// epoch e from example_generator(seed, e, i) (data/keys.h). A batch is therefore a function of
// (seed, epoch, batch number) alone: identical with and without prefetching, on any thread count,
// and when a resumed run starts at batch k of epoch e.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"
#include "data/transforms.h"

namespace plateau::data {

struct Batch {
  Tensor inputs;   // [B, ...]
  Tensor labels;   // i64 [B]
  Tensor indices;  // i64 [B], the examples' indices in the dataset
  int64_t epoch = 0;
  int64_t number = 0;  // this batch's position in its epoch
};

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;  // drop a last batch smaller than batch_size
  uint64_t seed = 0;
  bool prefetch = true;        // prepare batches on a background thread
  int64_t prefetch_depth = 2;  // batches prepared ahead
};

class EpochRange;

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options, std::vector<Transform> transforms = {});

  // The batches of epoch `epoch`, starting at batch `start` (to resume a run mid-epoch).
  EpochRange epoch(int64_t epoch, int64_t start = 0) const;
  // Batch `number` of epoch `epoch`, computed on the calling thread.
  Batch batch(int64_t epoch, int64_t number) const;
  // The dataset indices of epoch `epoch`, in the order the batches take them.
  std::vector<int64_t> order(int64_t epoch) const;

  int64_t num_batches() const;
  const LoaderOptions& options() const { return options_; }
  const std::shared_ptr<const Dataset>& dataset() const { return dataset_; }

 private:
  friend class EpochRange;
  Batch make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t number) const;

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  std::vector<Transform> transforms_;
};

// One pass over an epoch's batches: `for (Batch b : range)` or `while (auto b = range.next())`. With
// prefetch on, a thread produces the batches into a queue of prefetch_depth; an exception there is
// rethrown by next(). Destroying the range stops the thread. The range keeps the loader's dataset and
// transforms alive, but the loader itself must outlive it.
class EpochRange {
 public:
  EpochRange(const DataLoader& loader, int64_t epoch, int64_t start);
  ~EpochRange();
  EpochRange(EpochRange&&) noexcept;
  EpochRange& operator=(EpochRange&&) noexcept;
  EpochRange(const EpochRange&) = delete;
  EpochRange& operator=(const EpochRange&) = delete;

  // The next batch, or nothing after the last.
  std::optional<Batch> next();

  class iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(EpochRange* range) : range_(range) { ++*this; }
    Batch& operator*() { return *current_; }
    iterator& operator++() {
      current_ = range_->next();
      return *this;
    }
    bool operator==(const iterator& o) const { return !current_.has_value() && !o.current_.has_value(); }

   private:
    EpochRange* range_ = nullptr;
    std::optional<Batch> current_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace plateau::data
