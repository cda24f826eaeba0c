#pragma once
// One thread setting for the whole library: set_num_threads(n), or PLATEAU_NUM_THREADS at start-up
// (default: the number of cores). Work is split into chunks whose boundaries depend on the problem
// size only, never on the thread count, so results are identical for every thread count wherever
// each chunk's result is combined in a fixed order.
#include <cstdint>
#include <functional>

namespace plateau {

void set_num_threads(int n);
int get_num_threads();

// Calls fn(begin, end) over [0, n) in chunks of `grain` (the last one shorter), spread over the
// library's threads; returns when all are done. Runs inline when there is one chunk or one thread.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace plateau
