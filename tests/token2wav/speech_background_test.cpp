// BackgroundSpeech (token2wav on a worker thread) gives exactly the samples of a Speaker::Stream
// fed the same codes, whatever the pieces it is pushed in, and reports a worker's error.
#include <thread>

#include "stepaudio/speech_background.h"
#include "t2w_test_util.h"

namespace stepaudio {
namespace {

using namespace t2w_test;

std::vector<float> streamed(Speaker& sp, const std::vector<int32_t>& codes) {
  Speaker::Stream st = sp.stream();
  std::vector<float> out = st.push(codes);
  const auto rest = st.finish();
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

TEST(BackgroundSpeech, SameSamplesAsTheStream) {
  TempDir dir("t2w_bg");
  save_voice((dir / "voice.safetensors").string(), golden_voice());
  Speaker sp =
      Speaker::load(golden_dir().string(), (dir / "voice.safetensors").string(), {.seed = 3});
  std::vector<int32_t> codes = golden_ids("flow/token");
  // Long enough for several chunks (25 + 3 look-ahead each).
  for (int r = 0; r < 2; ++r) codes.insert(codes.end(), codes.begin(), codes.end());
  const std::vector<float> want = streamed(sp, codes);
  ASSERT_FALSE(want.empty());

  for (size_t piece : {size_t{1}, size_t{7}, codes.size()}) {
    SCOPED_TRACE(piece);
    BackgroundSpeech bg(sp);
    std::vector<float> got;
    for (size_t i = 0; i < codes.size(); i += piece) {
      const std::vector<int32_t> part(
          codes.begin() + static_cast<std::ptrdiff_t>(i),
          codes.begin() + static_cast<std::ptrdiff_t>(std::min(codes.size(), i + piece)));
      const auto out = bg.push(part);  // returns at once; takes what is ready
      got.insert(got.end(), out.begin(), out.end());
    }
    const auto rest = bg.finish();
    got.insert(got.end(), rest.begin(), rest.end());
    EXPECT_EQ(got, want);
    EXPECT_GE(bg.chunks(), 2);
    EXPECT_GT(bg.first_audio_time(), 0.0);
    EXPECT_THROW(bg.push({1}), Error);  // the stream has ended
  }
}

TEST(BackgroundSpeech, WorkerErrorsReachTheCaller) {
  TempDir dir("t2w_bg_err");
  save_voice((dir / "voice.safetensors").string(), golden_voice());
  Speaker sp = Speaker::load(golden_dir().string(), (dir / "voice.safetensors").string());
  {
    BackgroundSpeech bg(sp);
    bg.push({1, 2, 6561});  // out of range: the worker fails
    EXPECT_THROW(bg.finish(), Error);
  }
  {
    BackgroundSpeech bg(sp);  // destroyed without finish(): the worker stops, nothing hangs
    bg.push({1, 2, 3});
  }
  // The speaker still works afterwards.
  EXPECT_FALSE(streamed(sp, golden_ids("flow/token")).empty());
}

}  // namespace
}  // namespace stepaudio
