#include "model/flow_config.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <type_traits>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace stepaudio {

namespace {

YAML::Node child(const YAML::Node& n, const char* key, const std::string& path,
                 const std::string& where) {
  if (!n.IsMap() || !n[key]) fail("{}: missing '{}.{}'", where, path, key);
  return n[key];
}

template <typename T>
T read(const YAML::Node& n, const char* key, const std::string& path, const std::string& where) {
  YAML::Node v = child(n, key, path, where);
  try {
    return v.as<T>();
  } catch (const YAML::Exception&) {
    fail("{}: '{}.{}' = '{}' is not a valid {}", where, path, key, v.Scalar(),
         std::is_same_v<T, bool> ? "boolean" : "number");
  }
}

int64_t read_size(const YAML::Node& n, const char* key, const std::string& path,
                  const std::string& where) {
  const int64_t v = read<int64_t>(n, key, path, where);
  if (v < 1) fail("{}: '{}.{}' must be positive, found {}", where, path, key, v);
  return v;
}

// Optional string settings: when present they must name the one variant this port implements.
void expect_str(const YAML::Node& n, const char* key, const char* want, const std::string& path,
                const std::string& where) {
  if (!n[key]) return;
  if (!n[key].IsScalar()) fail("{}: '{}.{}' must be a string", where, path, key);
  const std::string v = n[key].Scalar();
  if (v != want) fail("{}: '{}.{}' is '{}'; only '{}' is supported", where, path, key, v, want);
}

}  // namespace

FlowConfig FlowConfig::parse(const std::string& yaml_text, const std::string& where) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail("{}: not valid YAML: {}", where, e.what());
  }
  FlowConfig c;
  const YAML::Node flow = child(root, "flow", "", where);
  c.input_size = read_size(flow, "input_size", "flow", where);
  c.output_size = read_size(flow, "output_size", "flow", where);
  c.spk_embed_dim = read_size(flow, "spk_embed_dim", "flow", where);
  c.vocab_size = read_size(flow, "vocab_size", "flow", where);
  expect_str(flow, "output_type", "mel", "flow", where);

  const YAML::Node enc = child(flow, "encoder", "flow", where);
  const std::string ep = "flow.encoder";
  FlowEncoderConfig& e = c.encoder;
  e.input_size = read_size(enc, "input_size", ep, where);
  e.output_size = read_size(enc, "output_size", ep, where);
  e.pre_lookahead_len = read_size(enc, "pre_lookahead_len", ep, where);
  e.num_blocks = read_size(enc, "num_blocks", ep, where);
  e.num_up_blocks = read_size(enc, "num_up_blocks", ep, where);
  e.up_stride = read_size(enc, "up_stride", ep, where);
  e.attention_heads = read_size(enc, "attention_heads", ep, where);
  e.linear_units = read_size(enc, "linear_units", ep, where);
  expect_str(enc, "input_layer", "linear", ep, where);
  expect_str(enc, "pos_enc_layer_type", "rel_pos_espnet", ep, where);
  expect_str(enc, "selfattention_layer_type", "rel_selfattn", ep, where);
  if (enc["key_bias"] && !read<bool>(enc, "key_bias", ep, where))
    fail("{}: '{}.key_bias' is false; only key_bias: true is supported", where, ep);
  if (enc["normalize_before"] && !read<bool>(enc, "normalize_before", ep, where))
    fail("{}: '{}.normalize_before' is false; only pre-norm layers are supported", where, ep);
  if (enc["up_scale_factor"]) {
    const double f = read<double>(enc, "up_scale_factor", ep, where);
    if (f != static_cast<double>(e.up_stride))
      fail("{}: '{}.up_scale_factor' {} differs from up_stride {}; only equal values are supported",
           where, ep, f, e.up_stride);
  }

  const YAML::Node dec = child(flow, "decoder", "flow", where);
  c.inference_cfg_rate = dec["inference_cfg_rate"]
                             ? read<double>(dec, "inference_cfg_rate", "flow.decoder", where)
                             : 0.7;
  if (!(c.inference_cfg_rate > 0.0))
    fail("{}: 'flow.decoder.inference_cfg_rate' must be > 0, found {}", where,
         c.inference_cfg_rate);
  const YAML::Node est = child(dec, "estimator", "flow.decoder", where);
  const std::string dp = "flow.decoder.estimator";
  DiTConfig& d = c.dit;
  d.in_channels = read_size(est, "in_channels", dp, where);
  d.out_channels = read_size(est, "out_channels", dp, where);
  d.hidden_size = read_size(est, "hidden_size", dp, where);
  d.depth = read_size(est, "depth", dp, where);
  d.num_heads = read_size(est, "num_heads", dp, where);
  d.head_dim = read_size(est, "head_dim", dp, where);
  const double ratio = est["mlp_ratio"] ? read<double>(est, "mlp_ratio", dp, where) : 4.0;
  d.mlp_hidden = static_cast<int64_t>(static_cast<double>(d.hidden_size) * ratio);
  if (d.mlp_hidden < 1) fail("{}: '{}.mlp_ratio' {} gives no MLP width", where, dp, ratio);

  // Sizes that have to agree for the forward pass to be defined.
  if (e.input_size != e.output_size || c.input_size != e.input_size)
    fail(
        "{}: flow.input_size {}, flow.encoder.input_size {} and flow.encoder.output_size {} must "
        "be equal",
        where, c.input_size, e.input_size, e.output_size);
  if (e.output_size % e.attention_heads != 0)
    fail("{}: flow.encoder.output_size {} is not divisible by attention_heads {}", where,
         e.output_size, e.attention_heads);
  if (e.output_size % 2 != 0)
    fail("{}: flow.encoder.output_size {} must be even (sin/cos positional table)", where,
         e.output_size);
  if (d.out_channels != c.output_size)
    fail("{}: '{}.out_channels' {} differs from flow.output_size {}", where, dp, d.out_channels,
         c.output_size);
  if (d.in_channels != 4 * c.output_size)
    fail("{}: '{}.in_channels' {} must be 4 * flow.output_size = {} (x, mu, speaker, cond)", where,
         dp, d.in_channels, 4 * c.output_size);
  return c;
}

