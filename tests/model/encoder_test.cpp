// The audio encoder + adaptor against the official model's tensors (golden README §3, §4, §7),
// each stage fed with the golden mels.
#include <gtest/gtest.h>

#include <cstdio>

#include "model/encoder.h"
#include "tiny_model.h"

namespace stepaudio {
namespace {

using namespace testing_model;

constexpr double kTol = 1e-4;  // golden README §7: encoder/adaptor tensors fed the golden mel

std::vector<std::string> audio_cases() {
  std::vector<std::string> out;
  for (const auto& [name, c] : manifest().at("cases").items())
    if (c.contains("num_chunks")) out.push_back(name);
  return out;
}

const AudioEncoder& tiny_encoder() {
  static const AudioEncoder enc(tiny_checkpoint());
  return enc;
}

TEST(EncoderGolden, HasCases) {
  // The suite must not pass vacuously.
  EXPECT_GE(audio_cases().size(), 5u);
}

TEST(EncoderGolden, EveryCaseBatchedAsOfficial) {
  for (const std::string& c : audio_cases()) {
    SCOPED_TRACE(c);
    const int64_t n_chunks = manifest()["cases"][c]["num_chunks"].get<int64_t>();
    std::vector<Tensor> mels;
    for (int64_t k = 0; k < n_chunks; ++k)
      mels.push_back(golden(fmt::format("{}/chunk{}/mel", c, k)).clone());

    EncoderTrace trace;
    std::vector<Tensor> rows = tiny_encoder().encode(mels, &trace);
    ASSERT_EQ(rows.size(), static_cast<size_t>(n_chunks));

    EXPECT_EQ(max_abs_diff(trace.key_bias, golden(c + "/encoder_key_bias")), 0.0);
    const std::vector<int64_t> wav_lens = golden_i64(c + "/wav_lens");
    for (int64_t k = 0; k < n_chunks; ++k) {
      SCOPED_TRACE(fmt::format("chunk {}", k));
      const std::string p = fmt::format("{}/chunk{}/", c, k);
      const int64_t T = mels[static_cast<size_t>(k)].dim(1);
      EXPECT_EQ(audio_wav_len(T), golden_i64(p + "wav_len").at(0));
      EXPECT_EQ(audio_wav_len(T), wav_lens.at(static_cast<size_t>(k)));
      EXPECT_EQ(trace.encoder_len[static_cast<size_t>(k)], golden_i64(p + "encoder_len").at(0));
      EXPECT_EQ(audio_encoder_len(T), golden_i64(p + "encoder_len").at(0));
      EXPECT_EQ(audio_adaptor_len(T), golden_i64(p + "n_audio_patch").at(0));

      const Tensor& bin = trace.blocks_in[static_cast<size_t>(k)];
      EXPECT_EQ(bin.shape(), golden(p + "encoder_blocks_in").shape());
      EXPECT_LE(max_abs_diff(bin, golden(p + "encoder_blocks_in")), kTol);
      const Tensor& eo = trace.encoder_out[static_cast<size_t>(k)];
      EXPECT_EQ(eo.shape(), golden(p + "encoder_out").shape());
      EXPECT_LE(max_abs_diff(eo, golden(p + "encoder_out")), kTol);
      std::printf("  %s chunk %lld: blocks_in %.2e encoder_out %.2e adaptor_out %.2e\n", c.c_str(),
                  static_cast<long long>(k), max_abs_diff(bin, golden(p + "encoder_blocks_in")),
                  max_abs_diff(eo, golden(p + "encoder_out")),
                  max_abs_diff(rows[static_cast<size_t>(k)], golden(p + "adaptor_out")));
      const Tensor& ad = rows[static_cast<size_t>(k)];
      EXPECT_EQ(ad.shape(), golden(p + "adaptor_out").shape());
      EXPECT_LE(max_abs_diff(ad, golden(p + "adaptor_out")), kTol);
    }
  }
}

TEST(EncoderGolden, ChunkAloneDiffersFromBatched) {
  // en_long_31s chunk 1 run alone has its own mask offset; the goldens hold both results.
  int checked = 0;
  for (const std::string& c : audio_cases()) {
    for (int64_t k = 0; goldens().has(fmt::format("{}/chunk{}/mel", c, k)); ++k) {
      const std::string p = fmt::format("{}/chunk{}/", c, k);
      if (!goldens().has(p + "encoder_out_single")) continue;
      SCOPED_TRACE(p);
      EncoderTrace trace;
      tiny_encoder().encode({golden(p + "mel").clone()}, &trace);
      EXPECT_LE(max_abs_diff(trace.encoder_out[0], golden(p + "encoder_out_single")), kTol);
      ++checked;
    }
  }
  EXPECT_GE(checked, 1);
}

TEST(EncoderLengths, OfficialFormulas) {
  // spec §2.1 examples: mel frames T -> <audio_patch> count n.
  const std::pair<int64_t, int64_t> cases[] = {{52, 6},     {102, 13},   {202, 25},   {502, 63},
                                               {1002, 125}, {2002, 250}, {2502, 313}, {3000, 375},
                                               {7, 1},      {301, 38},   {603, 75}};
  for (auto [T, n] : cases) EXPECT_EQ(audio_adaptor_len(T), n) << "T=" << T;
  EXPECT_EQ(audio_encoder_len(2502), 625);
  EXPECT_EQ(audio_encoder_len(603), 150);
}

TEST(EncoderErrors, BadInputsFailWithMessages) {
  const AudioEncoder& enc = tiny_encoder();
  EXPECT_THROW(enc.encode({}), Error);
  EXPECT_THROW(enc.encode({Tensor::zeros({80, 100}, DType::F32)}), Error);    // wrong n_mels
  EXPECT_THROW(enc.encode({Tensor::zeros({128, 2}, DType::F32)}), Error);     // empty audio
  EXPECT_THROW(enc.encode({Tensor::zeros({128, 3001}, DType::F32)}), Error);  // > 30 s
  EXPECT_THROW(enc.encode({Tensor::zeros({128, 50}, DType::BF16)}), Error);   // wrong dtype
  try {
    enc.encode({Tensor::zeros({64, 100}, DType::F32)});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[128, frames]"), std::string::npos) << e.what();
  }
}

TEST(EncoderErrors, MissingOrMisshapenWeightIsNamed) {
  const Checkpoint& ck = tiny_checkpoint();
  WeightFn bad = [&](const std::string& n) {
    if (n == "encoder.blocks.1.attn.key.weight") return Tensor::zeros({3, 3}, DType::BF16);
    return ck.get(n);
  };
  try {
    AudioEncoder enc(ck.config().audio, bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.blocks.1.attn.key.weight"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace stepaudio
