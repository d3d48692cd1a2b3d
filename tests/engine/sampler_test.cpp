#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "engine/sampler.h"

using namespace stepaudio;

namespace {
constexpr float kInf = std::numeric_limits<float>::infinity();

// Draws n ids and returns the observed frequency of each.
std::vector<int> draw(const SamplerConfig& cfg, const std::vector<float>& logits, int n,
                      const std::vector<int32_t>& seen = {}) {
  Sampler s(cfg);
  std::vector<int> count(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    std::vector<float> row = logits;
    int32_t id = s.next(row, seen);
    EXPECT_GE(id, 0);
    EXPECT_LT(id, static_cast<int32_t>(logits.size()));
    count[id]++;
  }
  return count;
}

// Pearson chi-square of observed counts against expected probabilities. Categories with zero
// expected probability must never be drawn.
double chi_square(const std::vector<int>& count, const std::vector<double>& expect, int n) {
  double chi = 0;
  for (size_t i = 0; i < count.size(); ++i) {
    if (expect[i] == 0.0) {
      EXPECT_EQ(count[i], 0) << "token " << i << " has probability 0 but was drawn";
      continue;
    }
    const double e = expect[i] * n;
    chi += (count[i] - e) * (count[i] - e) / e;
  }
  return chi;
}

// exp(x) normalised over the listed indices only; others 0. Written independently of the library.
std::vector<double> dist(const std::vector<double>& x, const std::vector<int>& keep) {
  std::vector<double> p(x.size(), 0.0);
  double sum = 0;
  for (int i : keep) sum += std::exp(x[i]);
  for (int i : keep) p[i] = std::exp(x[i]) / sum;
  return p;
}
}  // namespace

TEST(Sampler, ArgmaxTakesFirstOnTies) {
  EXPECT_EQ(argmax(std::vector<float>{1, 3, 3, 2}), 1);
  EXPECT_EQ(argmax(std::vector<float>{5, 5, 5}), 0);
  EXPECT_EQ(argmax(std::vector<float>{-kInf, -1, -1}), 1);
  EXPECT_EQ(argmax(std::vector<float>{NAN, 0.5f, 2.0f, 2.0f}), 2);
}

TEST(Sampler, GreedyIsArgmaxAndIgnoresTemperatureAndFilters) {
  SamplerConfig cfg;
  cfg.greedy = true;
  cfg.temperature = 0.3f;
  cfg.top_k = 1;
  cfg.top_p = 0.1f;
  Sampler s(cfg);
  std::vector<float> row{0.1f, 2.0f, 2.0f, -1.0f};
  EXPECT_EQ(s.next(row, {}), 1);
  // temperature 0 without the greedy flag is greedy too (the CLI's --temp 0)
  SamplerConfig t0;
  t0.greedy = false;
  t0.temperature = 0.0f;
  Sampler s0(t0);
  for (int i = 0; i < 20; ++i) {
    std::vector<float> r{0.1f, 2.0f, 2.0f, -1.0f};
    EXPECT_EQ(s0.next(r, {}), 1);
  }
}

TEST(Sampler, RepetitionPenaltyNumbers) {
  std::vector<float> row{2.0f, -2.0f, 0.5f, -0.5f, 1.0f, 0.0f};
  // id 1 appears twice but is penalised once; ids out of range are ignored
  std::vector<int32_t> seen{0, 1, 1, 3, 5, 99, -4};
  apply_repetition_penalty(row, seen, 2.0f);
  EXPECT_FLOAT_EQ(row[0], 1.0f);
  EXPECT_FLOAT_EQ(row[1], -4.0f);
  EXPECT_FLOAT_EQ(row[2], 0.5f);
  EXPECT_FLOAT_EQ(row[3], -1.0f);
  EXPECT_FLOAT_EQ(row[4], 1.0f);
  EXPECT_FLOAT_EQ(row[5], 0.0f);

  std::vector<float> r2{1.05f, -1.05f};
  apply_repetition_penalty(r2, std::vector<int32_t>{0, 1}, 1.05f);
  EXPECT_FLOAT_EQ(r2[0], 1.0f);
  EXPECT_FLOAT_EQ(r2[1], -1.05f * 1.05f);
}

TEST(Sampler, GreedyAppliesRepetitionPenaltyFirst) {
  // As in HF with do_sample=False: the penalty is a logits processor, so it changes the argmax.
  SamplerConfig cfg;
  cfg.repetition_penalty = 1.5f;
  Sampler s(cfg);
  std::vector<float> row{3.0f, 2.5f, 1.0f};
  EXPECT_EQ(s.next(row, std::vector<int32_t>{0}), 1);  // 3 / 1.5 = 2 < 2.5
}

