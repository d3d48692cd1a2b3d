#include "model/flow.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "core/log.h"
#include "ops/act_ops.h"
#include "ops/flow_ops.h"
#include "ops/ops.h"
#include "ops/vocoder_ops.h"

#if STEPAUDIO_CUDA
#include "backend/cuda/graph.h"
#endif

namespace stepaudio {

namespace {

const FlowConfig& checked(const FlowConfig& c, const WeightFn& get) {
  c.check_weights(get);
  return c;
}

Tensor zeros_like(const Tensor& t) { return Tensor::zeros(t.shape(), DType::F32, t.device()); }

// t on device d (no copy when it is there already).
Tensor on(const Tensor& t, Device d) { return !t.defined() || t.device() == d ? t : t.to(d); }

// STEPAUDIO_T2W_GRAPH=0 turns the graphed Euler loop off (read once).
bool graphs_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("STEPAUDIO_T2W_GRAPH");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

}  // namespace

Flow::Flow(const FlowConfig& c, const WeightFn& get, uint64_t noise_seed)
    : c_(checked(c, get)), encoder_(c.encoder, get), dit_(c.dit, get), noise_seed_(noise_seed) {
  embed_table_ = expect_weight(get, "input_embedding.weight", {c.vocab_size, c.input_size});
  spk_w_ = expect_weight(get, "spk_embed_affine_layer.weight", {c.output_size, c.spk_embed_dim});
  spk_b_ = expect_vector_f32(get, "spk_embed_affine_layer.bias", c.output_size);
  proj_w_ = expect_weight(get, "encoder_proj.weight", {c.output_size, c.encoder.output_size});
  proj_b_ = expect_vector_f32(get, "encoder_proj.bias", c.output_size);
}

void Flow::to(Device d) {
  encoder_.to(d);
  dit_.to(d);
  for (Tensor* t : {&embed_table_, &spk_w_, &spk_b_, &proj_w_, &proj_b_}) *t = on(*t, d);
}

void Flow::set_precision(T2wPrecision p) { dit_.set_precision(p); }

std::vector<float> Flow::time_grid(int n) {
  if (n < 1) fail("flow: n_timesteps must be >= 1, got {}", n);
  // torch.linspace(0, 1, n+1) in float32: the first half counts up from 0, the rest down from 1.
  const int64_t steps = n + 1, halfway = steps / 2;
  const float step = 1.0f / static_cast<float>(n);
  const float pi = static_cast<float>(M_PI);
  std::vector<float> t(static_cast<size_t>(steps));
  for (int64_t i = 0; i < steps; ++i) {
    const float lin = i < halfway ? step * static_cast<float>(i)
                                  : 1.0f - step * static_cast<float>(steps - i - 1);
    t[static_cast<size_t>(i)] = 1.0f - std::cos(lin * 0.5f * pi);
  }
  return t;
}

void Flow::check_ids(std::span<const int32_t> ids, const char* what) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= c_.vocab_size)
      fail("flow: {} token {} at position {} is outside the speech vocabulary [0, {})", what,
           ids[i], i, c_.vocab_size);
}

Tensor Flow::initial_state(const Tensor& table, int64_t begin, int64_t end) const {
  const int64_t O = c_.output_size;
  if (!table.defined()) {
    if (precision() == T2wPrecision::Fast && device().is_cuda())
      return ops::frame_noise_fast(noise_seed_, O, begin, end, device())
          .reshape({1, O, end - begin});
    return on(ops::frame_noise(noise_seed_, O, begin, end), device()).reshape({1, O, end - begin});
  }
  if (table.dtype() != DType::F32 || table.ndim() != 2 || table.dim(0) != O || table.dim(1) < end)
    fail("flow: the noise must be F32 [{}, >= {}] (frames up to {}), got {}", O, end, end,
         table.desc());
  return on(ops::slice_axis(table, 1, begin, end), device()).reshape({1, O, end - begin});
}

