// The token2wav flow (CausalMaskedDiffWithXvec): speech tokens + prompt mel + speaker embedding ->
// mel frames, by the conformer encoder (mu) and conditional flow matching (CausalConditionalCFM:
// cosine time grid, Euler steps, classifier-free guidance with a zeroed batch row) over the DiT
// estimator. Offline (whole utterance) and streaming (chunks with caches) inference.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "model/dit.h"
#include "model/flow_config.h"
#include "model/flow_encoder.h"

namespace stepaudio {

// Streaming state (Flow::setup_cache, Flow::inference_chunk).
struct FlowStreamState {
  Tensor spks;  // [1, out] projected speaker embedding
  FlowEncoderCache encoder;
  std::vector<DiTCache> estimator;  // one per ODE step
  int n_timesteps = 0;
  Tensor noise;  // optional [out, N] table the frames are taken from (else ops::frame_noise)
  // Frames the estimator caches hold; the next chunk's noise starts at this frame.
  int64_t frames() const { return estimator.empty() ? 0 : estimator[0].frames(); }
};

// Token2wav.stream's bound on the estimator caches: once they hold more than head + tail frames,
// keep the first `head` and the last `tail` entries. As in the official code the caches hold the
// newest chunk first, so this keeps the newest `head` frames and the oldest `tail` (the prompt's
// among them), whatever the official call (head = prompt frames, tail = 100) meant. The next
// chunk's noise then starts at frame head + tail (the official offset is the cache length).
void trim_estimator_cache(FlowStreamState& state, int64_t head, int64_t tail);

class Flow {
 public:
  // Checks the weights against the config first (FlowConfig::check_weights), then takes them.
  Flow(const FlowConfig& c, const WeightFn& get, uint64_t noise_seed = 0);

  // prompt_codes, codes: speech tokens in [0, vocab); prompt_mel [Tp, out] with Tp = up_stride *
  // len(prompt_codes) (the prompt length fix); spk_embedding [spk_embed_dim]; noise: the initial
  // ODE state [out, >= T] (T = up_stride * (len(prompt_codes) + len(codes)); its first T frames are
  // used), or undefined to draw frames 0..T of this flow's frame-indexed table (ops::frame_noise).
  // -> mel [out, up_stride * len(codes)]. With `trace`, records the flow/* intermediates.
  Tensor inference(std::span<const int32_t> prompt_codes, std::span<const int32_t> codes,
                   const Tensor& prompt_mel, const Tensor& spk_embedding, int n_timesteps = 10,
                   const Tensor& noise = {}, FlowTrace* trace = nullptr) const;

  // Streaming. setup_cache runs the prompt (tokens followed by pre_lookahead_len look-ahead
  // tokens, e.g. its own first ones; prompt_mel [up_stride * (len - L), out]) through the encoder
  // and the estimator to fill the caches. inference_chunk takes the next tokens plus L look-ahead
  // tokens (or, when last_chunk, the remaining tokens alone) -> mel [out, up_stride * n_new].
  // The initial ODE state of frame f is column f of `noise` [out, N] when given (the official
  // rand_noise buffer, indexed by the frames the estimator caches hold), else of this flow's
  // frame-indexed table.
  FlowStreamState setup_cache(std::span<const int32_t> prompt_codes, const Tensor& prompt_mel,
                              const Tensor& spk_embedding, int n_timesteps = 10,
                              const Tensor& noise = {}) const;
  Tensor inference_chunk(std::span<const int32_t> codes, bool last_chunk,
                         FlowStreamState& state) const;

  // The pieces, for tests and for the streaming driver.
  Tensor speaker(const Tensor& spk_embedding) const;        // [spk_dim] -> [1, out]
  Tensor embed_tokens(std::span<const int32_t> ids) const;  // -> [1, L, input_size]
  Tensor project(const Tensor& h) const;  // encoder out [1, T, D] -> mu [1, out, T]
  // The CFM ODE from x0 [1, out, T] with mu, cond [1, out, T], spks [1, out]; records flow/x_steps
  // ([n, out, T]). With `caches` (one per step), continues a stream.
  Tensor solve(const Tensor& x0, const Tensor& mu, const Tensor& spks, const Tensor& cond,
               int n_timesteps, FlowTrace* trace = nullptr,
               std::vector<DiTCache>* caches = nullptr) const;
  // t_span = 1 - cos(linspace(0, 1, n+1) * pi/2) in float32, as torch computes it.
  static std::vector<float> time_grid(int n_timesteps);

  const FlowConfig& config() const { return c_; }
  // Moves the weights to `d`; every call then runs there (inputs are moved to it, results stay
  // on it).
  void to(Device d);
  Device device() const { return embed_table_.device(); }
  // The GPU numerics (T2wPrecision; default Fp32). Fast also draws the seeded initial state on the
  // GPU (ops::frame_noise_fast) instead of the CPU table (ops::frame_noise). Set it before
  // setup_cache: a stream's caches are only valid for the precision they were made with.
  void set_precision(T2wPrecision p);
  T2wPrecision precision() const { return dit_.precision(); }
  // Fast mode on the GPU: an offline solve() captures one Euler step (CFG batch DiT call and the
  // guidance) as a CUDA graph and replays it per step, the step time read from a device buffer.
  // On by default; off here or with STEPAUDIO_T2W_GRAPH=0 (a failed capture also falls back to
  // launching every op, with a warning).
  void set_use_graph(bool on) { use_graph_ = on; }
  // Whether the last offline solve() replayed a captured graph (for tests and benchmarks).
  bool last_solve_graphed() const { return last_graphed_; }
  const FlowEncoder& encoder() const { return encoder_; }
  const DiT& estimator() const { return dit_; }

 private:
  void check_ids(std::span<const int32_t> ids, const char* what) const;
  // Frames [begin, end) of `table` [out, N] (or of the seeded frame table when undefined: ops::
  // frame_noise, or ops::frame_noise_fast on the GPU in the fast mode) as [1, out, n].
  Tensor initial_state(const Tensor& table, int64_t begin, int64_t end) const;

  // The graphed Euler loop (see set_use_graph); false when the capture failed (x untouched).
  bool solve_graphed(Tensor& x, const Tensor& mu_cfg, const Tensor& spks_cfg,
                     const Tensor& cond_cfg, const Tensor& t_all, const std::vector<float>& dts,
                     float rate, float keep) const;

  FlowConfig c_;
  FlowEncoder encoder_;
  DiT dit_;
  Tensor embed_table_, spk_w_, spk_b_, proj_w_, proj_b_;
  uint64_t noise_seed_;
  bool use_graph_ = true;
  mutable bool last_graphed_ = false;
};

}  // namespace stepaudio
