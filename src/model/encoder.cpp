#include "model/encoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/fused_ops.h"
#include "ops/ops.h"

namespace stepaudio {

namespace {
// Python floor division (the official length formulas are written with //).
int64_t floordiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

constexpr float kMasked = -1e10f;  // mask_to_bias of the official code
constexpr float kLayerNormEps = 1e-5f;
}  // namespace

int64_t audio_wav_len(int64_t mel_frames) { return mel_frames - 2; }
int64_t audio_encoder_len(int64_t mel_frames) {
  return floordiv(floordiv(audio_wav_len(mel_frames) + 1, 2), 2);
}
int64_t audio_adaptor_len(int64_t mel_frames) {
  return floordiv(audio_encoder_len(mel_frames) - 1, 2) + 1;
}

namespace {
// A CPU copy of a (possibly device) tensor, for outputs and traces.
Tensor on_host(const Tensor& t) { return t.device().is_cpu() ? t.clone() : t.to(Device::cpu()); }
}  // namespace

AudioEncoder::AudioEncoder(const AudioEncoderConfig& cfg, const WeightFn& get, Device device,
                           DType cuda_weights)
    : cfg_(cfg), device_(device), adaptor_(cfg, get) {
  if (cuda_weights != DType::BF16 && cuda_weights != DType::F16 && cuda_weights != DType::F32)
    fail("AudioEncoder: CUDA weights must be BF16, F16 or F32, got {}", dtype_name(cuda_weights));
  const int64_t C = cfg.n_audio_state;
  if (cfg.n_audio_head < 1 || C % cfg.n_audio_head != 0)
    fail("AudioEncoder: n_audio_state {} is not divisible by n_audio_head {}", C, cfg.n_audio_head);
  conv1_w_ = expect_weight(get, "encoder.conv1.weight", {C, cfg.n_mels, 3});
  conv1_b_ = expect_vector_f32(get, "encoder.conv1.bias", C);
  conv2_w_ = expect_weight(get, "encoder.conv2.weight", {C, C, 3});
  conv2_b_ = expect_vector_f32(get, "encoder.conv2.bias", C);
  pos_ = expect_weight(get, "encoder.positional_embedding.weight", {cfg.n_audio_ctx, C});
  after_w_ = expect_vector_f32(get, "encoder.after_norm.weight", C);
  after_b_ = expect_vector_f32(get, "encoder.after_norm.bias", C);
  for (int64_t i = 0; i < cfg.n_audio_layer; ++i) {
    const std::string p = fmt::format("encoder.blocks.{}.", i);
    Block b;
    b.attn_ln_w = expect_vector_f32(get, p + "attn_ln.weight", C);
    b.attn_ln_b = expect_vector_f32(get, p + "attn_ln.bias", C);
    b.q_w = expect_weight(get, p + "attn.query.weight", {C, C});
    b.q_b = expect_vector_f32(get, p + "attn.query.bias", C);
    b.k_w = expect_weight(get, p + "attn.key.weight", {C, C});
    b.v_w = expect_weight(get, p + "attn.value.weight", {C, C});
    b.v_b = expect_vector_f32(get, p + "attn.value.bias", C);
    b.o_w = expect_weight(get, p + "attn.out.weight", {C, C});
    b.o_b = expect_vector_f32(get, p + "attn.out.bias", C);
    b.mlp_ln_w = expect_vector_f32(get, p + "mlp_ln.weight", C);
    b.mlp_ln_b = expect_vector_f32(get, p + "mlp_ln.bias", C);
    b.fc1_w = expect_weight(get, p + "mlp.0.weight", {4 * C, C});
    b.fc1_b = expect_vector_f32(get, p + "mlp.0.bias", 4 * C);
    b.fc2_w = expect_weight(get, p + "mlp.2.weight", {C, 4 * C});
    b.fc2_b = expect_vector_f32(get, p + "mlp.2.bias", C);
    blocks_.push_back(std::move(b));
  }
  if (device.is_cuda()) {
    auto matrix = [&](Tensor& t) {
      t = (t.dtype() == cuda_weights ? t : t.to_dtype(cuda_weights)).to(device);
    };
    auto vec = [&](Tensor& t) { t = t.to_dtype(DType::F32).to(device); };
    matrix(conv1_w_);
    matrix(conv2_w_);
    for (Tensor* t : {&conv1_b_, &conv2_b_, &pos_, &after_w_, &after_b_}) vec(*t);
    for (Block& b : blocks_) {
      // One product for q, k and v (fewer, fuller GEMM launches); the key has no bias.
      auto as_q = [&](const Tensor& t) {
        return t.dtype() == b.q_w.dtype() ? t : t.to_dtype(b.q_w.dtype());
      };
      b.qkv_w = concat_rows({b.q_w, as_q(b.k_w), as_q(b.v_w)});
      b.qkv_b = concat_rows(
          {b.q_b.to_dtype(DType::F32), Tensor::zeros({C}, DType::F32), b.v_b.to_dtype(DType::F32)});
      b.q_w = b.k_w = b.v_w = b.q_b = b.v_b = Tensor();
      for (Tensor* t : {&b.qkv_w, &b.o_w, &b.fc1_w, &b.fc2_w}) matrix(*t);
      for (Tensor* t : {&b.attn_ln_w, &b.attn_ln_b, &b.qkv_b, &b.o_b, &b.mlp_ln_w, &b.mlp_ln_b,
                        &b.fc1_b, &b.fc2_b})
        vec(*t);
    }
    adaptor_.upload(device, cuda_weights);
  }
}

// Pre-LN residual block: x += attn(attn_ln(x), key_bias); x += mlp(mlp_ln(x)). The residual adds
// go into the fused ops with the bias of the linear before them and the norm after them; with
// bf16 weights on the GPU the norms and the GELU write bf16, which the next linear reads as is.
Tensor AudioEncoder::block(const Block& b, const Tensor& x_in, const Tensor& key_bias) const {
  const int64_t B = x_in.dim(0), T = x_in.dim(1), C = x_in.dim(2), H = cfg_.n_audio_head, D = C / H;
  const DType act = device_.is_cuda() && b.o_w.dtype() == DType::BF16 ? DType::BF16 : DType::F32;
  Tensor x = x_in;  // updated in place: the caller's x is not used after this block
  Tensor h = ops::layer_norm_to(x, b.attn_ln_w, b.attn_ln_b, kLayerNormEps, act);
  // q, k, v for the attention. On CUDA one product, then the bias add, the rounding to bf16
  // (which the tensor-core attention reads) and the split into q, k, v in one pass.
  Tensor q, k, v;
  if (b.qkv_w.defined()) {
    const Tensor qkv = ops::bias_cast_split(ops::linear(h, b.qkv_w), b.qkv_b, 3, act);
    q = qkv.slice_rows(0, 1).reshape({B, T, H, D});
    k = qkv.slice_rows(1, 2).reshape({B, T, H, D});
    v = qkv.slice_rows(2, 3).reshape({B, T, H, D});
  } else {
    q = ops::linear(h, b.q_w, b.q_b).reshape({B, T, H, D});
    k = ops::linear(h, b.k_w).reshape({B, T, H, D});  // the key projection has no bias
    v = ops::linear(h, b.v_w, b.v_b).reshape({B, T, H, D});
  }
  // The official code scales q and k by D^-0.25 each; the product is the usual 1/sqrt(D).
  ops::AttentionOptions opt;
  opt.scale = 1.0f / std::sqrt(static_cast<float>(D));
  opt.key_bias = key_bias;
  opt.compute = act;  // bf16 weights: the attention runs on the tensor cores too
  opt.out = act;      // and hands bf16 to the output projection
  Tensor a = ops::attention(q, k, v, opt).reshape({B, T, C});
  h = ops::add_layer_norm_(x, ops::linear(a, b.o_w), b.o_b, b.mlp_ln_w, b.mlp_ln_b, kLayerNormEps,
                           act);
  h = ops::bias_gelu(ops::linear(h, b.fc1_w), b.fc1_b, act);
  ops::add_residual_(x, ops::linear(h, b.fc2_w), b.fc2_b);
  return x;
}

std::vector<Tensor> AudioEncoder::encode(const std::vector<Tensor>& mels,
                                         EncoderTrace* trace) const {
  if (mels.empty()) fail("AudioEncoder::encode: no audio chunks given");
  const int64_t B = static_cast<int64_t>(mels.size()), M = cfg_.n_mels, C = cfg_.n_audio_state;
  int64_t T = 0;
  for (size_t i = 0; i < mels.size(); ++i) {
    const Tensor& m = mels[i];
    if (!m.defined() || m.dtype() != DType::F32 || m.ndim() != 2 || m.dim(0) != M)
      fail("audio chunk {}: expected an F32 log-mel [{}, frames], found {}", i, M,
           m.defined() ? m.desc() : "nothing");
    if (m.dim(1) < 3)
      fail("audio chunk {}: {} mel frames is too short (at least 3, i.e. one audio sample)", i,
           m.dim(1));
    T = std::max(T, m.dim(1));
  }
  const int64_t T2 = (T + 1) / 2;
  if (T2 > cfg_.n_audio_ctx)
    fail("audio chunk of {} mel frames is too long: the encoder takes at most {} frames ({} s)", T,
         2 * cfg_.n_audio_ctx, 2 * cfg_.n_audio_ctx / 100.0);

  // padding_mels: right-pad every chunk with 0.0 to the longest one. The batch is packed on the
  // host (a few MB at most) and uploaded once.
  Tensor x = Tensor::zeros({B, M, T}, DType::F32);
  for (int64_t b = 0; b < B; ++b) {
    const Tensor& given = mels[static_cast<size_t>(b)];
    const Tensor m = given.device().is_cpu() ? given : given.to(Device::cpu());
    const int64_t Tk = m.dim(1);
    for (int64_t c = 0; c < M; ++c)
      std::memcpy(x.data<float>() + (b * M + c) * T, m.data<float>() + c * Tk,
                  static_cast<size_t>(Tk) * sizeof(float));
  }

  if (device_.is_cuda()) x = x.to(device_);
  x = ops::conv1d(x, conv1_w_, conv1_b_, 1, 1);
  ops::gelu_(x);
  x = ops::conv1d(x, conv2_w_, conv2_b_, 2, 1);
  ops::gelu_(x);
  x = ops::transpose_last2(x);  // [B, T2, C]
  ops::add_(x, pos_.slice_rows(0, T2));

  // Key j of the stride-2 sequence stands for mel frame 2j + (T + 1) % 2 of the padded batch;
  // it is used when that frame is inside the chunk's wav_len.
  Tensor key_bias = Tensor::empty({B, T2}, DType::F32);
  const int64_t offset = (T + 1) % 2;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t wav_len = audio_wav_len(mels[static_cast<size_t>(b)].dim(1));
    for (int64_t j = 0; j < T2; ++j)
      key_bias.data<float>()[b * T2 + j] = 2 * j + offset < wav_len ? 0.0f : kMasked;
  }
  const Tensor host_key_bias = key_bias;
  if (device_.is_cuda()) key_bias = key_bias.to(device_);
  if (trace) {
    trace->blocks_in.clear();
    for (int64_t b = 0; b < B; ++b)
      trace->blocks_in.push_back(on_host(x.slice_rows(b, b + 1).reshape({T2, C}).slice_rows(
          0, (mels[static_cast<size_t>(b)].dim(1) + 1) / 2)));
    trace->key_bias = host_key_bias.clone();
  }

  for (const Block& blk : blocks_) x = block(blk, x, key_bias);
  x = ops::avg_pool_time(x);  // [B, T3, C]
  x = ops::layer_norm(x, after_w_, after_b_);

  if (trace) {
    trace->encoder_out.clear();
    trace->encoder_len.clear();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t E = audio_encoder_len(mels[static_cast<size_t>(b)].dim(1));
      trace->encoder_len.push_back(E);
      trace->encoder_out.push_back(on_host(
          x.slice_rows(b, b + 1).reshape({x.dim(1), C}).slice_rows(0, std::max<int64_t>(E, 0))));
    }
  }

  // The adaptor runs on the whole padded batch (its conv reads one row past a chunk's end).
  Tensor y = adaptor_.forward(x);  // [B, T4, llm_dim]
  std::vector<Tensor> out;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = std::max<int64_t>(audio_adaptor_len(mels[static_cast<size_t>(b)].dim(1)), 0);
    SA_CHECK(n <= y.dim(1), "adaptor gave {} rows, chunk {} needs {}", y.dim(1), b, n);
    out.push_back(on_host(y.slice_rows(b, b + 1).reshape({y.dim(1), y.dim(2)}).slice_rows(0, n)));
  }
  return out;
}

}  // namespace stepaudio
