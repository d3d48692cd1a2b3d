// The token2wav commands run as a user would: `stepaudio token2wav` reproduces the golden case
// from files (voice, codes, injected draws) and writes the wav and the trace; `gen-token2wav`
// writes a folder the engine loads; `run --speech-out` speaks the tiny model's answer. Bad
// inputs exit 1 with a message naming the file and leave no output behind.
#include <gmock/gmock.h>
#include <sndfile.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

#include "../engine/model_dir.h"
#include "io/safetensors.h"
#include "t2w_test_util.h"

namespace stepaudio {
namespace {

using namespace t2w_test;
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

Proc run_cli(const TempDir& dir, const std::vector<std::string>& args) {
  const fs::path bin = testing_paths::binary() / "stepaudio";
  if (!fs::exists(bin)) throw std::runtime_error("CLI binary missing: " + bin.string());
  std::string cmd = quote(bin.string());
  for (const auto& a : args) cmd += ' ' + quote(a);
  const fs::path o = dir.path().parent_path() / (dir.path().filename().string() + ".stdout");
  const fs::path e = dir.path().parent_path() / (dir.path().filename().string() + ".stderr");
  cmd += " >" + quote(o.string()) + " 2>" + quote(e.string());
  Proc p;
  const int st = std::system(cmd.c_str());
  p.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  p.out = testing_paths::read_text(o);
  p.err = testing_paths::read_text(e);
  fs::remove(o);
  fs::remove(e);
  return p;
}

struct Wav {
  int rate = 0, channels = 0, format = 0;
  std::vector<float> samples;
};

Wav read_wav(const fs::path& p) {
  SF_INFO info{};
  SNDFILE* f = sf_open(p.c_str(), SFM_READ, &info);
  if (!f) throw std::runtime_error("cannot open " + p.string());
  Wav w{info.samplerate, info.channels, info.format, {}};
  w.samples.resize(static_cast<size_t>(info.frames * info.channels));
  sf_readf_float(f, w.samples.data(), info.frames);
  sf_close(f);
  return w;
}

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

std::string codes_text(const std::vector<int32_t>& codes) {
  std::string s;
  for (int32_t c : codes) s += std::to_string(c) + "\n";
  return s;
}

// voice.safetensors, codes.txt and inject.safetensors of the golden case in `dir`.
void write_golden_inputs(const TempDir& dir) {
  save_voice((dir / "voice.safetensors").string(), golden_voice());
  write_text(dir / "codes.txt", codes_text(golden_ids("flow/token")));
  save_safetensors((dir / "inject.safetensors").string(),
                   {{"flow/noise", golden("flow/noise")},
                    {"hift_gen/noise", golden("hift_gen/noise")},
                    {"hift_gen/rand_ini", golden("hift_gen/rand_ini")}});
}

TEST(Token2wavCli, ReproducesTheGoldenCase) {
  TempDir dir("t2w_cli");
  write_golden_inputs(dir);
  const std::vector<std::string> common = {"token2wav",
                                           "--token2wav",
                                           golden_dir().string(),
                                           "--voice",
                                           (dir / "voice.safetensors").string(),
                                           "--codes",
                                           (dir / "codes.txt").string(),
                                           "--inject",
                                           (dir / "inject.safetensors").string(),
                                           "--device",
                                           "cpu"};
  std::vector<std::string> args = common;
  for (const char* s : {"-o", "", "--format", "float", "--trace", ""}) args.push_back(s);
  args[common.size() + 1] = (dir / "out.wav").string();
  args[common.size() + 5] = (dir / "trace.safetensors").string();
  const Proc p = run_cli(dir, args);
  ASSERT_EQ(p.rc, 0) << p.err;
  EXPECT_THAT(p.out, HasSubstr("37 codes -> 35520 samples (1.48 s at 24 kHz, float)"));
  const Wav w = read_wav(dir / "out.wav");
  EXPECT_EQ(w.rate, 24000);
  EXPECT_EQ(w.channels, 1);
  EXPECT_EQ(w.format, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  expect_close(Tensor::from_vector(w.samples, {static_cast<int64_t>(w.samples.size())}),
               golden("hift_gen/wav"), 2e-3, "wav file (float)");
  const SafetensorsFile trace = SafetensorsFile::open((dir / "trace.safetensors").string());
  expect_close(trace.get("flow/feat").clone(), golden("flow/feat"), 5e-5, "trace flow/feat");
  expect_close(trace.get("flow/x_steps").clone(), golden("flow/x_steps"), 5e-5, "trace x_steps");
  expect_close(trace.get("hift_gen/wav").clone(), golden("hift_gen/wav"), 2e-3, "trace wav");
  for (const char* n : {"flow/mu", "flow/encoder_out", "hift_gen/f0", "hift_gen/s",
                        "hift_gen/noise", "flow/prompt_token", "flow/token"})
    EXPECT_TRUE(trace.has(n)) << n;

  // PCM16 (the default): the same audio, quantised to 16 bits.
  args = common;
  args.insert(args.end(), {"-o", (dir / "pcm.wav").string()});
  const Proc q = run_cli(dir, args);
  ASSERT_EQ(q.rc, 0) << q.err;
  const Wav pcm = read_wav(dir / "pcm.wav");
  EXPECT_EQ(pcm.format, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
  expect_close(Tensor::from_vector(pcm.samples, {static_cast<int64_t>(pcm.samples.size())}),
               golden("hift_gen/wav"), 2e-3 + 1.0 / 32768, "wav file (pcm16)");
}

TEST(Token2wavCli, StreamsAndSeeds) {
  TempDir dir("t2w_cli");
  write_golden_inputs(dir);
  auto run = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> args = {"token2wav",
                                     "--token2wav",
                                     golden_dir().string(),
                                     "--voice",
                                     (dir / "voice.safetensors").string(),
                                     "--codes",
                                     (dir / "codes.txt").string(),
                                     "-o",
                                     (dir / out).string(),
                                     "--format",
                                     "float"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(dir, args);
  };
  Proc p = run("stream.wav", {"--stream", "--seed", "4"});
  ASSERT_EQ(p.rc, 0) << p.err;
  EXPECT_THAT(p.err, HasSubstr("first audio after"));
  EXPECT_EQ(read_wav(dir / "stream.wav").samples.size(), 960u * 37);
  ASSERT_EQ(run("a.wav", {"--seed", "4"}).rc, 0);
  ASSERT_EQ(run("b.wav", {"--seed", "4"}).rc, 0);
  ASSERT_EQ(run("c.wav", {"--seed", "5"}).rc, 0);
  EXPECT_EQ(read_wav(dir / "a.wav").samples, read_wav(dir / "b.wav").samples);
  EXPECT_NE(read_wav(dir / "a.wav").samples, read_wav(dir / "c.wav").samples);
}

TEST(Token2wavCli, BadInputsFailCleanly) {
  TempDir dir("t2w_cli");
  write_golden_inputs(dir);
  write_text(dir / "badcodes.txt", "1 2 6561 4");
  save_safetensors((dir / "notvoice.safetensors").string(),
                   {{"prompt_codes", golden("flow/prompt_token")}, {"x", golden("flow/spks")}});
  save_safetensors((dir / "noinject.safetensors").string(), {{"x", golden("flow/spks")}});
  const std::vector<std::string> before = dir.entries();
  struct Case {
    std::string dir, voice, codes, inject, want;
  };
  const std::string t2w = golden_dir().string(), v = (dir / "voice.safetensors").string(),
                    c = (dir / "codes.txt").string();
  const std::vector<Case> cases = {
      {"/nonexistent/t2w", v, c, "", "/nonexistent/t2w does not exist"},
      {dir.path().string(), v, c, "", "no flow.yaml"},
      {t2w, v, (dir / "badcodes.txt").string(), "", "badcodes.txt: code 3 is '6561'"},
      {t2w, v, (dir / "nocodes.txt").string(), "", "nocodes.txt"},
      {t2w, (dir / "notvoice.safetensors").string(), c, "", "unexpected tensor 'x'"},
      {t2w, (dir / "novoice.safetensors").string(), c, "", "novoice.safetensors"},
      {t2w, v, c, (dir / "noinject.safetensors").string(), "holds neither 'flow/noise'"},
  };
  for (const Case& k : cases) {
    std::vector<std::string> args = {"token2wav",
                                     "--token2wav",
                                     k.dir,
                                     "--voice",
                                     k.voice,
                                     "--codes",
                                     k.codes,
                                     "-o",
                                     (dir / "out.wav").string(),
                                     "--trace",
                                     (dir / "trace.safetensors").string()};
    if (!k.inject.empty()) args.insert(args.end(), {"--inject", k.inject});
    const Proc p = run_cli(dir, args);
    EXPECT_EQ(p.rc, 1) << k.want;
    EXPECT_THAT(p.err, HasSubstr(k.want));
    EXPECT_EQ(dir.entries(), before) << "output left behind for: " << k.want;
  }
  // An output folder that does not exist, and --trace with --stream.
  Proc p = run_cli(dir, {"token2wav", "--token2wav", t2w, "--voice", v, "--codes", c, "-o",
                         (dir / "no/such/out.wav").string()});
  EXPECT_EQ(p.rc, 1);
  EXPECT_THAT(p.err, HasSubstr("does not exist"));
  p = run_cli(
      dir, {"token2wav", "--token2wav", t2w, "--voice", v, "--codes", c, "-o",
            (dir / "out.wav").string(), "--stream", "--trace", (dir / "t.safetensors").string()});
  EXPECT_EQ(p.rc, 1);
  EXPECT_THAT(p.err, HasSubstr("--trace"));
  EXPECT_EQ(dir.entries(), before);
  // An unknown precision fails before anything loads.
  p = run_cli(dir, {"token2wav", "--token2wav", t2w, "--voice", v, "--codes", c, "-o",
                    (dir / "out.wav").string(), "--t2w-precision", "bf8"});
  EXPECT_EQ(p.rc, 1);
  EXPECT_THAT(p.err, HasSubstr("--t2w-precision: unknown token2wav precision 'bf8', expected fp32 "
                               "or fast"));
  EXPECT_EQ(dir.entries(), before);
}

// The fast mode changes only the GPU's numerics: on the CPU it reproduces the golden case too.
TEST(Token2wavCli, FastPrecisionOnTheCpuIsTheReference) {
  TempDir dir("t2w_cli");
  write_golden_inputs(dir);
  const Proc p = run_cli(
      dir, {"token2wav", "--token2wav", golden_dir().string(), "--voice",
            (dir / "voice.safetensors").string(), "--codes", (dir / "codes.txt").string(),
            "--inject", (dir / "inject.safetensors").string(), "--device", "cpu", "--format",
            "float", "--t2w-precision", "fast", "-o", (dir / "out.wav").string()});
  ASSERT_EQ(p.rc, 0) << p.err;
  const Wav w = read_wav(dir / "out.wav");
  expect_close(Tensor::from_vector(w.samples, {static_cast<int64_t>(w.samples.size())}),
               golden("hift_gen/wav"), 2e-3, "wav file, --t2w-precision fast on the CPU");
}

TEST(Token2wavCli, GenToken2wavThenSpeak) {
  TempDir dir("t2w_cli");
  const fs::path t2w = dir / "t2w";
  Proc p = run_cli(dir, {"gen-token2wav", "--preset", "tiny", "-o", t2w.string()});
  ASSERT_EQ(p.rc, 0) << p.err;
  EXPECT_THAT(p.out, HasSubstr("flow 852912 parameters, HiFT 392271 parameters"));
  for (const char* f : {"flow.yaml", "flow.safetensors", "hift.safetensors", "voice.safetensors"})
    EXPECT_TRUE(fs::exists(t2w / f)) << f;
  write_text(dir / "codes.txt", "1 2 3 4 5 6 7 8 9 10");
  p = run_cli(dir, {"token2wav", "--token2wav", t2w.string(), "--voice",
                    (t2w / "voice.safetensors").string(), "--codes", (dir / "codes.txt").string(),
                    "-o", (dir / "noise.wav").string()});
  ASSERT_EQ(p.rc, 0) << p.err;
  const Wav w = read_wav(dir / "noise.wav");
  ASSERT_EQ(w.samples.size(), 9600u);
  double energy = 0;
  for (float s : w.samples) energy += double(s) * s;
  EXPECT_GT(energy, 0.0);
}

TEST(Token2wavCli, RunSpeaksTheAnswer) {
  testing_paths::TempModelDir model;
  TempDir dir("t2w_cli");
  const fs::path t2w = dir / "t2w";
  ASSERT_EQ(run_cli(dir, {"gen-token2wav", "-o", t2w.string()}).rc, 0);
  for (const bool stream : {false, true}) {
    const std::string tag = stream ? "stream" : "offline";
    std::vector<std::string> args = {"run",
                                     "-m",
                                     model.str(),
                                     "--prompt",
                                     "hello",
                                     "--device",
                                     "cpu",
                                     "--max-tokens",
                                     "160",
                                     "--seed",
                                     "3",
                                     "--temp",
                                     "1.0",
                                     "--top-k",
                                     "0",
                                     "--speech-out",
                                     (dir / (tag + ".wav")).string(),
                                     "--token2wav",
                                     t2w.string(),
                                     "--audio-codes",
                                     (dir / (tag + ".txt")).string(),
                                     "-q"};
    if (stream) args.push_back("--stream");
    const Proc p = run_cli(dir, args);
    ASSERT_EQ(p.rc, 0) << p.err;
    const std::string codes = testing_paths::read_text(dir / (tag + ".txt"));
    const size_t n = static_cast<size_t>(std::count(codes.begin(), codes.end(), '\n'));
    std::printf("    run --speech-out (%s): %zu audio codes in the tiny model's answer\n",
                tag.c_str(), n);
    if (n == 0) {
      EXPECT_THAT(p.err, HasSubstr("no audio codes"));
      EXPECT_FALSE(fs::exists(dir / (tag + ".wav")));
    } else {
      EXPECT_THAT(p.err, HasSubstr("s of speech (" + std::to_string(n) + " codes)"));
      EXPECT_EQ(read_wav(dir / (tag + ".wav")).samples.size(), 960 * n);
    }
  }
  // The same answer both ways (same seed): the codes agree.
  EXPECT_EQ(testing_paths::read_text(dir / "offline.txt"),
            testing_paths::read_text(dir / "stream.txt"));
  // No voice: a clear error before the model loads, nothing written.
  const Proc p = run_cli(dir, {"run", "-m", model.str(), "--prompt", "hi", "--speech-out",
                               (dir / "x.wav").string(), "--token2wav", dir.path().string()});
  EXPECT_EQ(p.rc, 1);
  EXPECT_THAT(p.err, HasSubstr("needs a voice"));
  EXPECT_FALSE(fs::exists(dir / "x.wav"));
}

}  // namespace
}  // namespace stepaudio
