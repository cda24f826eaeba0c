#include "core/threads.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace plateau {

namespace {

// A fixed pool of workers that pull chunk numbers from a shared counter. Each job has its own
// counter and pending count: a worker still finishing one job's loop can then never take or count a
// chunk of the next (which made the pending count run negative, a hang, when two threads, the
// caller and the data loader's prefetcher, ran jobs back to back).
class ThreadPool {
 public:
  ~ThreadPool() { resize(1); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      ++generation_;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    stop_ = false;
    for (int i = 1; i < n; ++i) workers_.emplace_back([this] { work(); });
  }

  void run(int64_t chunks, const std::function<void(int64_t)>& chunk_fn) {
    // One job at a time: a second calling thread waits here for the pool.
    std::lock_guard<std::mutex> one_job(run_mutex_);
    auto job = std::make_shared<Job>(&chunk_fn, chunks);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      ++generation_;
    }
    wake_.notify_all();
    drain(*job);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return job->pending == 0; });
    job_.reset();
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  struct Job {
    Job(const std::function<void(int64_t)>* f, int64_t n) : fn(f), chunks(n), pending(n) {}
    const std::function<void(int64_t)>* fn;  // alive while chunks remain: run() waits for them
    int64_t chunks;
    std::atomic<int64_t> next{0};
    int64_t pending;  // chunks not finished, under the pool's mutex
    std::exception_ptr error;
  };

  void drain(Job& job) {
    for (;;) {
      int64_t c = job.next.fetch_add(1);
      if (c >= job.chunks) return;
      try {
        (*job.fn)(c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!job.error) job.error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      if (--job.pending == 0) done_.notify_all();
    }
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || (generation_ != seen && job_ != nullptr); });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      drain(*job);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::shared_ptr<Job> job_;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

int initial_threads() {
  if (const char* env = std::getenv("PLATEAU_NUM_THREADS")) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end == env || *end != '\0' || n < 1 || n > 4096)
      throw std::invalid_argument(std::string("plateau: PLATEAU_NUM_THREADS must be a positive integer, got '") + env +
                                  "'");
    return static_cast<int>(n);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

ThreadPool& pool() {
  static ThreadPool p;
  static bool started = (p.resize(initial_threads()), true);
  (void)started;
  return p;
}

thread_local bool inside_parallel_region = false;

}  // namespace

void set_num_threads(int n) {
  if (n < 1) n = 1;
  if (n != pool().size()) pool().resize(n);
}

int get_num_threads() { return pool().size(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks == 1 || inside_parallel_region || pool().size() == 1) {
    for (int64_t c = 0; c < chunks; ++c) fn(c * grain, std::min(n, (c + 1) * grain));
    return;
  }
  pool().run(chunks, [&](int64_t c) {
    inside_parallel_region = true;
    fn(c * grain, std::min(n, (c + 1) * grain));
    inside_parallel_region = false;
  });
}

}  // namespace plateau