Tensor Flow::speaker(const Tensor& spk_embedding) const {
  if (spk_embedding.dtype() != DType::F32 || spk_embedding.shape() != Shape{c_.spk_embed_dim})
    fail("flow: the speaker embedding must be F32 [{}], got {}", c_.spk_embed_dim,
         spk_embedding.defined() ? spk_embedding.desc() : "nothing");
  Tensor e = ops::l2_normalize(on(spk_embedding, device()).reshape({1, c_.spk_embed_dim}));
  return ops::linear(e, spk_w_, spk_b_);
}

Tensor Flow::embed_tokens(std::span<const int32_t> ids) const {
  const int64_t n = static_cast<int64_t>(ids.size());
  return ops::embedding(embed_table_, ids).reshape({1, n, c_.input_size});
}

Tensor Flow::project(const Tensor& h) const {
  return ops::transpose_last2(ops::linear(on(h, device()), proj_w_, proj_b_));
}

Tensor Flow::solve(const Tensor& x0_in, const Tensor& mu_in, const Tensor& spks_in,
                   const Tensor& cond_in, int n_timesteps, FlowTrace* trace,
                   std::vector<DiTCache>* caches) const {
  const Device dev = device();
  const Tensor x0 = on(x0_in, dev), mu = on(mu_in, dev), spks = on(spks_in, dev),
               cond = on(cond_in, dev);
  const std::vector<float> grid = time_grid(n_timesteps);
  if (caches && caches->size() != static_cast<size_t>(n_timesteps))
    fail("flow: the stream holds estimator caches for {} steps, asked for {}", caches->size(),
         n_timesteps);
  // The CFG batch: row 0 conditioned, row 1 with mu, speaker and cond zeroed.
  const Tensor mu_cfg = ops::concat_axis({mu, zeros_like(mu)}, 0);
  const Tensor spks_cfg = ops::concat_axis({spks, zeros_like(spks)}, 0);
  const Tensor cond_cfg = ops::concat_axis({cond, zeros_like(cond)}, 0);
  const float rate = static_cast<float>(c_.inference_cfg_rate);
  const float keep = static_cast<float>(1.0 + c_.inference_cfg_rate);
  Tensor x = x0.clone();
  std::vector<Tensor> steps;
  // The step times of the CFG batch, uploaded once: row s holds (t_s, t_s).
  std::vector<float> times;
  std::vector<float> dts;
  {
    float t = grid[0], dt = grid[1] - grid[0];
    for (int step = 1; step <= n_timesteps; ++step) {
      times.insert(times.end(), {t, t});
      dts.push_back(dt);
      t = t + dt;
      if (step < n_timesteps) dt = grid[static_cast<size_t>(step) + 1] - t;
    }
  }
  const Tensor t_all = on(Tensor::from_vector(times, {n_timesteps, 2}), dev);
  last_graphed_ = false;
  if (!trace && !caches && dev.is_cuda() && precision() == T2wPrecision::Fast && use_graph_ &&
      graphs_enabled() && solve_graphed(x, mu_cfg, spks_cfg, cond_cfg, t_all, dts, rate, keep))
    return x;
  for (int step = 1; step <= n_timesteps; ++step) {
    const float dt = dts[static_cast<size_t>(step - 1)];
    Tensor v = dit_.forward(ops::concat_axis({x, x}, 0), mu_cfg,
                            t_all.slice_rows(step - 1, step).reshape({2}), spks_cfg, cond_cfg,
                            nullptr, caches ? &(*caches)[static_cast<size_t>(step - 1)] : nullptr);
    Tensor guided = v.slice_rows(0, 1).clone();  // (1 + r) v_cond - r v_uncond
    ops::scale_(guided, keep);
    ops::axpy_(guided, -rate, v.slice_rows(1, 2));
    ops::axpy_(x, dt, guided);
    if (trace) steps.push_back(x.clone());
  }
  if (trace) trace->emplace_back("flow/x_steps", ops::concat_axis(steps, 0));
  return x;
}

