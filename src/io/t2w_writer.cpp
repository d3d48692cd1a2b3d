#include "io/t2w_writer.h"

#include <cmath>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/t2w_weights.h"
#include "model/voice.h"

namespace stepaudio {

namespace fs = std::filesystem;

T2wPreset t2w_preset(const std::string& name) {
  T2wPreset p;
  if (name == "full") return p;
  if (name != "tiny") fail("unknown token2wav preset '{}' (expected tiny or full)", name);
  FlowConfig& c = p.flow;
  c.input_size = 64;
  c.encoder.input_size = c.encoder.output_size = 64;
  c.encoder.num_blocks = c.encoder.num_up_blocks = 1;
  c.encoder.attention_heads = 2;
  c.encoder.linear_units = 128;
  c.dit.hidden_size = 64;
  c.dit.depth = 2;
  c.dit.num_heads = 2;
  c.dit.head_dim = 32;
  c.dit.mlp_hidden = 256;
  p.hift_base_channels = p.hift_cond_channels = 64;
  return p;
}

std::string flow_yaml(const FlowConfig& c) {
  const FlowEncoderConfig& e = c.encoder;
  const DiTConfig& d = c.dit;
  const double mlp_ratio = static_cast<double>(d.mlp_hidden) / static_cast<double>(d.hidden_size);
  return fmt::format(
      "flow: !new:cosyvoice2.flow.flow.CausalMaskedDiffWithXvec\n"
      "    input_size: {}\n"
      "    output_size: {}\n"
      "    spk_embed_dim: {}\n"
      "    output_type: 'mel'\n"
      "    vocab_size: {}\n"
      "    encoder: !new:cosyvoice2.transformer.upsample_encoder_v2.UpsampleConformerEncoderV2\n"
      "        input_size: {}\n"
      "        output_size: {}\n"
      "        input_layer: 'linear'\n"
      "        pre_lookahead_len: {}\n"
      "        num_blocks: {}\n"
      "        num_up_blocks: {}\n"
      "        up_stride: {}\n"
      "        up_scale_factor: {}\n"
      "        attention_heads: {}\n"
      "        pos_enc_layer_type: 'rel_pos_espnet'\n"
      "        selfattention_layer_type: 'rel_selfattn'\n"
      "        key_bias: true\n"
      "        linear_units: {}\n"
      "        dropout_rate: 0.1\n"
      "        positional_dropout_rate: 0.1\n"
      "        attention_dropout_rate: 0.1\n"
      "        normalize_before: True\n"
      "    decoder: !new:cosyvoice2.flow.flow_matching.CausalConditionalCFM\n"
      "        inference_cfg_rate: {}\n"
      "        estimator: !new:cosyvoice2.flow.decoder_dit.DiT\n"
      "            in_channels: {}\n"
      "            out_channels: {}\n"
      "            mlp_ratio: {:.1f}\n"
      "            depth: {}\n"
      "            num_heads: {}\n"
      "            head_dim: {}\n"
      "            hidden_size: {}\n",
      c.input_size, c.output_size, c.spk_embed_dim, c.vocab_size, e.input_size, e.output_size,
      e.pre_lookahead_len, e.num_blocks, e.num_up_blocks, e.up_stride, e.up_stride,
      e.attention_heads, e.linear_units, c.inference_cfg_rate, d.in_channels, d.out_channels,
      mlp_ratio, d.depth, d.num_heads, d.head_dim, d.hidden_size);
}

namespace {

void add_linear(TensorLayout& l, const std::string& p, int64_t out, int64_t in, bool bias = true) {
  l.push_back({p + ".weight", {out, in}});
  if (bias) l.push_back({p + ".bias", {out}});
}

void add_norm(TensorLayout& l, const std::string& p, int64_t n) {
  l.push_back({p + ".weight", {n}});
  l.push_back({p + ".bias", {n}});
}

void add_conformer_layer(TensorLayout& l, const std::string& p, const FlowEncoderConfig& e) {
  const int64_t D = e.output_size, H = e.attention_heads;
  l.push_back({p + ".self_attn.pos_bias_u", {H, D / H}});
  l.push_back({p + ".self_attn.pos_bias_v", {H, D / H}});
  for (const char* n : {"linear_q", "linear_k", "linear_v", "linear_out"})
    add_linear(l, p + ".self_attn." + n, D, D);
  add_linear(l, p + ".self_attn.linear_pos", D, D, false);
  add_linear(l, p + ".feed_forward.w_1", e.linear_units, D);
  add_linear(l, p + ".feed_forward.w_2", D, e.linear_units);
  add_norm(l, p + ".norm_ff", D);
  add_norm(l, p + ".norm_mha", D);
}

// A weight-normed conv as PyTorch >= 2.1 stores it: bias, g [dim0, 1, 1], v. The bias has one
// entry per output channel: axis 0 of a Conv1d weight, axis 1 of a ConvTranspose1d one.
void add_wn_conv(TensorLayout& l, const std::string& p, const Shape& v, bool transposed = false) {
  l.push_back({p + ".bias", {transposed ? v[1] : v[0]}});
  l.push_back({p + ".parametrizations.weight.original0", {v[0], 1, 1}});
  l.push_back({p + ".parametrizations.weight.original1", v});
}

void add_resblock(TensorLayout& l, const std::string& p, int64_t ch, int64_t k) {
  for (const char* convs : {"convs1", "convs2"})
    for (int j = 0; j < 3; ++j) add_wn_conv(l, fmt::format("{}.{}.{}", p, convs, j), {ch, ch, k});
  for (const char* acts : {"activations1", "activations2"})
    for (int j = 0; j < 3; ++j) l.push_back({fmt::format("{}.{}.{}.alpha", p, acts, j), {ch}});
}

}  // namespace

TensorLayout flow_weight_layout(const FlowConfig& c) {
  const FlowEncoderConfig& e = c.encoder;
  const DiTConfig& d = c.dit;
  const int64_t D = e.output_size, O = c.output_size, C = d.hidden_size;
  TensorLayout l;
  l.push_back({"input_embedding.weight", {c.vocab_size, c.input_size}});
  add_linear(l, "spk_embed_affine_layer", O, c.spk_embed_dim);
  add_linear(l, "encoder.embed.out.0", D, e.input_size);
  add_norm(l, "encoder.embed.out.1", D);
  add_norm(l, "encoder.after_norm", D);
  l.push_back({"encoder.pre_lookahead_layer.conv1.weight", {D, D, e.pre_lookahead_len + 1}});
  l.push_back({"encoder.pre_lookahead_layer.conv1.bias", {D}});
  l.push_back({"encoder.pre_lookahead_layer.conv2.weight", {D, D, 3}});
  l.push_back({"encoder.pre_lookahead_layer.conv2.bias", {D}});
  for (int64_t i = 0; i < e.num_blocks; ++i)
    add_conformer_layer(l, fmt::format("encoder.encoders.{}", i), e);
  l.push_back({"encoder.up_layer.conv.weight", {D, D, 2 * e.up_stride + 1}});
  l.push_back({"encoder.up_layer.conv.bias", {D}});
  add_linear(l, "encoder.up_embed.out.0", D, e.input_size);
  add_norm(l, "encoder.up_embed.out.1", D);
  for (int64_t i = 0; i < e.num_up_blocks; ++i)
    add_conformer_layer(l, fmt::format("encoder.up_encoders.{}", i), e);
  add_linear(l, "encoder_proj", O, D);
  const std::string est = "decoder.estimator";
  add_linear(l, est + ".t_embedder.mlp.0", C, 256);
  add_linear(l, est + ".t_embedder.mlp.2", C, C);
  add_linear(l, est + ".in_proj", C, d.in_channels);
  const int64_t I = d.num_heads * d.head_dim;
  for (int64_t i = 0; i < d.depth; ++i) {
    const std::string b = fmt::format("{}.blocks.{}", est, i);
    add_linear(l, b + ".attn.to_q", I, C);
    add_linear(l, b + ".attn.to_k", I, C);
    add_linear(l, b + ".attn.to_v", I, C);
    add_norm(l, b + ".attn.q_norm", d.head_dim);
    add_norm(l, b + ".attn.k_norm", d.head_dim);
    add_linear(l, b + ".attn.proj", C, I);
    add_linear(l, b + ".mlp.fc1", d.mlp_hidden, C);
    add_linear(l, b + ".mlp.fc2", C, d.mlp_hidden);
    l.push_back({b + ".conv.block.1.weight", {C, C, 3}});
    l.push_back({b + ".conv.block.1.bias", {C}});
    add_norm(l, b + ".conv.block.3", C);
    l.push_back({b + ".conv.block.6.weight", {C, C, 3}});
    l.push_back({b + ".conv.block.6.bias", {C}});
    add_linear(l, b + ".adaLN_modulation.1", 9 * C, C);
  }
  add_linear(l, est + ".final_layer.adaLN_modulation.1", 2 * C, C);
  add_linear(l, est + ".final_layer.linear", d.out_channels, C);
  return l;
}

TensorLayout hift_weight_layout(int64_t B, int64_t cond, int64_t in) {
  // The HiFT defaults (spec §7.6): upsampling 8, 5, 3 with kernels 16, 11, 7; resblock kernels
  // 3, 7, 11; source resblock kernels 7, 7, 11; an 18-channel (16-point) iSTFT.
  const int64_t rates[3] = {8, 5, 3}, up_k[3] = {16, 11, 7}, rb_k[3] = {3, 7, 11},
                src_k[3] = {7, 7, 11}, stft_ch = 18;
  TensorLayout l;
  l.push_back({"m_source.l_linear.weight", {1, 9}});
  l.push_back({"m_source.l_linear.bias", {1}});
  add_wn_conv(l, "conv_pre", {B, in, 7});
  for (int i = 0; i < 3; ++i)
    add_wn_conv(l, fmt::format("ups.{}", i), {B >> i, B >> (i + 1), up_k[i]}, true);
  for (int i = 0; i < 3; ++i) {
    int64_t u = 1;  // the source STFT frames per decoder frame after stage i
    for (int j = i + 1; j < 3; ++j) u *= rates[j];
    l.push_back(
        {fmt::format("source_downs.{}.weight", i), {B >> (i + 1), stft_ch, u == 1 ? 1 : 2 * u}});
    l.push_back({fmt::format("source_downs.{}.bias", i), {B >> (i + 1)}});
  }
  for (int i = 0; i < 3; ++i)
    add_resblock(l, fmt::format("source_resblocks.{}", i), B >> (i + 1), src_k[i]);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      add_resblock(l, fmt::format("resblocks.{}", i * 3 + j), B >> (i + 1), rb_k[j]);
  add_wn_conv(l, "conv_post", {stft_ch, B >> 3, 7});
  for (int i = 0; i < 5; ++i)
    add_wn_conv(l, fmt::format("f0_predictor.condnet.{}", 2 * i), {cond, i == 0 ? in : cond, 3});
  add_linear(l, "f0_predictor.classifier", 1, cond);
  return l;
}

uint64_t layout_params(const TensorLayout& layout) {
  uint64_t n = 0;
  for (const auto& [name, shape] : layout) {
    uint64_t e = 1;
    for (int64_t d : shape) e *= static_cast<uint64_t>(d);
    n += e;
  }
  return n;
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Random values that keep activations in range: weights N(0, 1/fan_in), norm weights near 1,
// small biases, weight-norm g near 1 (so W rows have about unit norm, as N(0, 1/fan_in) rows
// do), Snake alphas near 1, an f0 classifier that puts f0 around 150 Hz, and a quiet conv_post.
Tensor random_tensor(const std::string& name, const Shape& shape, std::mt19937_64& rng) {
  Tensor t = Tensor::empty(shape, DType::F32);
  float* p = t.data<float>();
  const int64_t n = t.numel();
  std::normal_distribution<float> normal(0.f, 1.f);
  auto fill = [&](float mean, float std) {
    for (int64_t i = 0; i < n; ++i) p[i] = mean + std * normal(rng);
  };
  const int64_t fan_in = shape.size() >= 2 && shape[0] > 0 ? n / shape[0] : 1;
  if (name == "conv_post.parametrizations.weight.original0") {
    fill(0.1f, 0.f);  // small decoder outputs: magnitudes near exp(bias), phases near 0
  } else if (name == "conv_post.bias") {
    // The first half is the log-magnitude of the iSTFT bins: exp(0.5) keeps the random audio
    // well inside the +-0.99 clamp instead of saturating it.
    for (int64_t i = 0; i < n; ++i) p[i] = (i < n / 2 ? 0.5f : 0.f) + 0.02f * normal(rng);
  } else if (name == "f0_predictor.classifier.weight") {
    fill(0.f, 100.f / std::sqrt(static_cast<float>(fan_in)));
  } else if (name == "f0_predictor.classifier.bias") {
    fill(150.f, 0.f);
  } else if (ends_with(name, ".alpha")) {
    for (int64_t i = 0; i < n; ++i) p[i] = 1.f + 0.1f * std::fabs(normal(rng));
  } else if (ends_with(name, "original0")) {
    for (int64_t i = 0; i < n; ++i) p[i] = std::exp(0.1f * normal(rng));
  } else if (ends_with(name, "original1")) {
    fill(0.f, 1.f);  // only its direction matters
  } else if (ends_with(name, "pos_bias_u") || ends_with(name, "pos_bias_v")) {
    fill(0.f, 0.1f);
  } else if (shape.size() == 1 && ends_with(name, ".weight")) {
    fill(1.f, 0.1f);  // LayerNorm scales
  } else if (shape.size() == 1) {
    fill(0.f, 0.02f);  // biases, LayerNorm shifts
  } else if (name == "input_embedding.weight") {
    fill(0.f, 1.f);
  } else {
    fill(0.f, 1.f / std::sqrt(static_cast<float>(fan_in)));
  }
  return t;
}

void write_layout(const std::string& path, const TensorLayout& layout, std::mt19937_64& rng) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  tensors.reserve(layout.size());
  for (const auto& [name, shape] : layout)
    tensors.emplace_back(name, random_tensor(name, shape, rng));
  save_safetensors(path, tensors, {{"format", "pt"}});
}

void write_text_atomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) fail("cannot write {}", tmp.string());
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !ok) {
      std::remove(tmp.c_str());
      fail("writing {} failed (disk full?)", tmp.string());
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail("cannot move {} into place", path.string());
  }
}

}  // namespace

