#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace stepaudio {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}

void SamplerConfig::validate() const {
  if (!std::isfinite(temperature) || temperature < 0.0f)
    fail("sampling: temperature must be a finite number >= 0, found {}", temperature);
  if (top_k < 0) fail("sampling: top_k must be >= 0 (0 = off), found {}", top_k);
  if (!std::isfinite(top_p) || top_p <= 0.0f || top_p > 1.0f)
    fail("sampling: top_p must be in (0, 1], found {}", top_p);
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0.0f)
    fail("sampling: repetition_penalty must be a finite number > 0, found {}", repetition_penalty);
}

void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> seen,
                              float penalty) {
  if (penalty == 1.0f) return;
  // HF gathers the scores of all ids first and scatters them back, so an id that occurs many
  // times is penalised once; the mark vector does the same.
  std::vector<bool> done(logits.size(), false);
  for (int32_t id : seen) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size() || done[id]) continue;
    done[id] = true;
    float& x = logits[id];
    x = x < 0.0f ? x * penalty : x / penalty;
  }
}

void apply_temperature(std::span<float> logits, float temperature) {
  if (temperature == 1.0f) return;
  for (float& x : logits) x /= temperature;
}

void apply_top_k(std::span<float> logits, int k) {
  if (k <= 0 || static_cast<size_t>(k) >= logits.size()) return;
  // The k-th largest value through a min-heap of k entries: one pass, and for realistic k most
  // values are rejected by a single comparison with the heap's minimum.
  std::vector<float> heap(logits.begin(), logits.begin() + k);
  std::make_heap(heap.begin(), heap.end(), std::greater<float>());
  for (size_t i = static_cast<size_t>(k); i < logits.size(); ++i) {
    if (logits[i] > heap.front()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<float>());
      heap.back() = logits[i];
      std::push_heap(heap.begin(), heap.end(), std::greater<float>());
    }
  }
  const float kth = heap.front();
  for (float& x : logits)
    if (x < kth) x = kNegInf;
}

std::vector<double> softmax(std::span<const float> logits) {
  std::vector<double> p(logits.size(), 0.0);
  float mx = kNegInf;
  for (float x : logits) mx = std::max(mx, x);
  if (mx == kNegInf) return p;
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    p[i] = logits[i] == kNegInf ? 0.0 : static_cast<double>(std::exp(logits[i] - mx));
    sum += p[i];
  }
  for (double& v : p) v /= sum;
  return p;
}

void apply_top_p(std::span<float> logits, float p) {
  if (p >= 1.0f) return;
  // HF sorts ascending and removes the prefix whose cumulative probability is <= 1 - p. That
  // cumulative sum at a token equals 1 - (mass of the tokens ranked above it), so the same set is
  // found from the top: the cut is the first rank j > 0 where 1 - above(j) <= 1 - p. A full sort
  // of 158k entries costs ~10 ms per token, so the cut is located by quickselect (expected
  // linear time) and only a small window around it is sorted. Tokens already at -inf have
  // probability 0 and stay removed.
  std::vector<int32_t> idx;
  idx.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    if (logits[i] != kNegInf) idx.push_back(static_cast<int32_t>(i));
  if (idx.size() <= 1) return;
  const std::vector<double> prob = softmax(logits);
  // A strict total order (index breaks ties) so every step agrees on the ranking.
  auto higher = [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  };
  const double cut = 1.0 - static_cast<double>(p);
  // Invariant: idx[0, lo) rank above idx[lo, hi), idx[hi, n) rank below, `above` = mass of
  // idx[0, lo), and the cut lies in (lo, hi] (or there is none when hi == n).
  size_t lo = 0, hi = idx.size();
  double above = 0;
  while (hi - lo > 64) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(idx.begin() + lo, idx.begin() + mid, idx.begin() + hi, higher);
    double m = 0;
    for (size_t j = lo; j < mid; ++j) m += prob[idx[j]];
    if (1.0 - (above + m) <= cut) {
      hi = mid;
    } else {
      above += m;
      lo = mid;
    }
  }
  std::sort(idx.begin() + lo, idx.begin() + hi, higher);
  size_t keep = hi;
  for (size_t j = lo; j < hi; ++j) {
    if (j > 0 && 1.0 - above <= cut) {  // the most likely token always stays
      keep = j;
      break;
    }
    above += prob[idx[j]];
  }
  for (size_t j = keep; j < idx.size(); ++j) logits[idx[j]] = kNegInf;
}

int32_t argmax(std::span<const float> logits) {
  SA_CHECK(!logits.empty(), "argmax of an empty row");
  int32_t best = 0;
  float bv = logits[0];
  for (size_t i = 1; i < logits.size(); ++i) {
    // A NaN in front must not win: the first number after it replaces it.
    if (logits[i] > bv || (std::isnan(bv) && !std::isnan(logits[i]))) {
      bv = logits[i];
      best = static_cast<int32_t>(i);
    }
  }
  return best;
}

Sampler::Sampler(const SamplerConfig& cfg) : cfg_(cfg), rng_(cfg.seed) { cfg_.validate(); }

double Sampler::uniform() { return static_cast<double>(rng_() >> 11) * 0x1p-53; }

int32_t Sampler::next(std::span<float> logits, std::span<const int32_t> seen) {
  SA_CHECK(!logits.empty(), "sampling from an empty row");
  for (float x : logits)
    if (std::isnan(x)) fail("sampling: the model produced NaN logits (vocab {})", logits.size());
  apply_repetition_penalty(logits, seen, cfg_.repetition_penalty);
  if (cfg_.is_greedy()) return argmax(logits);
  apply_temperature(logits, cfg_.temperature);
  apply_top_k(logits, cfg_.top_k);
  apply_top_p(logits, cfg_.top_p);
  const std::vector<double> prob = softmax(logits);
  // Inverse CDF. The fallback (rounding left u above the total) is the last token with mass.
  const double u = uniform();
  double cum = 0;
  int32_t last = -1;
  for (size_t i = 0; i < prob.size(); ++i) {
    if (prob[i] <= 0.0) continue;
    last = static_cast<int32_t>(i);
    cum += prob[i];
    if (u < cum) return last;
  }
  if (last < 0) fail("sampling: every logit is -inf or NaN; nothing can be sampled");
  return last;
}

}  // namespace stepaudio