bool Flow::solve_graphed(Tensor& x, const Tensor& mu_cfg, const Tensor& spks_cfg,
                         const Tensor& cond_cfg, const Tensor& t_all, const std::vector<float>& dts,
                         float rate, float keep) const {
#if STEPAUDIO_CUDA
  const Device dev = device();
  // Fixed buffers: the step reads its time from t_buf and writes the guided velocity to
  // `guided`; x is updated in place, so its address stays the one captured.
  Tensor t_buf = Tensor::empty({2}, DType::F32, dev);
  Tensor guided = Tensor::empty({1, x.dim(1), x.dim(2)}, DType::F32, dev);
  auto step = [&] {
    const Tensor v = dit_.forward(ops::concat_axis({x, x}, 0), mu_cfg, t_buf, spks_cfg, cond_cfg);
    ops::copy_(guided, v.slice_rows(0, 1));  // (1 + r) v_cond - r v_uncond
    ops::scale_(guided, keep);
    ops::axpy_(guided, -rate, v.slice_rows(1, 2));
  };
  auto set_time = [&](size_t s) {
    ops::copy_(t_buf, t_all.slice_rows(static_cast<int64_t>(s), static_cast<int64_t>(s) + 1));
  };
  // The first step runs op by op: it sets up what must not happen under capture (cuBLASLt
  // plans and workspace, kernel attributes) and is the same arithmetic as a replay.
  set_time(0);
  step();
  ops::axpy_(x, dts[0], guided);
  last_graphed_ = false;
  if (dts.size() < 2) return true;
  cuda::Graph graph(dev.index);
  try {
    graph.capture(step);
    last_graphed_ = true;
  } catch (const Error& e) {
    static bool warned = false;
    if (!warned)
      log::warn(
          "flow: the Euler step could not be captured as a CUDA graph ({}); running it op "
          "by op",
          e.what());
    warned = true;
  }
  for (size_t s = 1; s < dts.size(); ++s) {
    set_time(s);
    if (last_graphed_)
      graph.replay();
    else
      step();
    ops::axpy_(x, dts[s], guided);
  }
  return true;
#else
  (void)x, (void)mu_cfg, (void)spks_cfg, (void)cond_cfg, (void)t_all, (void)dts, (void)rate,
      (void)keep;
  return false;
#endif
}

Tensor Flow::inference(std::span<const int32_t> prompt_codes, std::span<const int32_t> codes,
                       const Tensor& prompt_mel, const Tensor& spk_embedding, int n_timesteps,
                       const Tensor& noise, FlowTrace* trace) const {
  const int64_t O = c_.output_size, S = c_.encoder.up_stride;
  const int64_t Np = static_cast<int64_t>(prompt_codes.size());
  const int64_t T = S * (Np + static_cast<int64_t>(codes.size()));
  if (codes.empty()) fail("flow: no speech tokens to synthesise");
  check_ids(prompt_codes, "prompt");
  check_ids(codes, "speech");
  if (!prompt_mel.defined() || prompt_mel.dtype() != DType::F32 ||
      prompt_mel.shape() != Shape{S * Np, O})
    fail("flow: the prompt mel must be F32 [{} = {} frames per prompt token x {}, {}], got {}",
         S * Np, S, Np, O, prompt_mel.defined() ? prompt_mel.desc() : "nothing");
  if (n_timesteps < 1) fail("flow: n_timesteps must be >= 1, got {}", n_timesteps);
  auto record = [&](const char* name, const Tensor& t) {
    if (trace) trace->emplace_back(name, t);
  };

  const Tensor spks = speaker(spk_embedding);
  record("flow/spks", spks.reshape({O}));
  std::vector<int32_t> ids(prompt_codes.begin(), prompt_codes.end());
  ids.insert(ids.end(), codes.begin(), codes.end());
  const Tensor x = embed_tokens(ids);
  record("flow/token_emb", x.reshape({x.dim(1), x.dim(2)}));

  const Tensor mu = project(encoder_.forward(x, trace));
  record("flow/mu", mu.reshape({O, T}));
  Tensor cond =
      ops::concat_axis({ops::transpose_last2(on(prompt_mel, device()).reshape({1, S * Np, O})),
                        Tensor::zeros({1, O, T - S * Np}, DType::F32, device())},
                       2);
  record("flow/cond", cond.reshape({O, T}));
  const Tensor x0 = initial_state(noise, 0, T);
  record("flow/noise", x0.reshape({O, T}));

  const Tensor mel = solve(x0, mu, spks, cond, n_timesteps, trace);
  Tensor feat = ops::slice_axis(mel, 2, S * Np, T).reshape({O, T - S * Np});
  record("flow/feat", feat);
  return feat;
}