TEST(Sampler, TopKKeepsBoundaryTies) {
  std::vector<float> row{1, 5, 3, 4, 2};
  apply_top_k(row, 2);
  EXPECT_EQ(row, (std::vector<float>{-kInf, 5, -kInf, 4, -kInf}));
  std::vector<float> ties{1, 3, 3, 2};
  apply_top_k(ties, 1);
  EXPECT_EQ(ties, (std::vector<float>{-kInf, 3, 3, -kInf}));
  std::vector<float> all{1, 2};
  apply_top_k(all, 5);  // k >= vocab: nothing removed
  EXPECT_EQ(all, (std::vector<float>{1, 2}));
}

TEST(Sampler, TopPCutRule) {
  // probabilities 0.1 0.2 0.3 0.4, given as logits in shuffled order
  const std::vector<float> base{std::log(0.3f), std::log(0.1f), std::log(0.4f), std::log(0.2f)};
  auto kept = [&](float p) {
    std::vector<float> r = base;
    apply_top_p(r, p);
    std::vector<int> k;
    for (size_t i = 0; i < r.size(); ++i)
      if (r[i] != -kInf) k.push_back(static_cast<int>(i));
    return k;
  };
  // ascending cumulative: 0.1, 0.3, 0.6, 1.0; removed where <= 1 - p
  EXPECT_EQ(kept(0.95f), (std::vector<int>{0, 1, 2, 3}));  // cut 0.05: 0.1 > 0.05, none removed
  EXPECT_EQ(kept(0.85f), (std::vector<int>{0, 2, 3}));     // cut 0.15: removes 0.1
  EXPECT_EQ(kept(0.65f), (std::vector<int>{0, 2}));        // cut 0.35: removes 0.1, 0.2
  EXPECT_EQ(kept(0.35f), (std::vector<int>{2}));           // cut 0.65: removes 0.1, 0.2, 0.3
  EXPECT_EQ(kept(0.01f), (std::vector<int>{2}));           // always at least the most likely
  EXPECT_EQ(kept(1.0f), (std::vector<int>{0, 1, 2, 3}));
}

TEST(Sampler, ValidateRejectsBadValues) {
  auto bad = [](auto edit) {
    SamplerConfig c;
    edit(c);
    EXPECT_THROW(Sampler{c}, Error);
  };
  bad([](SamplerConfig& c) { c.temperature = -1; });
  bad([](SamplerConfig& c) { c.temperature = NAN; });
  bad([](SamplerConfig& c) { c.top_k = -3; });
  bad([](SamplerConfig& c) { c.top_p = 0; });
  bad([](SamplerConfig& c) { c.top_p = 1.5f; });
  bad([](SamplerConfig& c) { c.repetition_penalty = 0; });
  SamplerConfig ok;
  EXPECT_NO_THROW(Sampler{ok});
}

TEST(Sampler, NanLogitsAreAnError) {
  SamplerConfig cfg;
  cfg.greedy = false;
  Sampler s(cfg);
  std::vector<float> row{0.0f, NAN};
  EXPECT_THROW(s.next(row, {}), Error);
}

// Statistical checks: 200k draws, chi-square against the exact distribution. The critical values
// are far in the tail (p < 1e-6 for the degrees of freedom used), so a correct sampler passes
// with certainty for practical purposes, while a wrong filter or temperature is off by thousands.
constexpr int kDraws = 200000;

TEST(SamplerStats, PlainSoftmax) {
  const std::vector<float> logits{0.5f, -1.0f, 2.0f, 0.0f, 1.0f};
  const std::vector<double> x{0.5, -1.0, 2.0, 0.0, 1.0};
  SamplerConfig cfg;
  cfg.greedy = false;
  cfg.seed = 7;
  auto count = draw(cfg, logits, kDraws);
  EXPECT_LT(chi_square(count, dist(x, {0, 1, 2, 3, 4}), kDraws), 35.0);  // df 4
}

TEST(SamplerStats, Temperature) {
  const std::vector<float> logits{0.5f, -1.0f, 2.0f, 0.0f, 1.0f};
  SamplerConfig cfg;
  cfg.greedy = false;
  cfg.temperature = 0.5f;
  cfg.seed = 11;
  auto count = draw(cfg, logits, kDraws);
  const std::vector<double> x{1.0, -2.0, 4.0, 0.0, 2.0};
  EXPECT_LT(chi_square(count, dist(x, {0, 1, 2, 3, 4}), kDraws), 35.0);
  // and a clearly different temperature must fail the same check
  const std::vector<double> wrong{0.5, -1.0, 2.0, 0.0, 1.0};
  EXPECT_GT(chi_square(count, dist(wrong, {0, 1, 2, 3, 4}), kDraws), 1000.0);
}