std::map<std::string, Tensor> random_t2w_weights(const TensorLayout& layout, uint64_t seed,
                                                 const std::string& where) {
  std::mt19937_64 rng(seed);
  std::vector<std::pair<std::string, Tensor>> raw;
  for (const auto& [name, shape] : layout) {
    Tensor t = Tensor::empty(shape, DType::F32);
    const int64_t n = t.numel();
    const int64_t fan_in = shape.size() >= 2 && shape[0] > 0 ? n / shape[0] : 1;
    const bool vec = shape.size() == 1;
    const bool ones = vec && (name.ends_with(".weight") || name.ends_with("alpha"));
    const bool wn_g = name.ends_with("original0") || name.ends_with("weight_g");
    const float a = vec ? (ones ? 0.1f : 0.02f) : 1.f / std::sqrt(static_cast<float>(fan_in));
    float* p = t.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      const float u = static_cast<float>(rng() >> 40) * 0x1.0p-24f * 2.f - 1.f;
      p[i] = wn_g ? 1.f + 0.1f * u : (ones ? 1.f : 0.f) + a * u;
    }
    raw.emplace_back(name, std::move(t));
  }
  return fold_t2w_weights(std::move(raw), where);
}

T2wWriteSummary write_random_token2wav(const std::string& dir, const T2wPreset& preset,
                                       uint64_t seed, int64_t voice_codes) {
  if (voice_codes < 1) fail("a voice needs at least one prompt code, asked for {}", voice_codes);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) fail("cannot create the folder {}", dir);
  const fs::path d(dir);
  T2wWriteSummary s;
  const std::string yaml = flow_yaml(preset.flow);
  FlowConfig::parse(yaml, "generated flow.yaml");  // never write a file we cannot read back
  write_text_atomic(d / "flow.yaml", yaml);
  s.files.push_back("flow.yaml");

  std::mt19937_64 rng(seed);
  const TensorLayout flow = flow_weight_layout(preset.flow);
  write_layout((d / "flow.safetensors").string(), flow, rng);
  s.flow_params = layout_params(flow);
  s.files.push_back("flow.safetensors");
  const TensorLayout hift = hift_weight_layout(preset.hift_base_channels, preset.hift_cond_channels,
                                               preset.flow.output_size);
  write_layout((d / "hift.safetensors").string(), hift, rng);
  s.hift_params = layout_params(hift);
  s.files.push_back("hift.safetensors");

  // A random voice: codes, a mel in the range of real log-mels, a unit-scale embedding.
  Voice v;
  std::uniform_int_distribution<int32_t> code(0, static_cast<int32_t>(kSpeechCodebookSize) - 1);
  for (int64_t i = 0; i < voice_codes; ++i) v.prompt_codes.push_back(code(rng));
  std::normal_distribution<float> normal(0.f, 1.f);
  v.prompt_mel = Tensor::empty({2 * voice_codes, kFlowMels}, DType::F32);
  for (int64_t i = 0; i < v.prompt_mel.numel(); ++i)
    v.prompt_mel.data<float>()[i] = -6.f + 2.f * normal(rng);
  v.speaker_embedding = Tensor::empty({kSpeakerEmbeddingDim}, DType::F32);
  for (int64_t i = 0; i < kSpeakerEmbeddingDim; ++i)
    v.speaker_embedding.data<float>()[i] = normal(rng);
  save_voice((d / "voice.safetensors").string(), v);
  s.files.push_back("voice.safetensors");
  return s;
}

}  // namespace stepaudio