FlowStreamState Flow::setup_cache(std::span<const int32_t> prompt_codes, const Tensor& prompt_mel,
                                  const Tensor& spk_embedding, int n_timesteps,
                                  const Tensor& noise) const {
  const int64_t O = c_.output_size, S = c_.encoder.up_stride, L = c_.encoder.pre_lookahead_len;
  const int64_t n = static_cast<int64_t>(prompt_codes.size());
  if (n <= L)
    fail("flow stream: the prompt needs more than the {} look-ahead tokens, got {}", L, n);
  check_ids(prompt_codes, "prompt");
  if (!prompt_mel.defined() || prompt_mel.dtype() != DType::F32 ||
      prompt_mel.shape() != Shape{S * (n - L), O})
    fail(
        "flow stream: the prompt mel must be F32 [{}, {}] ({} frames per prompt token without "
        "the {} look-ahead tokens), got {}",
        S * (n - L), O, S, L, prompt_mel.defined() ? prompt_mel.desc() : "nothing");
  if (n_timesteps < 1) fail("flow stream: n_timesteps must be >= 1, got {}", n_timesteps);
  FlowStreamState st;
  st.spks = speaker(spk_embedding);
  st.n_timesteps = n_timesteps;
  st.noise = noise;
  st.estimator.assign(static_cast<size_t>(n_timesteps), DiTCache{});
  const Tensor mu = project(encoder_.forward_chunk(embed_tokens(prompt_codes), false, st.encoder));
  const int64_t T = mu.dim(2);
  const Tensor cond = ops::transpose_last2(on(prompt_mel, device()).reshape({1, T, O}));
  const Tensor x0 = initial_state(noise, 0, T);
  solve(x0, mu, st.spks, cond, n_timesteps, nullptr, &st.estimator);  // fills the caches only
  return st;
}

void trim_estimator_cache(FlowStreamState& st, int64_t head, int64_t tail) {
  if (head < 0 || tail < 0) fail("flow stream: bad cache bounds {} + {}", head, tail);
  const int64_t n = st.frames();
  if (n <= head + tail) return;
  auto trim = [&](Tensor& t) {
    t = ops::concat_axis({ops::slice_axis(t, 1, 0, head), ops::slice_axis(t, 1, n - tail, n)}, 1);
  };
  for (DiTCache& c : st.estimator) {
    for (Tensor& k : c.k) trim(k);
    for (Tensor& v : c.v) trim(v);
  }
}

Tensor Flow::inference_chunk(std::span<const int32_t> codes, bool last_chunk,
                             FlowStreamState& st) const {
  const int64_t O = c_.output_size;
  if (st.estimator.empty() || !st.spks.defined())
    fail("flow stream: inference_chunk before setup_cache");
  if (codes.empty()) fail("flow stream: empty chunk");
  check_ids(codes, "speech");
  const Tensor mu = project(encoder_.forward_chunk(embed_tokens(codes), last_chunk, st.encoder));
  const int64_t T = mu.dim(2), offset = st.frames();
  const Tensor x0 = initial_state(st.noise, offset, offset + T);
  const Tensor mel = solve(x0, mu, st.spks, zeros_like(mu), st.n_timesteps, nullptr, &st.estimator);
  return mel.reshape({O, T});
}

}  // namespace stepaudio