FlowConfig FlowConfig::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot read flow config '{}'", path);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse(ss.str(), path);
}

void FlowConfig::check_weights(const WeightFn& get) const {
  struct Want {
    std::string name;
    Shape shape;
    const char* fields;
  };
  const int64_t D = encoder.output_size, U = encoder.linear_units, H = encoder.attention_heads;
  const int64_t Dk = D / H, K1 = encoder.pre_lookahead_len + 1, Ku = 2 * encoder.up_stride + 1;
  const int64_t C = dit.hidden_size, I = dit.num_heads * dit.head_dim, M = dit.mlp_hidden;
  std::vector<Want> want = {
      {"input_embedding.weight", {vocab_size, input_size}, "flow.vocab_size / flow.input_size"},
      {"spk_embed_affine_layer.weight",
       {output_size, spk_embed_dim},
       "flow.output_size / flow.spk_embed_dim"},
      {"encoder.pre_lookahead_layer.conv1.weight",
       {D, D, K1},
       "encoder.output_size / encoder.pre_lookahead_len"},
      {"encoder.pre_lookahead_layer.conv2.weight", {D, D, 3}, "encoder.output_size"},
      {"encoder.up_layer.conv.weight", {D, D, Ku}, "encoder.output_size / encoder.up_stride"},
      {"encoder.after_norm.weight", {D}, "encoder.output_size"},
      {"encoder_proj.weight", {output_size, D}, "flow.output_size / encoder.output_size"},
      {"decoder.estimator.t_embedder.mlp.0.weight", {C, 256}, "estimator.hidden_size"},
      {"decoder.estimator.in_proj.weight",
       {C, dit.in_channels},
       "estimator.hidden_size / estimator.in_channels"},
      {"decoder.estimator.final_layer.adaLN_modulation.1.weight",
       {2 * C, C},
       "estimator.hidden_size"},
      {"decoder.estimator.final_layer.linear.weight",
       {dit.out_channels, C},
       "estimator.out_channels / estimator.hidden_size"},
  };
  for (const char* embed : {"encoder.embed.out.0.weight", "encoder.up_embed.out.0.weight"})
    want.push_back({embed, {D, input_size}, "encoder.output_size / encoder.input_size"});
  auto conformer = [&](const std::string& p) {
    want.push_back({p + ".self_attn.linear_q.weight", {D, D}, "encoder.output_size"});
    want.push_back({p + ".self_attn.linear_pos.weight", {D, D}, "encoder.output_size"});
    want.push_back(
        {p + ".self_attn.pos_bias_u", {H, Dk}, "encoder.attention_heads / encoder.output_size"});
    want.push_back(
        {p + ".feed_forward.w_1.weight", {U, D}, "encoder.linear_units / encoder.output_size"});
  };
  for (int64_t i = 0; i < encoder.num_blocks; ++i) conformer(fmt::format("encoder.encoders.{}", i));
  for (int64_t i = 0; i < encoder.num_up_blocks; ++i)
    conformer(fmt::format("encoder.up_encoders.{}", i));
  for (int64_t i = 0; i < dit.depth; ++i) {
    const std::string p = fmt::format("decoder.estimator.blocks.{}", i);
    want.push_back({p + ".attn.to_q.weight",
                    {I, C},
                    "estimator.num_heads * estimator.head_dim / estimator.hidden_size"});
    want.push_back({p + ".attn.q_norm.weight", {dit.head_dim}, "estimator.head_dim"});
    want.push_back({p + ".mlp.fc1.weight", {M, C}, "estimator.mlp_ratio / estimator.hidden_size"});
    want.push_back({p + ".conv.block.1.weight", {C, C, 3}, "estimator.hidden_size"});
    want.push_back({p + ".adaLN_modulation.1.weight", {9 * C, C}, "estimator.hidden_size"});
  }
  for (const Want& w : want) {
    Tensor t = get(w.name);
    if (!t.defined()) fail("flow weights: tensor '{}' is missing (config: {})", w.name, w.fields);
    if (t.shape() != w.shape)
      fail("flow config disagrees with the weights: {} give '{}' the shape {}, the file has {}",
           w.fields, w.name, shape_str(w.shape), shape_str(t.shape()));
  }
  // More blocks in the file than in the config is a mismatch too (a strict load would fail).
  const std::pair<std::string, int64_t> counts[] = {
      {"encoder.encoders.{}.norm_mha.weight", encoder.num_blocks},
      {"encoder.up_encoders.{}.norm_mha.weight", encoder.num_up_blocks},
      {"decoder.estimator.blocks.{}.attn.to_q.weight", dit.depth}};
  const char* fields[] = {"encoder.num_blocks", "encoder.num_up_blocks", "estimator.depth"};
  for (size_t i = 0; i < 3; ++i) {
    const std::string extra = fmt::format(fmt::runtime(counts[i].first), counts[i].second);
    if (get(extra).defined())
      fail("flow config disagrees with the weights: {} is {} but the file has '{}'", fields[i],
           counts[i].second, extra);
  }
}

}  // namespace stepaudio
