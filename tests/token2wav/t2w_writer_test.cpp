// The random token2wav writer: its tensor layout is the official one (names, order and shapes
// of the token2wav-a flow.pt / hift.pt for the tiny preset; the spec's parameter counts for the
// full one), its flow.yaml parses back to the same sizes, and the written folder loads and
// speaks.
#include "io/t2w_writer.h"
#include "io/torch_file.h"
#include "model/flow_config.h"
#include "t2w_test_util.h"

namespace stepaudio {
namespace {

using namespace t2w_test;

void expect_layout(const TensorLayout& got, const std::string& pt) {
  const NamedTensors want = read_torch_state_dict(pt);
  ASSERT_EQ(got.size(), want.size()) << pt;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first) << "tensor " << i << " of " << pt;
    EXPECT_EQ(shape_str(got[i].second), shape_str(want[i].second.shape())) << got[i].first;
  }
}

TEST(T2wWriter, TinyLayoutIsTheGoldenFiles) {
  const T2wPreset p = t2w_preset("tiny");
  expect_layout(flow_weight_layout(p.flow), (golden_dir() / "flow.pt").string());
  expect_layout(hift_weight_layout(p.hift_base_channels, p.hift_cond_channels),
                (golden_dir() / "hift.pt").string());
  // The tiny flow.yaml says what the golden one says.
  const FlowConfig mine = FlowConfig::parse(flow_yaml(p.flow), "generated");
  const FlowConfig ref = FlowConfig::load((golden_dir() / "flow.yaml").string());
  EXPECT_EQ(flow_yaml(mine), flow_yaml(ref));
}

TEST(T2wWriter, FullSizesMatchTheSpec) {
  const T2wPreset p = t2w_preset("full");
  const uint64_t flow = layout_params(flow_weight_layout(p.flow));
  const uint64_t hift =
      layout_params(hift_weight_layout(p.hift_base_channels, p.hift_cond_channels));
  std::printf("    full: flow %llu, HiFT %llu parameters\n", static_cast<unsigned long long>(flow),
              static_cast<unsigned long long>(hift));
  EXPECT_NEAR(static_cast<double>(flow), 155.8e6, 0.05e6);  // spec §7.5
  EXPECT_NEAR(static_cast<double>(hift), 20.82e6, 0.01e6);  // spec §7.6
  // The official flow.yaml parses to exactly the full preset.
  const FlowConfig official =
      FlowConfig::load((testing_paths::shared() / "stepaudio2-mini/token2wav/flow.yaml").string());
  EXPECT_EQ(flow_yaml(official), flow_yaml(p.flow));
  EXPECT_THROW(t2w_preset("huge"), Error);
}

TEST(T2wWriter, WrittenFolderLoadsAndIsSeeded) {
  TempDir a("t2w_gen"), b("t2w_gen");
  const T2wWriteSummary s = write_random_token2wav(a.path().string(), t2w_preset("tiny"), 9, 12);
  write_random_token2wav(b.path().string(), t2w_preset("tiny"), 9, 12);
  EXPECT_EQ(s.files, (std::vector<std::string>{"flow.yaml", "flow.safetensors", "hift.safetensors",
                                               "voice.safetensors"}));
  EXPECT_EQ(s.flow_params, 852912u);
  EXPECT_EQ(s.hift_params, 392271u);
  EXPECT_EQ(a.entries(), (std::vector<std::string>{"flow.safetensors", "flow.yaml",
                                                   "hift.safetensors", "voice.safetensors"}));
  for (const char* f : {"flow.safetensors", "hift.safetensors", "voice.safetensors", "flow.yaml"})
    EXPECT_EQ(testing_paths::read_text(a / f), testing_paths::read_text(b / f)) << f;
  Token2wav t2w = Token2wav::load(a.path().string());
  const Voice v = load_voice((a / "voice.safetensors").string());
  EXPECT_EQ(v.prompt_codes.size(), 12u);
  const auto wav = t2w.synthesize(std::vector<int32_t>{10, 20, 30, 40, 50}, v).to_f32_vector();
  ASSERT_EQ(wav.size(), 4800u);
  double energy = 0;
  for (float x : wav) {
    ASSERT_TRUE(std::isfinite(x));
    energy += double(x) * x;
  }
  EXPECT_GT(energy / 4800, 1e-8);  // random weights make noise, not silence
}

}  // namespace
}  // namespace stepaudio
