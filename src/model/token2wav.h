// token2wav (spec §7.7, §7.8): 25 Hz speech codes + a voice -> 24 kHz speech. The flow turns the
// codes into mel frames (2 per code), the HiFT vocoder turns the mel into samples (480 per
// frame). Offline (Token2wav::synthesize, the official Token2wav.__call__) and streaming
// (Token2wavStream, the official Token2wav.stream: chunks of 25 codes + 3 look-ahead).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "model/flow.h"
#include "model/hift.h"
#include "model/voice.h"

namespace stepaudio {

class T2wWeights;

inline constexpr int kToken2wavSampleRate = 24000;

struct Token2wavOptions {
  // Seeds both random sources: the flow's frame-indexed noise table (ops::frame_noise) and the
  // NSF draws of the vocoder.
  uint64_t seed = 0;
  int n_timesteps = 10;
  // Injected initial ODE state F32 [80, >= frames] indexed by absolute frame from the start of
  // the prompt (the official rand_noise buffer; golden flow/noise). Undefined: seeded.
  Tensor flow_noise;
  // Injected NSF draws (golden hift_gen/noise [480 F, 9], rows indexed by absolute sample of
  // the generated audio; rand_ini optional). Absent: drawn from `seed`.
  std::optional<HiftNoise> hift_noise;
  // Offline only: records flow/* and hift_gen/* under the golden names (inputs included).
  FlowTrace* trace = nullptr;
  // The GPU numerics for this call and the ones after it (Token2wav::set_precision); absent:
  // unchanged (a loaded Token2wav starts Fast on a GPU, Fp32 on the CPU). In the fast mode the
  // seeded draws come from the GPU's counter generator, so they differ from the fp32 mode's.
  std::optional<T2wPrecision> precision;
};

class Token2wav {
 public:
  // `dir` holds flow.yaml plus flow.safetensors or flow.pt, and hift.safetensors or hift.pt (the
  // safetensors copy is preferred when both exist). Throws Error naming the missing or bad file.
  // The weights are uploaded once to `device` and every call runs there.
  static Token2wav load(const std::string& dir, Device device = Device::cpu());

  Token2wav(Token2wav&&) noexcept;
  Token2wav& operator=(Token2wav&&) noexcept;
  ~Token2wav();

  // codes in [0, 6561) (at least one) -> F32 [960 * len(codes)] at 24 kHz: flow.inference over
  // the voice's prompt codes, prompt mel and speaker embedding, then the vocoder on the new mel.
  Tensor synthesize(std::span<const int32_t> codes, const Voice& voice,
                    const Token2wavOptions& options = {});

  const Flow& flow() const;
  HiftGenerator& hift();
  const std::string& dir() const;
  Device device() const;
  // The flow's and the vocoder's GPU numerics (see T2wPrecision; the CPU computes fp32 either way).
  void set_precision(T2wPrecision p);
  T2wPrecision precision() const;
  // Samples per speech code: up_stride mel frames of 480 samples (960).
  int64_t samples_per_code() const;

  // Wall time of the last synthesize() call's two stages.
  struct Stats {
    double flow_s = 0, hift_s = 0;
  };
  const Stats& last_stats() const;

  // Rejects codes outside the flow's vocabulary, naming `where` and the position.
  void check_codes(std::span<const int32_t> codes, const std::string& where) const;

 private:
  friend class Token2wavStream;
  // Frames [begin, end) of the seeded initial-state table for this precision and device.
  Tensor seeded_frame_noise(uint64_t seed, int64_t begin, int64_t end) const;
  // The flow's stream state right after setup_cache for a voice (with seeded noise), kept for
  // the last few voices: a new stream for the same voice, seed, steps and precision starts from
  // a copy instead of running the prompt through the encoder and 10 DiT calls again. Sharing is
  // safe because the stream code never writes into a cache tensor (it replaces them).
  const FlowStreamState* cached_setup(const std::string& key) const;
  void store_setup(std::string key, const FlowStreamState& state);

  struct Impl;
  explicit Token2wav(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Streaming: push codes as the LLM produces them, get 24 kHz samples as soon as they are final.
// The flow caches are set up with the voice at construction; each time 25 + 3 codes are buffered
// the first 25 are synthesised (the 3 look-ahead codes stay for the next chunk), and the vocoder
// holds back its last 8 frames (160 ms) for the Hamming cross-fade with the next chunk. finish()
// synthesises the rest. The concatenated output has 960 samples per code, like synthesize().
class Token2wavStream {
 public:
  static constexpr int64_t kChunkCodes = 25;
  static constexpr int64_t kEstimatorCacheTail = 100;  // official trim: prompt frames + 100

  // `t2w` must outlive the stream; the vocoder's generator is shared, so run one stream (or one
  // synthesize) at a time. options.trace is not supported (Error).
  Token2wavStream(Token2wav& t2w, const Voice& voice, const Token2wavOptions& options = {});

  // Returns the samples that became final (F32 [n], possibly n = 0).
  Tensor push(std::span<const int32_t> codes);
  // Synthesises the buffered codes and the held-back tail; the stream is done afterwards.
  Tensor finish();

  int64_t codes_pushed() const { return pushed_; }
  int64_t samples_emitted() const { return emitted_; }
  int64_t chunks() const { return chunks_; }

 private:
  Tensor run_chunk(std::span<const int32_t> codes, bool last);
  void extend_noise(int64_t frames);

  Token2wav& t2w_;
  Token2wavOptions opt_;
  FlowStreamState flow_;
  HiftStream hift_;
  std::vector<int32_t> buffer_;
  int64_t prompt_frames_ = 0, pushed_ = 0, emitted_ = 0, chunks_ = 0, frames_done_ = 0;
  bool seeded_noise_ = true, finished_ = false;
};

// Speech codes from text: integers separated by whitespace or commas, each in [0, 6561). Errors
// name `where` and the 1-based position of the bad entry; no codes at all is an error too.
std::vector<int32_t> parse_codes(const std::string& text, const std::string& where);
std::vector<int32_t> read_codes_file(const std::string& path);

}  // namespace stepaudio
