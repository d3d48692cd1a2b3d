#include "backend/cpu/norm_cpu.h"

#include <algorithm>
#include <cmath>

#include "core/parallel.h"

namespace stepaudio::cpu {

void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps,
                float* y) {
  parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const float* xr = x + r * n;
                   float* yr = y + r * n;
                   // Two passes in double: the mean and the variance are exact to f32 precision.
                   double mean = 0;
                   for (int64_t i = 0; i < n; ++i) mean += xr[i];
                   mean /= static_cast<double>(n);
                   double var = 0;
                   for (int64_t i = 0; i < n; ++i) var += (xr[i] - mean) * (xr[i] - mean);
                   var /= static_cast<double>(n);
                   const float m = static_cast<float>(mean);
                   const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
                   for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) * inv * w[i] + b[i];
                 }
               });
}

void rms_norm(const float* x, int64_t rows, int64_t n, const float* w, float eps, float* y) {
  parallel_for(
      rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const float* xr = x + r * n;
          float* yr = y + r * n;
          double ss = 0;
          for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
          const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
          for (int64_t i = 0; i < n; ++i) yr[i] = w[i] * (xr[i] * inv);
        }
      });
}

}  // namespace stepaudio::cpu
