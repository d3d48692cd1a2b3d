// Next-token selection with the semantics of Hugging Face transformers 4.49 `generate`, which the
// official Step-Audio 2 code uses: repetition penalty over every id seen so far (prompt included)
// -> temperature -> top-k -> top-p -> draw from the softmax. Greedy decoding applies only the
// repetition penalty and takes the argmax (first index on ties), as HF does with do_sample=False.
// The random source is a seeded 64-bit Mersenne twister, so a fixed seed reproduces a run.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace stepaudio {

struct SamplerConfig {
  bool greedy = true;
  float temperature = 1.0f;         // <= 0 means greedy
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // >= 1 = off
  float repetition_penalty = 1.0f;  // 1 = off
  uint64_t seed = 0;

  // Throws Error naming the field when a value is out of range (NaN, negative, top_p <= 0, ...).
  void validate() const;
  bool is_greedy() const { return greedy || temperature <= 0.0f; }
};

// The individual steps, in the order HF applies them. Each works in place on one row of logits;
// removed entries become -inf.

// For each distinct id in `seen`: logit < 0 ? logit * penalty : logit / penalty.
void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> seen,
                              float penalty);
void apply_temperature(std::span<float> logits, float temperature);
// Keeps every logit >= the k-th largest (ties at the boundary survive, as in HF).
void apply_top_k(std::span<float> logits, int k);
// Sorts ascending, removes the tokens whose cumulative probability is <= 1 - p, and always keeps
// the most likely one.
void apply_top_p(std::span<float> logits, float p);

// Index of the largest value; the first one on ties. NaN is never chosen over a number.
int32_t argmax(std::span<const float> logits);

// softmax(logits) in double; -inf gives exactly 0.
std::vector<double> softmax(std::span<const float> logits);

class Sampler {
 public:
  explicit Sampler(const SamplerConfig& cfg);

  const SamplerConfig& config() const { return cfg_; }

  // Picks the next id. `logits` is modified (penalised, filtered); `seen` is every id so far.
  int32_t next(std::span<float> logits, std::span<const int32_t> seen);

  // A uniform double in [0, 1) from 53 random bits (portable across standard libraries, unlike
  // std::uniform_real_distribution).
  double uniform();

 private:
  SamplerConfig cfg_;
  std::mt19937_64 rng_;
};

}  // namespace stepaudio
