#include "data/loader.h"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "core/autograd/grad_mode.h"
#include "core/ops/factory.h"
#include "core/ops/random.h"
#include "data/keys.h"

namespace plateau::data {

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options, std::vector<Transform> transforms)
    : dataset_(std::move(dataset)), options_(options), transforms_(std::move(transforms)) {
  if (!dataset_) throw std::invalid_argument("plateau: DataLoader needs a dataset, got a null pointer");
  if (options_.batch_size < 1)
    throw std::invalid_argument("plateau: DataLoader batch_size must be >= 1, got " +
                                std::to_string(options_.batch_size));
  if (options_.prefetch_depth < 1)
    throw std::invalid_argument("plateau: DataLoader prefetch_depth must be >= 1, got " +
                                std::to_string(options_.prefetch_depth));
  for (size_t i = 0; i < transforms_.size(); ++i)
    if (!transforms_[i])
      throw std::invalid_argument("plateau: DataLoader transform " + std::to_string(i) + " is empty");
}

int64_t DataLoader::num_batches() const {
  int64_t n = dataset_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::order(int64_t epoch) const {
  if (epoch < 0) throw std::invalid_argument("plateau: DataLoader epoch must be >= 0, got " + std::to_string(epoch));
  int64_t n = dataset_->size();
  if (!options_.shuffle) {
    std::vector<int64_t> o(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) o[i] = i;
    return o;
  }
  Generator gen = shuffle_generator(options_.seed, epoch);
  return randperm(n, gen).to_vector<int64_t>();
}

Batch DataLoader::make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t number) const {
  int64_t begin = number * options_.batch_size;
  int64_t end = std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order.size()));
  std::vector<int64_t> indices(order.begin() + begin, order.begin() + end);
  Examples ex = dataset_->get_batch(indices);
  Batch b{ex.inputs, ex.labels, tensor(indices, {static_cast<int64_t>(indices.size())}), epoch, number};
  if (transforms_.empty() || indices.empty()) return b;
  // Each example goes through the transforms with its own generator; the results are stacked anew
  // because a transform may change the shape (all examples must agree).
  Shape example_shape(ex.inputs.shape().begin() + 1, ex.inputs.shape().end());
  size_t in_bytes = static_cast<size_t>(example_shape.numel()) * element_size(ex.inputs.dtype());
  Tensor out;
  size_t out_bytes = 0;
  for (size_t i = 0; i < indices.size(); ++i) {
    Tensor x = empty(example_shape, ex.inputs.dtype());
    std::memcpy(x.raw_data(), static_cast<const char*>(ex.inputs.raw_data()) + i * in_bytes, in_bytes);
    Generator gen = example_generator(options_.seed, epoch, indices[i]);
    for (const auto& t : transforms_) x = t(x, gen);
    x = x.contiguous();
    if (i == 0) {
      Shape shape = x.shape();
      shape.insert(0, static_cast<int64_t>(indices.size()));
      out = empty(shape, x.dtype());
      out_bytes = static_cast<size_t>(x.numel()) * element_size(x.dtype());
    }
    Shape want(out.shape().begin() + 1, out.shape().end());
    if (x.shape() != want || x.dtype() != out.dtype())
      throw std::runtime_error("plateau: DataLoader: the transforms made example " + std::to_string(indices[i]) + " " +
                               x.shape().str() + " " + dtype_name(x.dtype()) + " but example " +
                               std::to_string(indices[0]) + " " + want.str() + " " + dtype_name(out.dtype()) +
                               ": a batch needs equal shapes");
    std::memcpy(static_cast<char*>(out.raw_data()) + i * out_bytes, x.raw_data(), out_bytes);
  }
  b.inputs = out;
  return b;
}

Batch DataLoader::batch(int64_t epoch, int64_t number) const {
  if (number < 0 || number >= num_batches())
    throw std::out_of_range("plateau: DataLoader batch " + std::to_string(number) + " is out of range: an epoch has " +
                            std::to_string(num_batches()) + " batches");
  return make_batch(order(epoch), epoch, number);
}

EpochRange DataLoader::epoch(int64_t epoch, int64_t start) const { return EpochRange(*this, epoch, start); }

struct EpochRange::State {
  const DataLoader* loader;
  // Kept alive for the producer thread even if the caller drops its own references.
  std::shared_ptr<const Dataset> dataset;
  std::vector<int64_t> order;
  int64_t epoch, next, end;

  std::thread producer;
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Batch> queue;
  std::exception_ptr error;
  bool stop = false, finished = false;

  void produce() {
    NoGradGuard no_grad;
    for (int64_t k = next; k < end; ++k) {
      Batch b;
      std::exception_ptr failure;
      try {
        b = loader->make_batch(order, epoch, k);
      } catch (...) {
        failure = std::current_exception();
      }
      // Handed over after the catch block has ended, so the consumer holds the last reference.
      std::unique_lock<std::mutex> lock(mutex);
      if (failure) {
        error = std::move(failure);
        finished = true;
        changed.notify_all();
        return;
      }
      changed.wait(lock, [&] { return stop || static_cast<int64_t>(queue.size()) < loader->options_.prefetch_depth; });
      if (stop) return;
      queue.push_back(std::move(b));
      changed.notify_all();
    }
    std::lock_guard<std::mutex> lock(mutex);
    finished = true;
    changed.notify_all();
  }

  void shut_down() {
    if (!producer.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    changed.notify_all();
    producer.join();
  }
};

EpochRange::EpochRange(const DataLoader& loader, int64_t epoch, int64_t start) : state_(std::make_unique<State>()) {
  int64_t batches = loader.num_batches();
  if (start < 0 || start > batches)
    throw std::out_of_range("plateau: DataLoader cannot start epoch " + std::to_string(epoch) + " at batch " +
                            std::to_string(start) + ": an epoch has " + std::to_string(batches) + " batches");
  State& s = *state_;
  s.loader = &loader;
  s.dataset = loader.dataset_;
  s.order = loader.order(epoch);
  s.epoch = epoch;
  s.next = start;
  s.end = batches;
  if (loader.options_.prefetch && start < batches) s.producer = std::thread([&s] { s.produce(); });
}

EpochRange::~EpochRange() {
  if (state_) state_->shut_down();
}

EpochRange::EpochRange(EpochRange&&) noexcept = default;

EpochRange& EpochRange::operator=(EpochRange&& other) noexcept {
  if (this != &other) {
    if (state_) state_->shut_down();
    state_ = std::move(other.state_);
  }
  return *this;
}

std::optional<Batch> EpochRange::next() {
  if (!state_) return std::nullopt;
  State& s = *state_;
  if (!s.producer.joinable()) {
    if (s.next >= s.end) return std::nullopt;
    return s.loader->make_batch(s.order, s.epoch, s.next++);
  }
  std::unique_lock<std::mutex> lock(s.mutex);
  s.changed.wait(lock, [&] { return !s.queue.empty() || s.finished; });
  if (s.queue.empty()) {
    if (s.error) {
      std::exception_ptr e = s.error;
      s.error = nullptr;
      std::rethrow_exception(e);
    }
    return std::nullopt;
  }
  Batch b = std::move(s.queue.front());
  s.queue.pop_front();
  ++s.next;
  s.changed.notify_all();
  return b;
}

}  // namespace plateau::data
