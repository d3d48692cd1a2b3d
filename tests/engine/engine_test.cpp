// End to end through the public API on the tiny golden model: the prompt ids and 16 greedy ids
// must equal those of the official code (golden README §2, §5).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model_dir.h"
#include "stepaudio/engine.h"

using namespace stepaudio;
namespace tp = stepaudio::testing_paths;

namespace {

const char* kAsrSystem = "请记录下你所听到的语音内容。";

std::vector<int32_t> golden_ids(const std::string& name) {
  SafetensorsFile f = SafetensorsFile::open(tp::goldens_file().string());
  Tensor t = f.get(name);
  EXPECT_EQ(t.dtype(), DType::I64) << name;
  std::vector<int32_t> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(static_cast<int32_t>(t.data<int64_t>()[i]));
  return v;
}

std::string golden_text(const std::string& c) {
  std::ifstream in(tp::golden() / "tiny-a" / "manifest.json");
  if (!in) throw std::runtime_error("manifest.json missing");
  nlohmann::json m = nlohmann::json::parse(in);
  return m.at("cases").at(c).at("greedy_text").get<std::string>();
}

// One engine for the whole suite: loading is the slow part.
class EngineGolden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new tp::TempModelDir();
    engine_ = new Engine(Engine::load(dir_->str()));
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete dir_;
  }
  static Conversation asr(const std::vector<std::string>& files) {
    Conversation c;
    c.system(kAsrSystem).user();
    for (const auto& f : files) c.audio(tp::audio(f).string());
    return c;
  }
  static Conversation text_2plus2() {
    Conversation c;
    c.system("You are a helpful assistant.").user("What is 2+2?");
    return c;
  }
  static Sampling greedy16() {
    Sampling s;
    s.greedy = true;
    s.max_tokens = 16;
    return s;
  }
  // The official split, written independently of the library.
  static void check_split(const Result& r) {
    std::vector<int32_t> codes;
    for (int32_t id : r.tokens)
      if (id > 151695 && id - 151696 < 6561) codes.push_back(id - 151696);
    EXPECT_EQ(r.audio_codes, codes);
  }

  static tp::TempModelDir* dir_;
  static Engine* engine_;
};
tp::TempModelDir* EngineGolden::dir_ = nullptr;
Engine* EngineGolden::engine_ = nullptr;

}  // namespace

TEST_F(EngineGolden, AsrEnHelloGreedy) {
  std::string streamed;
  int deltas = 0, final_deltas = 0;
  Result r = engine_->generate(asr({"en_hello_3s.wav"}), greedy16(), [&](const Delta& d) {
    streamed += d.text;
    ++deltas;
    if (d.done) ++final_deltas;
  });
  EXPECT_EQ(r.prompt, golden_ids("en_hello_3s/input_ids"));
  EXPECT_EQ(r.tokens, golden_ids("en_hello_3s/greedy_ids"));
  EXPECT_EQ(r.stop, StopReason::MaxTokens);
  EXPECT_EQ(deltas, 17);  // one per token + the final one
  EXPECT_EQ(final_deltas, 1);
  EXPECT_EQ(streamed, r.text);
  // All 16 ids are text ids here, so the text is the manifest's decoded string.
  EXPECT_EQ(r.text, golden_text("en_hello_3s"));
  check_split(r);
  EXPECT_EQ(r.timings.prompt_tokens, 61);
  EXPECT_EQ(r.timings.generated_tokens, 16);
  EXPECT_GT(r.timings.prefill_s, 0);
  EXPECT_GT(r.timings.mel_s, 0);
  EXPECT_GT(r.timings.encoder_s, 0);
  EXPECT_GT(r.timings.decode_tok_s(), 0);
  EXPECT_LE(r.timings.first_token_s, r.timings.total_s);
}

TEST_F(EngineGolden, AsrRealSpeechGreedy) {
  Result r = engine_->generate(asr({"real_speech.wav"}), greedy16());
  EXPECT_EQ(r.prompt, golden_ids("real_speech/input_ids"));
  EXPECT_EQ(r.tokens, golden_ids("real_speech/greedy_ids"));
}

TEST_F(EngineGolden, AsrTwoChunksGreedy) {
  Result r = engine_->generate(asr({"en_long_31s.wav"}), greedy16());
  EXPECT_EQ(r.prompt, golden_ids("en_long_31s/input_ids"));
  EXPECT_EQ(r.tokens, golden_ids("en_long_31s/greedy_ids"));
}

