#include "core/parallel.h"

#include <cstdlib>

namespace stepaudio {

namespace {
int initial_threads() {
  if (const char* s = std::getenv("STEPAUDIO_THREADS")) {
    const int n = std::atoi(s);
    if (n > 0) {
      omp_set_num_threads(n);
      return n;
    }
  }
  return omp_get_max_threads();
}
}  // namespace

int num_threads() {
  static const int once = initial_threads();
  (void)once;
  return omp_get_max_threads();
}

void set_num_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
}

}  // namespace stepaudio
