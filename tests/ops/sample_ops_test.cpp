// ops::sample_tokens on the CPU: HF's order of penalty, temperature, top-k and top-p; draws that
// follow the filtered softmax; seeds that reproduce.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "engine/sampler.h"
#include "ops/sample_ops.h"

namespace stepaudio {
namespace {

struct Row {
  Tensor logits, params, presence, steps, ids;
};

Row make_row(const std::vector<float>& logits, const ops::SampleParams& p) {
  const auto V = static_cast<int64_t>(logits.size());
  Row r;
  r.logits = Tensor::from_vector(logits, {1, V});
  r.params = ops::make_sample_params({p}, Device::cpu());
  r.presence = Tensor::zeros({1, V}, DType::U8);
  r.steps = Tensor::zeros({1}, DType::I64);
  r.ids = Tensor::zeros({1}, DType::I32);
  return r;
}

int32_t draw(Row& r) {
  ops::sample_tokens(r.logits, r.params, r.presence, r.steps, r.ids);
  return r.ids.data<int32_t>()[0];
}

TEST(SampleOps, GreedyIsArgmaxAfterPenalty) {
  std::vector<float> x{0.5f, 3.0f, 2.9f, -1.0f};
  ops::SampleParams p;
  p.repetition_penalty = 1.2f;
  Row r = make_row(x, p);
  EXPECT_EQ(draw(r), 1);
  EXPECT_EQ(r.presence.data<uint8_t>()[1], 1);  // marked: the penalty now applies to it
  EXPECT_EQ(draw(r), 2);                        // 3.0 / 1.2 < 2.9
  EXPECT_EQ(r.steps.data<int64_t>()[0], 2);
}

// Frequencies of many draws (different steps) against the filtered softmax of the CPU reference
// functions (apply_* of engine/sampler.h, HF semantics).
void check_distribution(const std::vector<float>& x, const ops::SampleParams& p) {
  std::vector<float> z = x;
  apply_temperature(z, p.temperature);
  apply_top_k(z, p.top_k);
  apply_top_p(z, p.top_p);
  const std::vector<double> want = softmax(z);
  const int n = 40000;
  std::vector<int> count(x.size(), 0);
  Row r = make_row(x, p);
  for (int i = 0; i < n; ++i) {
    r.presence = Tensor::zeros({1, static_cast<int64_t>(x.size())}, DType::U8);
    ++count[static_cast<size_t>(draw(r))];
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (want[i] == 0) {
      EXPECT_EQ(count[i], 0) << "token " << i << " was filtered out but drawn";
      continue;
    }
    const double sd = std::sqrt(n * want[i] * (1 - want[i]));
    EXPECT_NEAR(count[i], n * want[i], 5 * sd + 1) << "token " << i;
  }
}

TEST(SampleOps, DrawsFollowTheFilteredSoftmax) {
  const std::vector<float> x{1.0f, 2.0f, 0.5f, 2.5f, -1.0f, 0.0f, 1.5f, 3.0f};
  ops::SampleParams p;
  p.greedy = 0;
  p.seed = 7;
  check_distribution(x, p);
  p.temperature = 0.7f;
  check_distribution(x, p);
  p.top_k = 3;
  check_distribution(x, p);
  p.top_k = 0;
  p.top_p = 0.6f;
  check_distribution(x, p);
  p.top_k = 5;
  p.top_p = 0.8f;
  p.temperature = 1.3f;
  check_distribution(x, p);
}

TEST(SampleOps, SeedReproducesAndStepsDiffer) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> x(5000);
  for (float& v : x) v = nd(rng);
  ops::SampleParams p;
  p.greedy = 0;
  p.seed = 42;
  Row a = make_row(x, p), b = make_row(x, p);
  std::vector<int32_t> da, db;
  for (int i = 0; i < 20; ++i) da.push_back(draw(a)), db.push_back(draw(b));
  EXPECT_EQ(da, db);
  p.seed = 43;
  Row c = make_row(x, p);
  std::vector<int32_t> dc;
  for (int i = 0; i < 20; ++i) dc.push_back(draw(c));
  EXPECT_NE(da, dc);
  EXPECT_GT(std::set<int32_t>(da.begin(), da.end()).size(), 10u);  // varies over steps
  // The host helper is the same choice.
  std::vector<uint8_t> pres(x.size(), 0);
  p.seed = 42;
  EXPECT_EQ(ops::sample_row_host(x, p, pres, 0), da[0]);
}

TEST(SampleOps, BadParamsAndShapesFail) {
  ops::SampleParams p;
  p.top_p = 0;
  EXPECT_THROW(ops::make_sample_params({p}, Device::cpu()), Error);
  p = {};
  p.temperature = -1;
  EXPECT_THROW(ops::make_sample_params({p}, Device::cpu()), Error);
  Row r = make_row({1, 2, 3}, {});
  Tensor wrong = Tensor::zeros({1, 2}, DType::U8);
  EXPECT_THROW(ops::sample_tokens(r.logits, r.params, wrong, r.steps, r.ids), Error);
}

}  // namespace
}  // namespace stepaudio
