// decode_audio / decode_audio_memory: every shared test file, every container libsndfile writes,
// and every kind of bad input, each with an error that names the file and the problem.
#include <fcntl.h>
#include <sndfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "../test_paths.h"
#include "audio/load.h"
#include "core/error.h"

using namespace stepaudio;
namespace fs = std::filesystem;

namespace {

fs::path tmpdir() {
  fs::path p = fs::temp_directory_path() / ("sa_decode_" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("test input missing: " + p.string());
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void put_le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// A canonical 44-byte-header WAV. `format` 1 = integer PCM, 3 = IEEE float.
std::string wav_bytes(int format, int channels, int rate, int bits, const std::string& data,
                      int64_t declared_data = -1) {
  const uint32_t n =
      declared_data < 0 ? static_cast<uint32_t>(data.size()) : static_cast<uint32_t>(declared_data);
  std::string s = "RIFF";
  put_le(s, 36 + n, 4);
  s += "WAVEfmt ";
  put_le(s, 16, 4);
  put_le(s, static_cast<uint64_t>(format), 2);
  put_le(s, static_cast<uint64_t>(channels), 2);
  put_le(s, static_cast<uint64_t>(rate), 4);
  put_le(s, static_cast<uint64_t>(rate) * channels * bits / 8, 4);
  put_le(s, static_cast<uint64_t>(channels * bits / 8), 2);
  put_le(s, static_cast<uint64_t>(bits), 2);
  s += "data";
  put_le(s, n, 4);
  return s + data;
}

std::string float_data(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// Expects decode_audio(path) to throw an Error whose message names the path and contains `what`.
void expect_decode_error(const fs::path& p, const std::string& what, const DecodeOptions& o = {}) {
  try {
    decode_audio(p.string(), o);
    ADD_FAILURE() << "no error for " << p;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "expected '" << what << "' in: " << msg;
  }
}

// Captures what the library logs while it is alive.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

// All channels of a file, read straight through libsndfile (an independent path for the checks).
std::vector<float> read_interleaved(const fs::path& p, SF_INFO* info) {
  *info = SF_INFO{};
  SNDFILE* f = sf_open(p.c_str(), SFM_READ, info);
  if (!f) throw std::runtime_error("sf_open failed: " + p.string());
  std::vector<float> v(static_cast<size_t>(info->frames * info->channels));
  const sf_count_t got = sf_readf_float(f, v.data(), info->frames);
  sf_close(f);
  v.resize(static_cast<size_t>(got * info->channels));
  return v;
}

struct SharedFile {
  const char* name;
  int64_t frames;
  int rate;
  int channels;
};

// The table of ../shared/audio/README.md.
const SharedFile kSharedFiles[] = {
    {"en_hello_3s.wav", 47818, 16000, 1},  {"en_story_11s.wav", 180042, 16000, 1},
    {"en_long_31s.wav", 496037, 16000, 1}, {"zh_hello_4s.wav", 65123, 16000, 1},
    {"real_speech.wav", 49001, 16000, 1},  {"real_speech.aiff", 67529, 22050, 1},
    {"stereo_44k.flac", 220500, 44100, 2}, {"silence_2s.wav", 32000, 16000, 1},
    {"tiny_0.05s.wav", 800, 16000, 1},
};

}  // namespace

TEST(Decode, SharedFilesHaveTheDocumentedShape) {
  for (const SharedFile& f : kSharedFiles) {
    SCOPED_TRACE(f.name);
    const PcmAudio a = decode_audio(testing_paths::audio(f.name).string());
    EXPECT_EQ(static_cast<int64_t>(a.samples.size()), f.frames);
    EXPECT_EQ(a.sample_rate, f.rate);
    EXPECT_EQ(a.channels, f.channels);
    for (float x : a.samples) ASSERT_TRUE(x >= -1.0f && x < 1.0f) << x;
  }
}

TEST(Decode, PcmWavIsInt16Over32768) {
  // The 16 kHz files are plain 44-byte-header s16 WAVs (README); compare with the raw bytes.
  for (const char* name : {"en_hello_3s.wav", "tiny_0.05s.wav", "real_speech.wav"}) {
    SCOPED_TRACE(name);
    const std::string bytes = read_bytes(testing_paths::audio(name));
    ASSERT_EQ(bytes.substr(36, 4), "data");
    const PcmAudio a = decode_audio(testing_paths::audio(name).string());
    ASSERT_EQ(a.samples.size() * 2, bytes.size() - 44);
    for (size_t i = 0; i < a.samples.size(); ++i) {
      int16_t v;
      std::memcpy(&v, bytes.data() + 44 + 2 * i, 2);
      ASSERT_EQ(a.samples[i], static_cast<float>(v) / 32768.0f) << "sample " << i;
    }
  }
  const PcmAudio silence = decode_audio(testing_paths::audio("silence_2s.wav").string());
  for (float x : silence.samples) ASSERT_EQ(x, 0.0f);
}

TEST(Decode, StereoChannelZeroAndMix) {
  const fs::path p = testing_paths::audio("stereo_44k.flac");
  const PcmAudio left = decode_audio(p.string());
  const PcmAudio mix = decode_audio(p.string(), {.mix = true});
  ASSERT_EQ(left.samples.size(), 220500u);
  ASSERT_EQ(mix.samples.size(), 220500u);
  EXPECT_EQ(mix.channels, 2);
  SF_INFO info;
  const std::vector<float> all = read_interleaved(p, &info);
  ASSERT_EQ(info.channels, 2);
  size_t differ = 0;
  for (size_t i = 0; i < left.samples.size(); ++i) {
    const float l = all[2 * i], r = all[2 * i + 1];
    ASSERT_EQ(left.samples[i], l) << i;
    ASSERT_EQ(mix.samples[i], static_cast<float>((double{l} + r) / 2)) << i;
    differ += left.samples[i] != mix.samples[i];
  }
  EXPECT_GT(differ, 100000u);
  // Left speaks from 0.3 s, right only from 1.0 s (README): in between the mix is half the left.
  double energy = 0;
  for (size_t i = 13230; i < 44100; ++i) {
    ASSERT_EQ(mix.samples[i], left.samples[i] * 0.5f) << i;
    energy += double{left.samples[i]} * left.samples[i];
  }
  EXPECT_GT(energy, 1.0);
  for (size_t i = 0; i < 13000; ++i) ASSERT_EQ(left.samples[i], 0.0f) << i;
}

TEST(Decode, SeedCorpusContainers) {
  // The fuzz seeds cover the containers the shared files do not: Ogg/Vorbis, MP3, AU, u-law,
  // 8-bit, 24-bit and float. Each was written from a 440 Hz sine at amplitude 0.5.
  struct Seed {
    const char* name;
    int64_t frames;
    int rate;
    int channels;
  };
  const Seed seeds[] = {
      {"s16_mono.wav", 400, 8000, 1},     {"u8_stereo.wav", 200, 11025, 2},
      {"f32_stereo.wav", 100, 48000, 2},  {"s24_mono.aiff", 300, 22050, 1},
      {"s16_stereo.flac", 400, 44100, 2}, {"mono.ogg", 400, 8000, 1},
      {"mono.mp3", 400, 8000, 1},         {"s16_mono.au", 200, 16000, 1},
      {"ulaw_mono.wav", 200, 8000, 1},
  };
  for (const Seed& s : seeds) {
    SCOPED_TRACE(s.name);
    const fs::path p = testing_paths::source() / "fuzz/corpus/audio_decode" / s.name;
    const PcmAudio a = decode_audio(p.string());
    EXPECT_EQ(static_cast<int64_t>(a.samples.size()), s.frames);
    EXPECT_EQ(a.sample_rate, s.rate);
    EXPECT_EQ(a.channels, s.channels);
    float peak = 0;
    for (float x : a.samples) peak = std::max(peak, std::abs(x));
    EXPECT_NEAR(peak, 0.5f, 0.05f);
    // Memory decoding goes through libsndfile's virtual I/O and must give the same samples.
    const std::string bytes = read_bytes(p);
    const PcmAudio m = decode_audio_memory(bytes.data(), bytes.size(), s.name);
    EXPECT_EQ(m.samples, a.samples);
    EXPECT_EQ(m.sample_rate, a.sample_rate);
  }
}

TEST(Decode, IntegerWidthsNormaliseLikeTorchaudio) {
  const fs::path d = tmpdir();
  // 8-bit WAV is unsigned: (u - 128) / 128.
  write_bytes(d / "u8.wav", wav_bytes(1, 1, 8000, 8, std::string("\x00\x80\xff\x40", 4)));
  EXPECT_EQ(decode_audio((d / "u8.wav").string()).samples,
            (std::vector<float>{-1.0f, 0.0f, 127.0f / 128, -0.5f}));
  // 24-bit: v / 2^23.
  std::string s24;
  for (int32_t v : {-8388608, 0, 8388607, 4194304, -1}) put_le(s24, static_cast<uint32_t>(v), 3);
  write_bytes(d / "s24.wav", wav_bytes(1, 1, 8000, 24, s24));
  EXPECT_EQ(decode_audio((d / "s24.wav").string()).samples,
            (std::vector<float>{-1.0f, 0.0f, 8388607.0f / 8388608, 0.5f, -1.0f / 8388608}));
  // Float data passes through unchanged, even beyond [-1, 1].
  write_bytes(d / "f32.wav", wav_bytes(3, 1, 8000, 32, float_data({0.25f, -1.5f, 2.0f})));
  EXPECT_EQ(decode_audio((d / "f32.wav").string()).samples,
            (std::vector<float>{0.25f, -1.5f, 2.0f}));
}

TEST(Decode, TruncatedDataDecodesWhatIsThere) {
  const fs::path d = tmpdir();
  // WAV cut mid-data: libsndfile trusts the file size, so this is the prefix.
  const std::string wav = read_bytes(testing_paths::audio("en_hello_3s.wav"));
  write_bytes(d / "cut.wav", wav.substr(0, 20001));  // also cuts a sample in half
  const PcmAudio full = decode_audio(testing_paths::audio("en_hello_3s.wav").string());
  {
    LogCapture log;
    const PcmAudio cut = decode_audio((d / "cut.wav").string());
    ASSERT_EQ(cut.samples.size(), (20001u - 44) / 2);
    EXPECT_TRUE(std::equal(cut.samples.begin(), cut.samples.end(), full.samples.begin()));
    EXPECT_NE(log.text().find("shorter than its header declares"), std::string::npos) << log.text();
    EXPECT_NE(log.text().find("cut.wav"), std::string::npos) << log.text();
  }
  {
    LogCapture log;  // an intact file decodes without a warning
    decode_audio(testing_paths::audio("en_hello_3s.wav").string());
    decode_audio(testing_paths::audio("real_speech.aiff").string());
    EXPECT_EQ(log.text(), "");
  }

  // FLAC cut mid-data: the stream info promises 220500 frames; the decoder stops early and warns.
  const std::string flac = read_bytes(testing_paths::audio("stereo_44k.flac"));
  const PcmAudio flac_full = decode_audio(testing_paths::audio("stereo_44k.flac").string());
  for (size_t keep : {flac.size() / 2, flac.size() - 7}) {
    SCOPED_TRACE(keep);
    write_bytes(d / "cut.flac", flac.substr(0, keep));
    LogCapture log;
    const PcmAudio part = decode_audio((d / "cut.flac").string());
    EXPECT_GT(part.samples.size(), 0u);
    EXPECT_LT(part.samples.size(), 220500u);
    EXPECT_TRUE(std::equal(part.samples.begin(), part.samples.end(), flac_full.samples.begin()));
    const std::string warned = log.text();
    EXPECT_NE(warned.find((d / "cut.flac").string()), std::string::npos) << warned;
    EXPECT_NE(warned.find("of the 220500 declared"), std::string::npos) << warned;
  }

  // AIFF cut mid-data.
  const std::string aiff = read_bytes(testing_paths::audio("real_speech.aiff"));
  write_bytes(d / "cut.aiff", aiff.substr(0, 100000));
  LogCapture log;
  const PcmAudio aiff_cut = decode_audio((d / "cut.aiff").string());
  EXPECT_GT(aiff_cut.samples.size(), 40000u);
  EXPECT_LT(aiff_cut.samples.size(), 67529u);
  EXPECT_NE(log.text().find("shorter than its header declares"), std::string::npos) << log.text();
}

TEST(Decode, ErrorsNameTheFileAndTheProblem) {
  const fs::path d = tmpdir();
  expect_decode_error(d / "missing.wav", "no such file");
  fs::create_directories(d / "adir.wav");
  expect_decode_error(d / "adir.wav", "is a directory");
  write_bytes(d / "empty.wav", "");
  expect_decode_error(d / "empty.wav", "is empty (0 bytes)");
  write_bytes(d / "text.wav", "this is a text file, not audio at all\n");
  expect_decode_error(d / "text.wav", "not a recognised audio file");
  write_bytes(d / "zeros.flac", std::string(4096, '\0'));
  expect_decode_error(d / "zeros.flac", "not a recognised audio file");

  // Truncated headers of each container: the message says which container and that the header is
  // truncated or malformed.
  const std::string wav = read_bytes(testing_paths::audio("en_hello_3s.wav"));
  const std::string flac = read_bytes(testing_paths::audio("stereo_44k.flac"));
  const std::string aiff = read_bytes(testing_paths::audio("real_speech.aiff"));
  const std::pair<std::string, std::string> headers[] = {
      {"hdr20.wav", wav.substr(0, 20)},       {"hdr30.wav", wav.substr(0, 30)},
      {"hdr40.wav", wav.substr(0, 40)},       {"hdr30.flac", flac.substr(0, 30)},
      {"hdr100.flac", flac.substr(0, 100)},   {"hdr60.aiff", aiff.substr(0, 60)},
      {"hdr1000.aiff", aiff.substr(0, 1000)},
  };
  for (const auto& [name, bytes] : headers) {
    write_bytes(d / name, bytes);
    expect_decode_error(d / name, "header is truncated or malformed");
  }
  expect_decode_error(d / "hdr30.flac", "FLAC file");
  expect_decode_error(d / "hdr60.aiff", "AIFF file");

  // A valid header with no data, and with a half sample.
  write_bytes(d / "zero.wav", wav_bytes(1, 1, 16000, 16, ""));
  expect_decode_error(d / "zero.wav", "no audio frames");
  write_bytes(d / "half.wav", wav_bytes(1, 2, 16000, 16, "\x01\x02\x03", 3));
  expect_decode_error(d / "half.wav", "no audio frames");

  // NaN / Inf in a float WAV; only the channels that are used count.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  write_bytes(d / "nan.wav",
              wav_bytes(3, 1, 16000, 32, float_data({0, 0.1f, 0.2f, 0.3f, 0.4f, nan})));
  expect_decode_error(d / "nan.wav", "sample 5 of channel 0 is nan");
  write_bytes(d / "inf.wav", wav_bytes(3, 1, 16000, 32, float_data({0, -inf, 0.2f})));
  expect_decode_error(d / "inf.wav", "sample 1 of channel 0 is -inf");
  write_bytes(d / "nan_ch1.wav", wav_bytes(3, 2, 16000, 32, float_data({0.5f, 0, 0.25f, nan})));
  EXPECT_EQ(decode_audio((d / "nan_ch1.wav").string()).samples, (std::vector<float>{0.5f, 0.25f}));
  expect_decode_error(d / "nan_ch1.wav", "sample 1 of channel 1 is nan", {.mix = true});

  // Rates the resampler cannot handle are rejected at the header.
  write_bytes(d / "fast.wav", wav_bytes(1, 1, 4'000'000, 16, std::string(8, '\0')));
  expect_decode_error(d / "fast.wav", "sample rate 4000000 Hz is outside");

  // The decompression-bomb guard.
  expect_decode_error(testing_paths::audio("tiny_0.05s.wav"), "more than 100 frames",
                      {.max_frames = 100});
}

TEST(Decode, UnreadableFile) {
  const fs::path p = tmpdir() / "locked.wav";
  fs::copy_file(testing_paths::audio("tiny_0.05s.wav"), p, fs::copy_options::overwrite_existing);
  ASSERT_EQ(::chmod(p.c_str(), 0), 0);
  if (::geteuid() != 0) {
    expect_decode_error(p, "cannot open for reading: Permission denied");
    return;
  }
  // Root reads through mode 000, so check the permission path as an unprivileged user in a child
  // process (the error message comes back through a pipe).
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string msg = "no error";
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
      msg = "setuid failed";
    } else {
      try {
        decode_audio(p.string());
      } catch (const Error& e) {
        msg = e.what();
      }
    }
    (void)!::write(fds[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    msg.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  // The unprivileged child may not even reach the temp dir; either way access is refused.
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("Permission denied"), std::string::npos) << msg;
}

TEST(Decode, MemoryErrorsUseTheName) {
  const std::string bytes = read_bytes(testing_paths::audio("stereo_44k.flac"));
  const PcmAudio m = decode_audio_memory(bytes.data(), bytes.size(), "upload.flac", {.mix = true});
  const PcmAudio f = decode_audio(testing_paths::audio("stereo_44k.flac").string(), {.mix = true});
  EXPECT_EQ(m.samples, f.samples);
  EXPECT_EQ(m.channels, 2);
  auto expect = [](const std::string& data, const std::string& what) {
    try {
      decode_audio_memory(data.data(), data.size(), "upload.bin");
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'upload.bin'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect("", "is empty");
  expect("garbage bytes that are no audio", "not a recognised audio file");
  expect(bytes.substr(0, 30), "header is truncated");
}

TEST(Decode, WritesAndReadsEveryContainer) {
  // Round trip through libsndfile's encoders: lossless ones give the exact int16 samples back,
  // lossy ones (Vorbis, MP3) the same length and a close waveform. MP3 is written mono because
  // libsndfile 1.2.0's MP3 encoder garbles stereo input (torchaudio.load decodes the same garbage,
  // so it is the writer, not the reader).
  struct Case {
    const char* name;
    int format;
    bool lossless;
    int channels;
  };
  const Case cases[] = {
      {"rt.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, true, 2},
      {"rt.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, true, 2},
      {"rt.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, true, 2},
      {"rt.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, false, 2},
      {"rt.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, false, 1},
  };
  const int rate = 32000, frames = 9000;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<int16_t> pcm(static_cast<size_t>(c.channels * frames));
    for (int i = 0; i < frames; ++i) {
      const double t = static_cast<double>(i) / rate;
      pcm[c.channels * i] = static_cast<int16_t>(std::lround(12000 * std::sin(2 * M_PI * 440 * t)));
      if (c.channels == 2)
        pcm[2 * i + 1] = static_cast<int16_t>(std::lround(6000 * std::sin(2 * M_PI * 660 * t)));
    }
    const fs::path p = tmpdir() / c.name;
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = c.channels;
    info.format = c.format;
    ASSERT_TRUE(sf_format_check(&info)) << "libsndfile cannot write " << c.name;
    SNDFILE* f = sf_open(p.c_str(), SFM_WRITE, &info);
    ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
    ASSERT_EQ(sf_writef_short(f, pcm.data(), frames), frames);
    sf_close(f);
    const PcmAudio a = decode_audio(p.string());
    EXPECT_EQ(a.sample_rate, rate);
    EXPECT_EQ(a.channels, c.channels);
    ASSERT_EQ(a.samples.size(), static_cast<size_t>(frames));
    double err = 0;
    for (int i = 0; i < frames; ++i) {
      const float want = static_cast<float>(pcm[c.channels * i]) / 32768.0f;
      if (c.lossless) {
        ASSERT_EQ(a.samples[i], want) << i;
      }
      if (i > 2000 && i < frames - 2000) err = std::max(err, double{std::abs(a.samples[i] - want)});
    }
    EXPECT_LT(err, 0.05);
  }
}
