// The generation loop below the public API (stop conditions, context limit, streaming split) on
// the tiny golden model, and the incremental text/audio split on the real tokenizer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "audio/load.h"
#include "audio/mel.h"
#include "engine/generator.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/encoder.h"
#include "model/llm.h"
#include "model_dir.h"
#include "text/tokenizer.h"

using namespace stepaudio;
namespace tp = stepaudio::testing_paths;

namespace {

text::Tokenizer load_tokenizer() {
  return text::Tokenizer::load(tp::source() / "assets" / "tokenizer");
}

std::vector<int32_t> golden_ids(const std::string& name) {
  SafetensorsFile f = SafetensorsFile::open(tp::goldens_file().string());
  Tensor t = f.get(name);
  std::vector<int32_t> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(static_cast<int32_t>(t.data<int64_t>()[i]));
  return v;
}

class GeneratorTiny : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new tp::TempModelDir();
    ckpt_ = new Checkpoint(Checkpoint::open(dir_->str()));
    lm_ = new Qwen2LM(*ckpt_);
    enc_ = new AudioEncoder(*ckpt_);
  }
  static void TearDownTestSuite() {
    delete enc_;
    delete lm_;
    delete ckpt_;
    delete dir_;
  }
  static GenerationConfig greedy(int64_t n) {
    GenerationConfig c;
    c.sampler.greedy = true;
    c.max_new_tokens = n;
    return c;
  }
  static tp::TempModelDir* dir_;
  static Checkpoint* ckpt_;
  static Qwen2LM* lm_;
  static AudioEncoder* enc_;
};
tp::TempModelDir* GeneratorTiny::dir_ = nullptr;
Checkpoint* GeneratorTiny::ckpt_ = nullptr;
Qwen2LM* GeneratorTiny::lm_ = nullptr;
AudioEncoder* GeneratorTiny::enc_ = nullptr;

}  // namespace

TEST_F(GeneratorTiny, GreedyWithAudioMatchesGoldens) {
  Generator gen(*lm_, enc_);
  const auto samples = load_audio_16k(tp::audio("en_hello_3s.wav").string());
  const std::vector<Tensor> mels{log_mel(samples)};
  std::vector<int32_t> seen;
  Generation g = gen.run(golden_ids("en_hello_3s/input_ids"), mels, greedy(16),
                         [&](int32_t id) { seen.push_back(id); });
  EXPECT_EQ(g.tokens, golden_ids("en_hello_3s/greedy_ids"));
  EXPECT_EQ(seen, g.tokens);
  EXPECT_EQ(g.stop, GenStop::MaxTokens);
  EXPECT_EQ(g.stats.prompt_tokens, 61);
  EXPECT_EQ(g.stats.generated_tokens, 16);
}

TEST_F(GeneratorTiny, StopsOnStopToken) {
  Generator gen(*lm_, nullptr);
  const auto expect = golden_ids("text_2plus2/greedy_ids");
  GenerationConfig c = greedy(16);
  c.stop_ids = {expect[3]};  // pretend the 4th greedy id ends the turn
  Generation g = gen.run(golden_ids("text_2plus2/input_ids"), {}, c, {});
  EXPECT_EQ(g.stop, GenStop::Eot);
  EXPECT_EQ(g.tokens, std::vector<int32_t>(expect.begin(), expect.begin() + 4));
}

TEST_F(GeneratorTiny, ContextLimitCountsPromptAndAnswer) {
  Generator gen(*lm_, nullptr);
  const auto prompt = golden_ids("text_2plus2/input_ids");
  GenerationConfig c = greedy(100);
  c.max_context = static_cast<int64_t>(prompt.size()) + 3;
  Generation g = gen.run(prompt, {}, c, {});
  EXPECT_EQ(g.stop, GenStop::ContextFull);
  EXPECT_EQ(g.tokens.size(), 3u);
  c.max_context = static_cast<int64_t>(prompt.size());  // no room for a single token
  EXPECT_THROW(gen.run(prompt, {}, c, {}), Error);
}

TEST_F(GeneratorTiny, BadInputs) {
  Generator text_only(*lm_, nullptr);
  const auto samples = load_audio_16k(tp::audio("en_hello_3s.wav").string());
  // audio without an encoder, empty prompt, ids outside the vocabulary, no budget
  EXPECT_THROW(
      text_only.run(golden_ids("en_hello_3s/input_ids"), {log_mel(samples)}, greedy(2), {}), Error);
  EXPECT_THROW(text_only.run(std::vector<int32_t>{}, {}, greedy(2), {}), Error);
  EXPECT_THROW(text_only.run(std::vector<int32_t>{1, 158720}, {}, greedy(2), {}), Error);
  EXPECT_THROW(text_only.run(std::vector<int32_t>{1, -1}, {}, greedy(2), {}), Error);
  EXPECT_THROW(text_only.run(std::vector<int32_t>{1, 2}, {}, greedy(0), {}), Error);
  // a chunk count that does not match the prompt's <audio_start> blocks
  Generator gen(*lm_, enc_);
  EXPECT_THROW(gen.run(golden_ids("text_2plus2/input_ids"), {log_mel(samples)}, greedy(2), {}),
               Error);
}

TEST(OutputSplitter, HoldsSplitCharactersBack) {
  const text::Tokenizer tok = load_tokenizer();
  // Rare characters (Egyptian hieroglyphs, U+13000...) are spelled by byte-level BPE with tokens
  // that each hold part of a UTF-8 sequence; take the first few that need several tokens.
  std::string s = "a";
  int rare = 0;
  for (uint32_t cp = 0x13000; cp < 0x13400 && rare < 3; ++cp) {
    const std::string ch{
        static_cast<char>(0xF0 | (cp >> 18)), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
        static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
    if (tok.encode(ch).size() > 1) {
      s += ch + "b";
      ++rare;
    }
  }
  ASSERT_EQ(rare, 3) << "no character found that needs several tokens";
  const auto ids = tok.encode(s);
  OutputSplitter split(tok);
  std::string streamed;
  int held = 0;
  for (int32_t id : ids) {
    auto piece = split.push(id);
    EXPECT_TRUE(piece.audio_codes.empty());
    if (piece.text.empty()) ++held;
    streamed += piece.text;
  }
  streamed += split.flush();
  EXPECT_EQ(streamed, s);
  EXPECT_GT(held, 0) << "no token was held back";
  EXPECT_EQ(split.text_ids(), ids);
}

TEST(OutputSplitter, AudioCodesAndControlTokens) {
  const text::Tokenizer tok = load_tokenizer();
  OutputSplitter split(tok);
  const std::vector<int32_t> ids{151693,        151696 + 5, 40,     151696 + 6560,
                                 151696 + 6561, 151695,     151694, 151696 + 6655,
                                 158400,        151665};
  std::vector<int32_t> codes;
  std::string text;
  for (int32_t id : ids) {
    auto p = split.push(id);
    codes.insert(codes.end(), p.audio_codes.begin(), p.audio_codes.end());
    text += p.text;
  }
  text += split.flush();
  EXPECT_EQ(codes, (std::vector<int32_t>{5, 6560}));
  EXPECT_EQ(split.audio_codes(), codes);
  EXPECT_EQ(split.text_ids(), (std::vector<int32_t>{40}));  // <|EOT|> is not text
  EXPECT_EQ(text, tok.decode(std::vector<int32_t>{40}));
}
