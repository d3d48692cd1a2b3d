#include <functional>
#include <regex>

#include "flow_golden.h"

namespace stepaudio {
namespace {

using flow_test::data;
using flow_test::t2w_dir;

std::string tiny_yaml() { return testing_paths::read_text(t2w_dir() + "/flow.yaml"); }

// The tiny flow.yaml with one `key: value` line changed.
std::string with(const std::string& key, const std::string& value) {
  const std::string y = tiny_yaml();
  const std::regex re("(\\n\\s*" + key + ":)[^\\n]*");
  EXPECT_TRUE(std::regex_search(y, re)) << key;
  return std::regex_replace(y, re, "$1 " + value, std::regex_constants::format_first_only);
}

void expect_error(const std::function<void()>& fn, std::vector<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << "\nlacks: " << n;
  }
}

TEST(FlowConfig, ParsesTheTinyConfig) {
  const FlowConfig c = FlowConfig::parse(tiny_yaml(), "tiny");
  EXPECT_EQ(c.input_size, 64);
  EXPECT_EQ(c.output_size, 80);
  EXPECT_EQ(c.spk_embed_dim, 192);
  EXPECT_EQ(c.vocab_size, 6561);
  EXPECT_EQ(c.encoder.output_size, 64);
  EXPECT_EQ(c.encoder.num_blocks, 1);
  EXPECT_EQ(c.encoder.num_up_blocks, 1);
  EXPECT_EQ(c.encoder.attention_heads, 2);
  EXPECT_EQ(c.encoder.linear_units, 128);
  EXPECT_EQ(c.encoder.pre_lookahead_len, 3);
  EXPECT_EQ(c.encoder.up_stride, 2);
  EXPECT_DOUBLE_EQ(c.inference_cfg_rate, 0.7);
  EXPECT_EQ(c.dit.in_channels, 320);
  EXPECT_EQ(c.dit.out_channels, 80);
  EXPECT_EQ(c.dit.hidden_size, 64);
  EXPECT_EQ(c.dit.depth, 2);
  EXPECT_EQ(c.dit.num_heads, 2);
  EXPECT_EQ(c.dit.head_dim, 32);
  EXPECT_EQ(c.dit.mlp_hidden, 256);
  EXPECT_NO_THROW(c.check_weights(data().weights.fn()));
}

TEST(FlowConfig, ParsesTheRealConfig) {
  const FlowConfig c =
      FlowConfig::load((testing_paths::shared() / "stepaudio2-mini/token2wav/flow.yaml").string());
  EXPECT_EQ(c.input_size, 512);
  EXPECT_EQ(c.encoder.output_size, 512);
  EXPECT_EQ(c.encoder.num_blocks, 6);
  EXPECT_EQ(c.encoder.num_up_blocks, 4);
  EXPECT_EQ(c.encoder.attention_heads, 8);
  EXPECT_EQ(c.encoder.linear_units, 2048);
  EXPECT_EQ(c.dit.hidden_size, 512);
  EXPECT_EQ(c.dit.depth, 16);
  EXPECT_EQ(c.dit.num_heads, 8);
  EXPECT_EQ(c.dit.head_dim, 64);
  EXPECT_EQ(c.dit.mlp_hidden, 2048);
  // Its sizes are not those of the tiny weights: the check names a field and a tensor.
  expect_error(
      [&] { c.check_weights(data().weights.fn()); },
      {"flow.vocab_size / flow.input_size", "input_embedding.weight", "[6561, 512]", "[6561, 64]"});
}

TEST(FlowConfig, SizesThatDisagreeWithTheWeights) {
  auto check = [](const std::string& yaml) {
    FlowConfig::parse(yaml, "edited").check_weights(data().weights.fn());
  };
  expect_error([&] { check(with("linear_units", "256")); },
               {"encoder.linear_units", "encoder.encoders.0.feed_forward.w_1.weight", "[256, 64]",
                "[128, 64]"});
  expect_error([&] { check(with("attention_heads", "4")); },
               {"encoder.attention_heads", "pos_bias_u", "[4, 16]", "[2, 32]"});
  expect_error([&] { check(with("num_blocks", "2")); }, {"tensor 'encoder.encoders.1.", "missing"});
  expect_error([&] { check(with("depth", "1")); },
               {"estimator.depth is 1", "decoder.estimator.blocks.1."});
  expect_error([&] { check(with("head_dim", "16")); },
               {"estimator.num_heads * estimator.head_dim", "attn.to_q.weight", "[32, 64]"});
  expect_error([&] { check(with("pre_lookahead_len", "2")); },
               {"encoder.pre_lookahead_len", "conv1.weight", "[64, 64, 3]", "[64, 64, 4]"});
  // Building the model runs the same check first.
  expect_error(
      [&] { Flow(FlowConfig::parse(with("mlp_ratio", "2.0"), "edited"), data().weights.fn()); },
      {"estimator.mlp_ratio", "mlp.fc1.weight", "[128, 64]", "[256, 64]"});
}

TEST(FlowConfig, RejectsBadFiles) {
  expect_error([] { FlowConfig::parse("flow: [1, 2", "broken.yaml"); }, {"broken.yaml", "YAML"});
  expect_error([] { FlowConfig::parse("other: 1\n", "x.yaml"); }, {"x.yaml", "'.flow'"});
  expect_error([] { FlowConfig::parse(with("vocab_size", "many"), "x.yaml"); },
               {"flow.vocab_size", "many", "number"});
  expect_error([] { FlowConfig::parse(with("num_up_blocks", "0"), "x.yaml"); },
               {"flow.encoder.num_up_blocks", "positive"});
  expect_error([] { FlowConfig::parse(with("pos_enc_layer_type", "'abs_pos'"), "x.yaml"); },
               {"pos_enc_layer_type", "abs_pos", "rel_pos_espnet"});
  expect_error([] { FlowConfig::parse(with("input_layer", "[1, 2]"), "x.yaml"); },
               {"flow.encoder.input_layer", "must be a string"});
  expect_error([] { FlowConfig::parse(with("up_scale_factor", "3"), "x.yaml"); },
               {"up_scale_factor", "up_stride"});
  expect_error([] { FlowConfig::parse(with("in_channels", "240"), "x.yaml"); },
               {"in_channels", "240", "320"});
  std::string enc_out = tiny_yaml();
  enc_out = std::regex_replace(enc_out, std::regex("output_size: 64"), "output_size: 32");
  expect_error([&] { FlowConfig::parse(enc_out, "x.yaml"); },
               {"flow.encoder.output_size 32", "must be equal"});
  std::string no_heads = tiny_yaml();
  no_heads = std::regex_replace(no_heads, std::regex("\\n\\s*num_heads:[^\\n]*"), "");
  expect_error([&] { FlowConfig::parse(no_heads, "x.yaml"); },
               {"missing 'flow.decoder.estimator.num_heads'"});
  expect_error([] { FlowConfig::load("/nonexistent/flow.yaml"); }, {"/nonexistent/flow.yaml"});
}

}  // namespace
}  // namespace stepaudio