TEST(SamplerStats, TopK) {
  const std::vector<float> logits{0.5f, -1.0f, 2.0f, 0.0f, 1.0f, 1.5f};
  SamplerConfig cfg;
  cfg.greedy = false;
  cfg.top_k = 3;
  cfg.temperature = 2.0f;
  cfg.seed = 3;
  auto count = draw(cfg, logits, kDraws);
  const std::vector<double> x{0.25, -0.5, 1.0, 0.0, 0.5, 0.75};
  EXPECT_LT(chi_square(count, dist(x, {2, 4, 5}), kDraws), 30.0);  // df 2
}

TEST(SamplerStats, TopP) {
  // probabilities 0.05 0.15 0.2 0.25 0.35; top_p 0.7 -> cut 0.3: ascending cumulative
  // 0.05, 0.2, 0.4, ... removes the first two.
  const std::vector<float> logits{std::log(0.2f), std::log(0.05f), std::log(0.35f), std::log(0.15f),
                                  std::log(0.25f)};
  SamplerConfig cfg;
  cfg.greedy = false;
  cfg.top_p = 0.7f;
  cfg.seed = 5;
  auto count = draw(cfg, logits, kDraws);
  const std::vector<double> x{std::log(0.2), std::log(0.05), std::log(0.35), std::log(0.15),
                              std::log(0.25)};
  EXPECT_LT(chi_square(count, dist(x, {0, 2, 4}), kDraws), 30.0);
}

TEST(SamplerStats, AllStagesInHfOrder) {
  // penalty 1.3 on ids 0 and 1 -> temperature 0.7 -> top-k 4 -> top-p 0.8
  const std::vector<float> logits{2.6f, -0.65f, 1.5f, 1.0f, 0.2f, -3.0f, 1.2f};
  SamplerConfig cfg;
  cfg.greedy = false;
  cfg.repetition_penalty = 1.3f;
  cfg.temperature = 0.7f;
  cfg.top_k = 4;
  cfg.top_p = 0.8f;
  cfg.seed = 42;
  auto count = draw(cfg, logits, kDraws, {0, 1, 0});
  // Penalised logits: 2.0, -0.845, 1.5, 1.0, 0.2, -3.0, 1.2 -> /0.7 -> top-4 keeps ids 0, 2, 3, 6.
  std::vector<double> x{2.0 / 0.7, -0.845 / 0.7, 1.5 / 0.7, 1.0 / 0.7,
                        0.2 / 0.7, -3.0 / 0.7,   1.2 / 0.7};
  // Probabilities over {0, 2, 3, 6}; ascending order 3, 6, 2, 0.
  std::vector<double> p4 = dist(x, {0, 2, 3, 6});
  const double cut = 1.0 - 0.8;
  ASSERT_LE(p4[3], cut);          // id 3 removed by top-p
  ASSERT_GT(p4[3] + p4[6], cut);  // id 6 kept
  auto count_expect = dist(x, {0, 2, 6});
  EXPECT_LT(chi_square(count, count_expect, kDraws), 30.0);
}

TEST(Sampler, SeedReproducesAndDiffers) {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = std::sin(i * 0.37f) * 2.0f;
  auto run = [&](uint64_t seed) {
    SamplerConfig cfg;
    cfg.greedy = false;
    cfg.top_p = 0.95f;
    cfg.seed = seed;
    Sampler s(cfg);
    std::vector<int32_t> ids;
    for (int i = 0; i < 64; ++i) {
      std::vector<float> row = logits;
      ids.push_back(s.next(row, ids));
    }
    return ids;
  };
  EXPECT_EQ(run(1234), run(1234));
  EXPECT_NE(run(1234), run(1235));
}

TEST(Sampler, FullVocabularyTopP) {
  // The real vocabulary size: one dominant token plus a long flat tail.
  std::vector<float> logits(158720, 0.0f);
  logits[151665] = 20.0f;  // p ~ 0.997
  SamplerConfig cfg;
  cfg.greedy = false;
  cfg.top_p = 0.9f;
  cfg.top_k = 50;
  Sampler s(cfg);
  for (int i = 0; i < 5; ++i) {
    std::vector<float> row = logits;
    EXPECT_EQ(s.next(row, {}), 151665);
  }
}
