// The batched decode step (Qwen2LM::decode_step, DecodeRunner) on the CPU against the
// single-sequence forward() path on tiny-a: sequences of different lengths in arbitrary cache
// slots give the logits and greedy ids that each would give alone.
#include <gtest/gtest.h>

#include "engine/decode_runner.h"
#include "model/llm.h"
#include "ops/decode_ops.h"
#include "tiny_model.h"

namespace stepaudio {
namespace {

using namespace testing_model;

const Qwen2LM& lm() {
  static const Qwen2LM m(tiny_checkpoint());
  return m;
}

std::vector<int32_t> prompt(size_t n, int32_t salt) {
  std::vector<int32_t> ids{151644, 8948};
  for (size_t i = 2; i < n; ++i) ids.push_back(static_cast<int32_t>((i * 7919 + salt) % 150000));
  return ids;
}

Tensor i32(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::I32);
  std::copy(v.begin(), v.end(), t.data<int32_t>());
  return t;
}

// Greedy continuation of one prompt through forward(): the logits of each step and the ids.
struct Ref {
  std::vector<Tensor> logits;
  std::vector<int32_t> ids;
};
Ref reference(const std::vector<int32_t>& p, int steps) {
  KVCache cache(lm().config(), static_cast<int64_t>(p.size()) + steps + 1);
  Ref r;
  Tensor lg = lm().forward(lm().embed(p), cache);
  for (int s = 0; s < steps; ++s) {
    const float* x = lg.data<float>();
    const int32_t id = static_cast<int32_t>(std::max_element(x, x + lg.numel()) - x);
    r.ids.push_back(id);
    lg = lm().forward(lm().embed(std::span<const int32_t>(&id, 1)), cache);
    r.logits.push_back(lg);
  }
  return r;
}

TEST(DecodeStep, BatchOfSequencesInSlotsMatchesForward) {
  const auto a = prompt(9, 1), b = prompt(23, 5), c = prompt(4, 11);
  const Ref ra = reference(a, 3), rb = reference(b, 3), rc = reference(c, 3);
  KVCache cache = lm().make_cache(40, 4);
  // Slots out of order, one left unused.
  const std::vector<int32_t> slot{3, 0, 1};
  const std::vector<const std::vector<int32_t>*> ps{&a, &b, &c};
  const std::vector<const Ref*> refs{&ra, &rb, &rc};
  std::vector<int32_t> pos, ids;
  for (size_t i = 0; i < 3; ++i) {
    lm().forward(lm().embed(*ps[i]), cache, false, nullptr, slot[i]);
    pos.push_back(static_cast<int32_t>(ps[i]->size()));
    ids.push_back(refs[i]->ids[0]);
  }
  Tensor positions = i32(pos), slots = i32(slot);
  for (int s = 0; s < 2; ++s) {
    Tensor logits = lm().decode_step(i32(ids), positions, slots, cache);
    ASSERT_EQ(logits.shape(), (Shape{3, lm().config().vocab_size}));
    for (size_t i = 0; i < 3; ++i) {
      SCOPED_TRACE(testing::Message() << "sequence " << i << " step " << s);
      const Tensor row = logits.slice_rows(static_cast<int64_t>(i), static_cast<int64_t>(i) + 1);
      EXPECT_LE(max_abs_diff(row, refs[i]->logits[static_cast<size_t>(s)]), 2e-5);
      ids[i] = refs[i]->ids[static_cast<size_t>(s) + 1];
    }
    ops::advance_positions(positions);
  }
  EXPECT_EQ(positions.data<int32_t>()[1], static_cast<int32_t>(b.size()) + 2);
}

TEST(DecodeStep, RunnerGreedyIdsMatchForward) {
  const auto a = prompt(12, 3), b = prompt(30, 9);
  const int steps = 6;
  const Ref ra = reference(a, steps + 1), rb = reference(b, steps + 1);
  KVCache cache = lm().make_cache(64, 2);
  lm().forward(lm().embed(a), cache, false, nullptr, 1);
  lm().forward(lm().embed(b), cache, false, nullptr, 0);
  DecodeRunner run(lm(), cache, 2);
  ops::SampleParams greedy;  // greedy by default
  run.set_row(0, 1, static_cast<int64_t>(a.size()), ra.ids[0], greedy, a, 1);
  run.set_row(1, 0, static_cast<int64_t>(b.size()), rb.ids[0], greedy, b, 1);
  for (int s = 1; s <= steps; ++s) {
    const std::vector<int32_t>& got = run.step();
    EXPECT_EQ(got[0], ra.ids[static_cast<size_t>(s)]) << "step " << s;
    EXPECT_EQ(got[1], rb.ids[static_cast<size_t>(s)]) << "step " << s;
  }
  EXPECT_EQ(cache.length(1), static_cast<int64_t>(a.size()) + steps);
  EXPECT_EQ(run.position(1), static_cast<int64_t>(b.size()) + steps);
}

TEST(DecodeStep, BadInputsFail) {
  KVCache cache = lm().make_cache(8, 1);
  EXPECT_THROW(lm().decode_step(i32({1}), i32({8}), i32({0}), cache), Error);  // no room
  EXPECT_THROW(lm().decode_step(i32({1}), i32({0}), i32({1}), cache), Error);  // no slot 1
  EXPECT_THROW(lm().decode_step(i32({-1}), i32({0}), i32({0}), cache), Error);
  EXPECT_THROW(DecodeRunner(lm(), cache, 2), Error);  // more rows than slots
  KVCache other(lm().config(), 8, Device::cpu(), DType::F32, 1);
  DecodeRunner run(lm(), other, 1);
  EXPECT_THROW(run.set_row(0, 0, 8, 1, {}, {}, 0), Error);  // position past the end
}

}  // namespace
}  // namespace stepaudio
