// Speech out beside the LLM on one GPU: BackgroundSpeech runs token2wav on a worker thread (its
// own default stream) while this thread replays decode-step graphs. Both must give what they give
// alone: the same ids, the same samples (the caching allocator keeps each thread's freed blocks
// to that thread, so neither stream can be handed memory the other still uses).
#include <gtest/gtest.h>

#include "../token2wav/t2w_test_util.h"
#include "engine/decode_runner.h"
#include "model/llm.h"
#include "stepaudio/speech_background.h"
#include "tiny_model.h"

namespace stepaudio {
namespace {

std::vector<int32_t> tiny_prompt(size_t n) {
  std::vector<int32_t> ids{151644, 8948};
  for (size_t i = 2; i < n; ++i) ids.push_back(static_cast<int32_t>((i * 7919 + 5) % 150000));
  return ids;
}

// `steps` sampled decode steps of two rows (graph replay), calling between(s) after each.
template <typename F>
std::vector<int32_t> decode(const Qwen2LM& lm, int steps, F&& between) {
  const auto a = tiny_prompt(9), b = tiny_prompt(25);
  KVCache cache = lm.make_cache(steps + 32, 2);
  lm.forward(lm.embed(a), cache, false, nullptr, 0);
  lm.forward(lm.embed(b), cache, false, nullptr, 1);
  DecodeRunner run(lm, cache, 2, true);
  ops::SampleParams p;
  p.temperature = 0.9f;
  p.top_k = 40;
  p.seed = 11;
  run.set_row(0, 0, static_cast<int64_t>(a.size()), 5, p, a, 1);
  p.seed = 12;
  run.set_row(1, 1, static_cast<int64_t>(b.size()), 7, p, b, 1);
  std::vector<int32_t> out;
  for (int s = 0; s < steps; ++s) {
    const auto& ids = run.step();
    out.insert(out.end(), ids.begin(), ids.end());
    between(s);
  }
  return out;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1));
}

TEST(SpeechOverlapCuda, DecodeAndSpeechOnTwoThreadsMatchEachAlone) {
  ASSERT_TRUE(cuda_available());
  t2w_test::TempDir dir("t2w_overlap");
  save_voice((dir / "voice.safetensors").string(), t2w_test::golden_voice());
  Speaker sp = Speaker::load(t2w_test::golden_dir().string(), (dir / "voice.safetensors").string(),
                             {.device = Device::cuda(0), .seed = 5});
  std::vector<int32_t> codes = t2w_test::golden_ids("flow/token");
  for (int r = 0; r < 2; ++r) codes.insert(codes.end(), codes.begin(), codes.end());
  // Alone: the stream on this thread; the decode with nothing beside it.
  Speaker::Stream st = sp.stream();
  std::vector<float> want = st.push(codes);
  const auto tail = st.finish();
  want.insert(want.end(), tail.begin(), tail.end());
  const Qwen2LM lm(testing_model::tiny_checkpoint(), Device::cuda(0), DType::BF16);
  const int steps = 48;
  const auto want_ids = decode(lm, steps, [](int) {});

  // Together: a few codes after every decode step, as an answer's audio codes arrive.
  BackgroundSpeech bg(sp);
  std::vector<float> got;
  size_t next = 0;
  const auto ids = decode(lm, steps, [&](int s) {
    const size_t end = s + 1 == steps ? codes.size() : std::min(codes.size(), next + 5);
    const auto out =
        bg.push(std::vector<int32_t>(codes.begin() + static_cast<std::ptrdiff_t>(next),
                                     codes.begin() + static_cast<std::ptrdiff_t>(end)));
    got.insert(got.end(), out.begin(), out.end());
    next = end;
  });
  const auto rest = bg.finish();
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_EQ(ids, want_ids);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LE(rel_diff(got, want), 1e-6);
  EXPECT_GE(bg.chunks(), 2);
}

}  // namespace
}  // namespace stepaudio