TEST_F(EngineGolden, TextOnlyGreedy) {
  Result r = engine_->generate(text_2plus2(), greedy16());
  EXPECT_EQ(r.prompt, golden_ids("text_2plus2/input_ids"));
  EXPECT_EQ(r.tokens, golden_ids("text_2plus2/greedy_ids"));
  EXPECT_EQ(r.timings.mel_s, 0);
  check_split(r);
  // text_2plus2's greedy ids are mostly audio tokens (> 151695): they become codes, not text.
  EXPECT_FALSE(r.audio_codes.empty());
  EXPECT_EQ(engine_->prompt_ids(text_2plus2()), r.prompt);
}

TEST_F(EngineGolden, TemperatureZeroIsGreedy) {
  Sampling s;
  s.temperature = 0;
  s.max_tokens = 16;
  Result r = engine_->generate(text_2plus2(), s);
  EXPECT_EQ(r.tokens, golden_ids("text_2plus2/greedy_ids"));
}

TEST_F(EngineGolden, SeededSamplingReproduces) {
  Sampling s;
  s.temperature = 0.9f;
  s.top_p = 0.95f;
  s.max_tokens = 24;
  s.seed = 99;
  Result a = engine_->generate(text_2plus2(), s);
  Result b = engine_->generate(text_2plus2(), s);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.tokens.size(), 24u);  // random weights: <|EOT|> is very unlikely
  s.seed = 100;
  Result c = engine_->generate(text_2plus2(), s);
  EXPECT_NE(a.tokens, c.tokens);
}

TEST_F(EngineGolden, SpeechReplyPrefixAndHistory) {
  Conversation c = text_2plus2();
  c.speech_reply();
  const auto ids = engine_->prompt_ids(c);
  ASSERT_GE(ids.size(), 4u);
  // ... "<|BOT|>assistant\n<tts_start>" with no generation prompt after it
  EXPECT_EQ(std::vector<int32_t>(ids.end() - 4, ids.end()),
            (std::vector<int32_t>{151666, 77091, 198, 151693}));
  Sampling s = greedy16();
  s.max_tokens = 3;
  Result r = engine_->generate(c, s);
  ASSERT_EQ(r.tokens.size(), 3u);
  // The answer goes back as raw ids inside the assistant message, then <|EOT|>.
  c.history(r).user("Again?");
  const auto ids2 = engine_->prompt_ids(c);
  std::vector<int32_t> expect = ids;
  expect.insert(expect.end(), r.tokens.begin(), r.tokens.end());
  expect.push_back(151665);
  const std::vector<int32_t> tail{151666, 25312, 198};  // <|BOT|>human\n ...
  ASSERT_GT(ids2.size(), expect.size());
  EXPECT_EQ(std::vector<int32_t>(ids2.begin(), ids2.begin() + expect.size()), expect);
  EXPECT_EQ(std::vector<int32_t>(ids2.begin() + expect.size(), ids2.begin() + expect.size() + 3),
            tail);
}

TEST_F(EngineGolden, BadInputIsAnError) {
  Conversation missing;
  missing.system(kAsrSystem).user().audio("/nonexistent/clip.wav");
  try {
    engine_->generate(missing, greedy16());
    ADD_FAILURE() << "no error for a missing audio file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/clip.wav"), std::string::npos) << e.what();
  }
  EXPECT_THROW(engine_->generate(Conversation{}, greedy16()), Error);
  Sampling bad = greedy16();
  bad.max_tokens = 0;
  EXPECT_THROW(engine_->generate(text_2plus2(), bad), Error);
  Sampling badp;
  badp.top_p = 0;
  EXPECT_THROW(engine_->generate(text_2plus2(), badp), Error);
  Conversation stray;  // an <audio_start> typed as text would shift the audio splice
  stray.user("<audio_start>hi");
  EXPECT_THROW(engine_->generate(stray, greedy16()), Error);
  EXPECT_THROW(Conversation{}.text("no message open"), Error);
}

TEST(EngineLoad, MissingFolderNamesIt) {
  try {
    Engine::load("/nonexistent/model-dir");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model-dir"), std::string::npos) << e.what();
  }
}

TEST(EngineLoad, MissingTokenizerIsAnError) {
  tp::TempModelDir dir;
  std::filesystem::remove(dir.path() / "vocab.json");
  EXPECT_THROW(Engine::load(dir.str()), Error);
}
