// `stepaudio make-voice` run as a user would: the voice it writes holds the golden prompt mel,
// and bad inputs exit non-zero with a message naming the file, leaving no output behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

#include "../test_paths.h"
#include "io/safetensors.h"
#include "model/voice.h"
#include "torch_fixture.h"

namespace stepaudio {
namespace {

namespace fs = std::filesystem;
namespace tp = testing_paths;
using ::testing::HasSubstr;

struct Proc {
  int rc = -1;
  std::string out, err;
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

Proc run_cli(const t2w_fixture::TempDir& dir, const std::vector<std::string>& args) {
  const fs::path bin = tp::binary() / "stepaudio";
  if (!fs::exists(bin)) throw std::runtime_error("CLI binary missing: " + bin.string());
  std::string cmd = quote(bin.string());
  for (const auto& a : args) {
    cmd += ' ';
    cmd += quote(a);
  }
  cmd += " >" + quote((dir / "stdout").string()) + " 2>" + quote((dir / "stderr").string());
  Proc p;
  const int st = std::system(cmd.c_str());
  p.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  p.out = tp::read_text(dir / "stdout");
  p.err = tp::read_text(dir / "stderr");
  return p;
}

const SafetensorsFile& goldens() {
  static const SafetensorsFile f =
      SafetensorsFile::open((tp::golden() / "token2wav-a" / "goldens.safetensors").string());
  return f;
}

void write_codes(const fs::path& p, int64_t n) {
  std::ofstream out(p);
  for (int64_t i = 0; i < n; ++i) out << (i * 131) % 6561 << (i % 10 == 9 ? "\n" : ", ");
}

TEST(MakeVoiceCli, WritesGoldenPromptMel) {
  t2w_fixture::TempDir dir("t2w_mkvoice");
  write_codes(dir / "codes.txt", 77);
  {
    std::ofstream e(dir / "emb.txt");
    for (int i = 0; i < 192; ++i) e << 0.01 * i - 0.5 << "\n";
  }
  const std::string wav = tp::audio("real_speech.aiff").string();
  const Proc p = run_cli(dir, {"make-voice", "--prompt-wav", wav, "--codes",
                               (dir / "codes.txt").string(), "--speaker-embedding",
                               (dir / "emb.txt").string(), "-o", (dir / "v.safetensors").string()});
  ASSERT_EQ(p.rc, 0) << p.err;
  EXPECT_THAT(p.out, HasSubstr("153 mel frames, 77 codes -> 154 frames"));
  const Voice v = load_voice((dir / "v.safetensors").string());
  ASSERT_EQ(v.prompt_codes.size(), 77u);
  EXPECT_EQ(v.prompt_codes[3], 393);
  const Tensor ref = goldens().get("prompt/mel");
  ASSERT_EQ(v.prompt_mel.shape(), ref.shape());
  double worst = 0;
  for (int64_t i = 0; i < ref.numel(); ++i)
    worst = std::max(
        worst, std::abs(static_cast<double>(v.prompt_mel.data<float>()[i]) - ref.data<float>()[i]));
  EXPECT_LE(worst, 5e-4);
  EXPECT_FLOAT_EQ(v.speaker_embedding.data<float>()[191], 1.41f);

  // The embedding as a one-tensor safetensors file ([1, 192] is accepted).
  save_safetensors((dir / "emb.safetensors").string(),
                   {{"spk", v.speaker_embedding.reshape({1, 192})}});
  const Proc q =
      run_cli(dir, {"make-voice", "--prompt-wav", wav, "--codes", (dir / "codes.txt").string(),
                    "--speaker-embedding", (dir / "emb.safetensors").string(), "-o",
                    (dir / "v2.safetensors").string()});
  ASSERT_EQ(q.rc, 0) << q.err;
  EXPECT_EQ(load_voice((dir / "v2.safetensors").string()).speaker_embedding.to_f32_vector(),
            v.speaker_embedding.to_f32_vector());
}

TEST(MakeVoiceCli, BadInputsFailCleanly) {
  t2w_fixture::TempDir dir("t2w_mkvoice");
  const std::string wav = tp::audio("real_speech.aiff").string();
  const std::string out = (dir / "v.safetensors").string();
  write_codes(dir / "codes.txt", 10);
  {
    std::ofstream e(dir / "emb.txt");
    for (int i = 0; i < 192; ++i) e << 0.5 << " ";
  }
  {
    std::ofstream b(dir / "badcodes.txt");
    b << "1 2 6561 4";
  }
  {
    std::ofstream s(dir / "short.txt");
    s << "1 2 3";
  }
  auto run = [&](const std::string& codes, const std::string& emb, const std::string& w) {
    return run_cli(dir, {"make-voice", "--prompt-wav", w, "--codes", codes, "--speaker-embedding",
                         emb, "-o", out});
  };
  Proc p = run((dir / "badcodes.txt").string(), (dir / "emb.txt").string(), wav);
  EXPECT_EQ(p.rc, 1);
  EXPECT_THAT(p.err, HasSubstr("badcodes.txt: code 3 is '6561'"));
  p = run((dir / "codes.txt").string(), (dir / "short.txt").string(), wav);
  EXPECT_EQ(p.rc, 1);
  EXPECT_THAT(p.err, HasSubstr("short.txt: found 3 values, expected 192"));
  p = run((dir / "codes.txt").string(), (dir / "emb.txt").string(), "/nonexistent/x.wav");
  EXPECT_EQ(p.rc, 1);
  EXPECT_THAT(p.err, HasSubstr("/nonexistent/x.wav"));
  p = run((dir / "nope.txt").string(), (dir / "emb.txt").string(), wav);
  EXPECT_EQ(p.rc, 1);
  EXPECT_THAT(p.err, HasSubstr("nope.txt"));
  EXPECT_FALSE(fs::exists(out));
  p = run_cli(dir, {"make-voice", "--prompt-wav", wav});
  EXPECT_NE(p.rc, 0);
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace stepaudio
