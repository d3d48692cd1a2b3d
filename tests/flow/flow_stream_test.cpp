// Streaming (spec §7.8): the prompt fills the caches, then chunks of 25 tokens plus 3 look-ahead
// tokens, the last chunk without look-ahead. Chunks see only the past (block-causal attention,
// zero right context at the last chunk) and the prompt sees its own first tokens as look-ahead,
// so the result is close to the offline one, not equal. data/stream_ref.safetensors holds the
// official streaming code's output on the same weights and noise (data/make_stream_ref.py).
#include <cmath>

#include "flow_golden.h"
#include "ops/flow_ops.h"

namespace stepaudio {
namespace {

using flow_test::data;
using flow_test::golden;
using flow_test::golden_ids;

struct Stats {
  double max_abs = 0, mean_abs = 0;
};

Stats compare(const std::vector<float>& a, const std::vector<float>& b) {
  Stats s;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    s.max_abs = std::max(s.max_abs, d);
    s.mean_abs += d;
  }
  s.mean_abs /= static_cast<double>(a.size());
  return s;
}

// Streams `codes` after the prompt in chunks of `chunk` tokens; returns [80, 2*len(codes)].
Tensor stream(const Flow& f, const std::vector<int32_t>& prompt, const std::vector<int32_t>& codes,
              int64_t chunk, const Tensor& noise = {}, bool trim = false) {
  const int64_t L = f.config().encoder.pre_lookahead_len;
  std::vector<int32_t> setup = prompt;
  setup.insert(setup.end(), prompt.begin(), prompt.begin() + L);  // fake look-ahead
  FlowStreamState st =
      f.setup_cache(setup, golden("flow/prompt_feat"), golden("flow/embedding"), 10, noise);
  EXPECT_EQ(st.frames(), 40);
  std::vector<Tensor> mels;
  size_t at = 0;
  while (true) {
    const bool last = at + static_cast<size_t>(chunk + L) >= codes.size();
    const size_t end = last ? codes.size() : at + static_cast<size_t>(chunk + L);
    std::vector<int32_t> part(codes.begin() + static_cast<long>(at),
                              codes.begin() + static_cast<long>(end));
    const int64_t before = st.frames();
    mels.push_back(f.inference_chunk(part, last, st));
    const int64_t n_new = last ? static_cast<int64_t>(part.size()) : chunk;
    EXPECT_EQ(mels.back().shape(), (Shape{80, 2 * n_new}));
    EXPECT_EQ(st.frames(), before + 2 * n_new);  // the estimator caches grew by the new frames
    if (trim) {
      trim_estimator_cache(st, 40, 100);
      EXPECT_LE(st.frames(), 140);
    }
    if (last) break;
    at += static_cast<size_t>(chunk);
  }
  return ops::concat_axis(mels, 1);
}

TEST(FlowStream, MatchesTheOfficialStreamingCode) {
  const Flow& f = *data().flow;
  const SafetensorsFile ref = SafetensorsFile::open(
      (testing_paths::source() / "tests/flow/data/stream_ref.safetensors").string());
  const std::vector<int32_t> prompt = golden_ids("flow/prompt_token"),
                             codes = golden_ids("flow/token");
  const Tensor noise = golden("flow/noise");  // the official table's first 114 frames
  flow_test::expect_close(
      f.inference(prompt, codes, golden("flow/prompt_feat"), golden("flow/embedding"), 10, noise),
      ref.get("offline"), 5e-5, "offline");
  for (int64_t chunk : {25, 4})
    flow_test::expect_close(stream(f, prompt, codes, chunk, noise),
                            ref.get(fmt::format("chunk{}", chunk)), 5e-5,
                            fmt::format("stream, chunks of {}+3", chunk));
  // A longer stream with Token2wav's cache trimming (prompt frames + the last 100).
  std::vector<int32_t> longer;
  for (int i = 0; i < 3; ++i) longer.insert(longer.end(), codes.begin(), codes.end());
  flow_test::expect_close(stream(f, prompt, longer, 25, ref.get("trim_noise").clone(), true),
                          ref.get("chunk25_trim"), 5e-5, "stream, trimmed caches");
}

TEST(FlowStream, ChunkedStaysCloseToOffline) {
  const Flow& f = *data().flow;
  const std::vector<int32_t> prompt = golden_ids("flow/prompt_token"),
                             codes = golden_ids("flow/token");
  // Offline with the same frame-indexed noise table the stream draws from.
  const Tensor offline =
      f.inference(prompt, codes, golden("flow/prompt_feat"), golden("flow/embedding"), 10);
  const Tensor chunked = stream(f, prompt, codes, 25);
  ASSERT_EQ(chunked.shape(), offline.shape());
  const Stats s = compare(chunked.to_f32_vector(), offline.to_f32_vector());
  double max_ref = 0;
  for (float v : offline.to_f32_vector())
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(v)));
  std::printf("    chunked (25+3) vs offline: max abs %.3g, mean abs %.3g, max |offline| %.3g\n",
              s.max_abs, s.mean_abs, max_ref);
  EXPECT_LT(s.mean_abs, 0.1 * max_ref / 5);
  EXPECT_LT(s.max_abs, max_ref);
  // Small chunks are still well defined (every chunk still has its 3 look-ahead tokens).
  const Tensor small = stream(f, prompt, codes, 4);
  const Stats s4 = compare(small.to_f32_vector(), offline.to_f32_vector());
  std::printf("    chunked (4+3) vs offline:  max abs %.3g, mean abs %.3g\n", s4.max_abs,
              s4.mean_abs);
  EXPECT_LT(s4.mean_abs, 0.1 * max_ref / 5);
}

TEST(FlowStream, OneChunkPerUtteranceIsDeterministic) {
  const Flow& f = *data().flow;
  const std::vector<int32_t> prompt = golden_ids("flow/prompt_token"),
                             codes = golden_ids("flow/token");
  EXPECT_EQ(stream(f, prompt, codes, 100).to_f32_vector(),
            stream(f, prompt, codes, 100).to_f32_vector());
}

TEST(FlowStream, Errors) {
  const Flow& f = *data().flow;
  FlowStreamState empty;
  EXPECT_THROW(f.inference_chunk(std::vector<int32_t>{1, 2, 3, 4}, false, empty), Error);
  const std::vector<int32_t> prompt = golden_ids("flow/prompt_token");
  // The prompt mel must cover the prompt without its 3 look-ahead tokens: 2 * (20 - 3) frames.
  EXPECT_THROW(f.setup_cache(prompt, golden("flow/prompt_feat"), golden("flow/embedding")), Error);
  std::vector<int32_t> setup = prompt;
  setup.insert(setup.end(), prompt.begin(), prompt.begin() + 3);
  FlowStreamState st =
      f.setup_cache(setup, golden("flow/prompt_feat"), golden("flow/embedding"), 2);
  // A non-final chunk must carry more than the look-ahead tokens.
  EXPECT_THROW(f.inference_chunk(std::vector<int32_t>{1, 2, 3}, false, st), Error);
  EXPECT_THROW(f.inference_chunk(std::vector<int32_t>{1, 99999, 3, 4}, false, st), Error);
}

}  // namespace
}  // namespace stepaudio
