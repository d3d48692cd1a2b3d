// The public speech API (stepaudio/speech.h) is a thin layer over Token2wav: same samples
// offline and streamed, and its WAV writer round-trips.
#include <sndfile.h>

#include "stepaudio/speech.h"
#include "t2w_test_util.h"

namespace stepaudio {
namespace {

using namespace t2w_test;

TEST(SpeechApi, SpeaksAsToken2wavDoes) {
  TempDir dir("t2w_api");
  save_voice((dir / "voice.safetensors").string(), golden_voice());
  Speaker sp =
      Speaker::load(golden_dir().string(), (dir / "voice.safetensors").string(), {.seed = 7});
  const std::vector<int32_t> codes = golden_ids("flow/token");
  const std::vector<float> wav = sp.speak(codes);
  Token2wavOptions o;
  o.seed = 7;
  EXPECT_EQ(wav, golden_t2w().synthesize(codes, golden_voice(), o).to_f32_vector());

  Speaker::Stream st = sp.stream();
  std::vector<float> streamed;
  for (int32_t c : codes) {
    const auto piece = st.push({c});
    streamed.insert(streamed.end(), piece.begin(), piece.end());
  }
  EXPECT_EQ(streamed.size(), 960u * (25 - 4));  // the first chunk, minus the held-back tail
  const auto rest = st.finish();
  streamed.insert(streamed.end(), rest.begin(), rest.end());
  EXPECT_EQ(streamed.size(), wav.size());
  EXPECT_EQ(st.chunks(), 2);

  save_wav((dir / "a.wav").string(), wav, Speaker::kSampleRate, true);
  SF_INFO info{};
  SNDFILE* f = sf_open((dir / "a.wav").c_str(), SFM_READ, &info);
  ASSERT_NE(f, nullptr);
  std::vector<float> back(static_cast<size_t>(info.frames));
  sf_readf_float(f, back.data(), info.frames);
  sf_close(f);
  EXPECT_EQ(info.samplerate, 24000);
  EXPECT_EQ(back, wav);
  // Bad inputs: nothing written.
  EXPECT_THROW(save_wav((dir / "b.wav").string(), {0.f, NAN}), Error);
  EXPECT_THROW(save_wav((dir / "no/such/b.wav").string(), {0.f}), Error);
  EXPECT_FALSE(fs::exists(dir / "b.wav"));
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"a.wav", "voice.safetensors"}));
  EXPECT_THROW(sp.speak({6561}), Error);
  EXPECT_THROW(Speaker::load(golden_dir().string(), (dir / "nope.safetensors").string()), Error);
  // The precision: a bad name is an error naming the field; fast on the CPU is the reference.
  try {
    Speaker::load(golden_dir().string(), (dir / "voice.safetensors").string(),
                  {.precision = "half"});
    ADD_FAILURE() << "precision 'half' accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SpeechOptions::precision: unknown token2wav precision "
                                         "'half', expected fp32 or fast"),
              std::string::npos)
        << e.what();
  }
  Speaker fast = Speaker::load(golden_dir().string(), (dir / "voice.safetensors").string(),
                               {.seed = 7, .precision = "fast"});
  EXPECT_EQ(fast.speak(codes), wav);
}

}  // namespace
}  // namespace stepaudio
