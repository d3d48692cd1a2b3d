// Thread-level parallelism for CPU kernels. OpenMP's pool is the thread pool: it is created once,
// reused by every parallel region, and sized by STEPAUDIO_THREADS / OMP_NUM_THREADS.
#pragma once
#include <cstdint>

#include <omp.h>

namespace stepaudio {

int num_threads();
void set_num_threads(int n);

// Calls fn(begin, end) on disjoint ranges covering [0, n). Runs inline for small n.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  if (n <= grain || num_threads() == 1) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t chunks = (n + grain - 1) / grain;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * grain;
    const int64_t e = b + grain < n ? b + grain : n;
    fn(b, e);
  }
}

}  // namespace stepaudio
