#include "backend/cpu/sample_cpu.h"

#include <cmath>
#include <limits>
#include <vector>

#include "engine/sampler.h"
#include "ops/sample_rng.h"

namespace stepaudio::cpu {

int32_t sample_row(const float* logits, int64_t V, const ops::SampleParams& p, uint8_t* presence,
                   int64_t step) {
  std::vector<float> z(logits, logits + V);
  if (p.repetition_penalty != 1.0f)
    for (int64_t i = 0; i < V; ++i)
      if (presence[i])
        z[i] = z[i] < 0.0f ? z[i] * p.repetition_penalty : z[i] / p.repetition_penalty;
  int32_t id = 0;
  if (p.greedy || p.temperature <= 0.0f) {
    id = argmax(z);
  } else {
    apply_temperature(z, p.temperature);
    apply_top_k(z, p.top_k);
    if (p.top_p < 1.0f) apply_top_p(z, p.top_p);
    double best = -std::numeric_limits<double>::infinity();
    bool any = false;
    for (int64_t i = 0; i < V; ++i) {
      if (!(z[i] > -std::numeric_limits<float>::infinity())) continue;  // removed (or NaN)
      const double g = -std::log(-std::log(ops::hash_uniform(p.seed, step, i)));
      const double key = static_cast<double>(z[i]) + g;
      if (!any || key > best) {
        best = key;
        id = static_cast<int32_t>(i);
        any = true;
      }
    }
    if (!any) id = argmax(z);
  }
  presence[id] = 1;
  return id;
}

}  // namespace stepaudio::cpu
