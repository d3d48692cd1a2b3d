// Token2wav (offline) against the token2wav-a goldens with the recorded random draws injected,
// loading from .pt and .safetensors folders, seeding, and bad inputs.
#include <fcntl.h>

#include <fstream>

#include "io/torch_file.h"
#include "ops/flow_ops.h"
#include "t2w_test_util.h"

namespace stepaudio {
namespace {

using namespace t2w_test;

Token2wavOptions golden_injection() {
  Token2wavOptions o;
  o.flow_noise = golden("flow/noise");
  o.hift_noise = HiftNoise{golden("hift_gen/rand_ini"), golden("hift_gen/noise")};
  return o;
}

const Tensor* find(const FlowTrace& trace, const std::string& name) {
  for (const auto& [n, t] : trace)
    if (n == name) return &t;
  ADD_FAILURE() << "trace has no " << name;
  return nullptr;
}

TEST(Token2wav, ReproducesTheGoldenCaseEndToEnd) {
  Token2wav& t2w = golden_t2w();
  EXPECT_EQ(t2w.samples_per_code(), 960);
  const std::vector<int32_t> codes = golden_ids("flow/token");
  FlowTrace trace;
  Token2wavOptions o = golden_injection();
  o.trace = &trace;
  const Tensor wav = t2w.synthesize(codes, golden_voice(), o);
  ASSERT_EQ(wav.shape(), (Shape{960 * 37}));
  // Tolerances of golden README §8.7; every stage here runs on our own previous stage.
  expect_close(wav, golden("hift_gen/wav"), 2e-3, "wav");
  struct Check {
    const char* name;
    double tol;
  };
  for (const Check& c :
       {Check{"flow/spks", 2e-5}, Check{"flow/token_emb", 0}, Check{"flow/encoder_out", 1e-4},
        Check{"flow/mu", 2e-5}, Check{"flow/cond", 0}, Check{"flow/noise", 0},
        Check{"flow/x_steps", 5e-5}, Check{"flow/feat", 5e-5}, Check{"hift_gen/f0", 2e-3},
        Check{"hift_gen/noise", 0}, Check{"hift_gen/s", 1e-3}, Check{"hift_gen/s_stft", 3e-3},
        Check{"hift_gen/conv_post", 3e-3}, Check{"hift_gen/wav", 2e-3}})
    if (const Tensor* t = find(trace, c.name)) expect_close(*t, golden(c.name), c.tol, c.name);
  // The inputs are traced too, under the golden names.
  for (const char* n : {"flow/prompt_token", "flow/token"}) {
    const Tensor* t = find(trace, n);
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->dtype(), DType::I64);
    EXPECT_EQ(std::vector<int64_t>(t->data<int64_t>(), t->data<int64_t>() + t->numel()),
              std::vector<int64_t>(goldens().get(n).data<int64_t>(),
                                   goldens().get(n).data<int64_t>() + t->numel()));
  }
  // Voicing must agree frame by frame (f0 > 10 Hz).
  const auto f0 = find(trace, "hift_gen/f0")->to_f32_vector(),
             ref = golden("hift_gen/f0").to_f32_vector();
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(f0[i] > 10.f, ref[i] > 10.f) << "frame " << i;
}

TEST(Token2wav, SafetensorsCopiesGiveTheSameAudio) {
  TempDir dir("t2w_st");
  fs::create_symlink(golden_dir() / "flow.yaml", dir / "flow.yaml");
  for (const char* stem : {"flow", "hift"}) {
    NamedTensors raw = read_torch_state_dict((golden_dir() / (std::string(stem) + ".pt")).string());
    save_safetensors((dir / (std::string(stem) + ".safetensors")).string(), raw,
                     {{"format", "pt"}});
  }
  Token2wav st = Token2wav::load(dir.path().string());
  const std::vector<int32_t> codes = golden_ids("flow/token");
  const Token2wavOptions o = golden_injection();
  EXPECT_EQ(st.synthesize(codes, golden_voice(), o).to_f32_vector(),
            golden_t2w().synthesize(codes, golden_voice(), o).to_f32_vector());
}

TEST(Token2wav, SeedsAreReproducible) {
  Token2wav& t2w = golden_t2w();
  const std::vector<int32_t> codes = {1, 2, 3, 4000, 6560, 0, 17};
  Token2wavOptions a, b;
  a.seed = 11;
  b.seed = 12;
  const Tensor w1 = t2w.synthesize(codes, golden_voice(), a);
  const Tensor w2 = t2w.synthesize(codes, golden_voice(), a);
  const Tensor w3 = t2w.synthesize(codes, golden_voice(), b);
  ASSERT_EQ(w1.numel(), 960 * 7);
  EXPECT_EQ(w1.to_f32_vector(), w2.to_f32_vector());
  EXPECT_NE(w1.to_f32_vector(), w3.to_f32_vector());
  // The seeded flow noise is the frame-indexed table: injecting it gives the same audio.
  Token2wavOptions c = a;
  c.flow_noise = ops::frame_noise(11, 80, 0, 2 * (20 + 7));
  EXPECT_EQ(t2w.synthesize(codes, golden_voice(), c).to_f32_vector(), w1.to_f32_vector());
  double peak = 0;
  for (float v : w1.to_f32_vector()) peak = std::max(peak, std::fabs(double(v)));
  EXPECT_GT(peak, 1e-3);
  EXPECT_LE(peak, 0.99 + 1e-6);
}

template <typename F>
void expect_error(F&& fn, const std::string& text) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << text << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(Token2wav, BadInputsGiveClearErrors) {
  Token2wav& t2w = golden_t2w();
  const Voice v = golden_voice();
  expect_error(
      [&] {
        t2w.synthesize(std::vector<int32_t>{1, 6561}, v);
      },
      "speech code 6561 at position 1 is outside [0, 6561)");
  expect_error([&] { t2w.synthesize(std::vector<int32_t>{-1}, v); },
               "speech code -1 at position 0");
  expect_error([&] { t2w.synthesize(std::vector<int32_t>{}, v); }, "no speech codes");
  Voice bad = v;
  bad.prompt_mel = Tensor::zeros({39, 80}, DType::F32);
  expect_error([&] { t2w.synthesize(std::vector<int32_t>{1}, bad); }, "prompt_mel");
  bad = v;
  bad.speaker_embedding = Tensor::zeros({80}, DType::F32);
  expect_error([&] { t2w.synthesize(std::vector<int32_t>{1}, bad); }, "speaker_embedding");
  bad = v;
  bad.prompt_codes[0] = 7000;
  expect_error([&] { t2w.synthesize(std::vector<int32_t>{1}, bad); }, "prompt_codes");
  Token2wavOptions small;
  small.flow_noise = Tensor::zeros({80, 10}, DType::F32);
  expect_error([&] { t2w.synthesize(std::vector<int32_t>{1, 2}, v, small); }, "noise");
  Token2wavOptions short_nsf;
  short_nsf.hift_noise = HiftNoise{{}, Tensor::zeros({959, 9}, DType::F32)};
  expect_error([&] { t2w.synthesize(std::vector<int32_t>{1}, v, short_nsf); }, "HiFT noise");
}

TEST(Token2wav, MissingFilesAreNamed) {
  expect_error([] { Token2wav::load("/nonexistent/t2w"); }, "/nonexistent/t2w does not exist");
  TempDir dir("t2w_missing");
  expect_error([&] { Token2wav::load(dir.path().string()); }, "no flow.yaml");
  fs::create_symlink(golden_dir() / "flow.yaml", dir / "flow.yaml");
  expect_error([&] { Token2wav::load(dir.path().string()); }, "no flow.safetensors or flow.pt");
  fs::create_symlink(golden_dir() / "flow.pt", dir / "flow.pt");
  expect_error([&] { Token2wav::load(dir.path().string()); }, "no hift.safetensors or hift.pt");
  // A flow file in the vocoder's place: the missing HiFT tensor is named.
  fs::create_symlink(golden_dir() / "flow.pt", dir / "hift.pt");
  expect_error([&] { Token2wav::load(dir.path().string()); }, "weight '");
  fs::remove(dir / "hift.pt");
  { std::ofstream(dir / "hift.pt") << "not a zip"; }
  expect_error([&] { Token2wav::load(dir.path().string()); }, "hift.pt");
}

TEST(Token2wav, ParsesCodeFiles) {
  EXPECT_EQ(parse_codes("1 2,3\n\t4\r\n", "x"), (std::vector<int32_t>{1, 2, 3, 4}));
  expect_error([] { parse_codes("1 2 6561", "f.txt"); }, "f.txt: code 3 is '6561'");
  expect_error([] { parse_codes("1 x2", "f.txt"); }, "code 2 is 'x2'");
  expect_error([] { parse_codes("1 -4", "f.txt"); }, "code 2 is '-4'");
  expect_error([] { parse_codes(" \n", "f.txt"); }, "no speech codes");
  expect_error([] { read_codes_file("/nonexistent/codes.txt"); }, "/nonexistent/codes.txt");
}

}  // namespace
}  // namespace stepaudio
