// Audio decoding through libsndfile (WAV, FLAC, Ogg/Vorbis, MP3, AIFF, ...). libsndfile's float
// reads are normalised the way torchaudio.load normalises (int16 / 32768), so the samples match
// the official loader's. Every failure names the file and says what is wrong with it.
#include <fcntl.h>
#include <sndfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>

#include "audio/load.h"
#include "core/error.h"
#include "core/log.h"

namespace stepaudio {
namespace {

struct SndCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndPtr = std::unique_ptr<SNDFILE, SndCloser>;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The container a file claims to be, from its first bytes; null when it looks like no audio
// format. Used only to tell "not audio" from "audio with a broken header" in messages.
const char* sniff_container(const unsigned char* h, size_t n) {
  auto starts = [&](const char* magic) {
    const size_t m = std::strlen(magic);
    return n >= m && std::memcmp(h, magic, m) == 0;
  };
  if (starts("RIFF") || starts("RIFX") || starts("RF64")) return "WAV";
  if (starts("FORM")) return "AIFF";
  if (starts("fLaC")) return "FLAC";
  if (starts("OggS")) return "Ogg";
  if (starts("ID3")) return "MP3";
  if (starts(".snd")) return "AU";
  if (starts("caff")) return "CAF";
  if (n >= 2 && h[0] == 0xFF && (h[1] & 0xE0) == 0xE0) return "MP3";
  return nullptr;
}

[[noreturn]] void fail_open(const std::string& where, const unsigned char* head, size_t head_len,
                            uint64_t size) {
  const char* why = sf_strerror(nullptr);
  if (const char* fmt = sniff_container(head, head_len))
    fail(
        "{}: cannot decode this {} file: its header is truncated or malformed, or it uses an "
        "unsupported encoding ({} bytes; libsndfile: {})",
        where, fmt, size, why);
  fail("{}: not a recognised audio file ({} bytes; libsndfile: {})", where, size, why);
}

// WAV and AIFF readers size the data by the file when it is shorter than the header says, so a
// cut file reads cleanly; libsndfile only notes it in its log ("data : N (should be M)").
void warn_if_data_chunk_short(SNDFILE* file, const std::string& where) {
  std::string log(16384, '\0');
  const int n = sf_command(file, SFC_GET_LOG_INFO, log.data(), static_cast<int>(log.size()));
  log.resize(static_cast<size_t>(std::clamp(n, 0, static_cast<int>(log.size()))));
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    std::string_view line(log.data() + start, end - start);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if ((line.starts_with("data :") || line.starts_with("SSND :")) &&
        line.find("(should be") != std::string_view::npos) {
      log::warn(
          "{}: the audio data is shorter than its header declares (libsndfile: '{}'); the "
          "file is probably truncated, decoding what is there",
          where, line);
      return;
    }
    start = end + 1;
  }
}

// Reads every frame, keeping channel 0 (or the channel mean) as mono float.
PcmAudio read_all(SNDFILE* file, const SF_INFO& info, const std::string& where,
                  const DecodeOptions& opts) {
  if (info.channels < 1)
    fail("{}: header declares {} channels, expected >= 1", where, info.channels);
  if (info.samplerate < 1 || info.samplerate > kMaxSampleRate)
    fail("{}: sample rate {} Hz is outside the supported range [1, {}]", where, info.samplerate,
         kMaxSampleRate);
  if (info.frames == 0) fail("{}: contains no audio frames (zero-length data)", where);
  warn_if_data_chunk_short(file, where);

  PcmAudio out;
  out.sample_rate = info.samplerate;
  out.channels = info.channels;
  const int64_t ch = info.channels;
  const int64_t used = opts.mix ? ch : 1;  // channels that reach the output
  // Reserve from the header only when it is plausible; a lying header must not allocate.
  if (info.frames > 0 && info.frames <= std::min<int64_t>(opts.max_frames, int64_t{1} << 26))
    out.samples.reserve(static_cast<size_t>(info.frames));

  constexpr int64_t kBlock = 4096;
  std::vector<float> buf(static_cast<size_t>(kBlock * ch));
  int64_t total = 0;
  for (;;) {
    const sf_count_t got = sf_readf_float(file, buf.data(), kBlock);
    if (got <= 0) break;
    if (total + got > opts.max_frames)
      fail("{}: decodes to more than {} frames (the max_frames limit)", where, opts.max_frames);
    for (sf_count_t f = 0; f < got; ++f) {
      const float* frame = buf.data() + f * ch;
      double sum = 0;
      for (int64_t c = 0; c < used; ++c) {
        if (!std::isfinite(frame[c]))
          fail("{}: sample {} of channel {} is {}; expected finite audio", where, total + f, c,
               frame[c]);
        sum += frame[c];
      }
      out.samples.push_back(opts.mix ? static_cast<float>(sum / static_cast<double>(ch))
                                     : frame[0]);
    }
    total += got;
  }

  if (sf_error(file) != SF_ERR_NO_ERROR) {
    const char* why = sf_strerror(file);
    if (total == 0) fail("{}: decoding failed before any audio frame: {}", where, why);
    const std::string declared = info.frames == SF_COUNT_MAX
                                     ? std::string()
                                     : fmt::format(" of the {} declared", info.frames);
    log::warn(
        "{}: decoding stopped after {} frames{} ({}); the data is probably truncated, using "
        "what was decoded",
        where, total, declared, why);
  } else if (info.frames != SF_COUNT_MAX && total < info.frames && total > 0) {
    log::warn("{}: file ends early: decoded {} of the {} frames its header declares", where, total,
              info.frames);
  }
  if (total == 0) fail("{}: contains no audio frames", where);
  return out;
}

// libsndfile virtual I/O over a byte span.
struct MemSource {
  const unsigned char* data;
  sf_count_t size;
  sf_count_t pos;
};

sf_count_t mem_length(void* u) { return static_cast<MemSource*>(u)->size; }

sf_count_t mem_seek(sf_count_t offset, int whence, void* u) {
  auto* m = static_cast<MemSource*>(u);
  sf_count_t base = 0;
  if (whence == SEEK_CUR)
    base = m->pos;
  else if (whence == SEEK_END)
    base = m->size;
  else if (whence != SEEK_SET)
    return -1;
  // Offsets come from file headers: guard the addition against overflow.
  if ((offset > 0 && base > SF_COUNT_MAX - offset) || base + offset < 0) return -1;
  m->pos = base + offset;  // past the end is allowed, reads there return 0 bytes
  return m->pos;
}

sf_count_t mem_read(void* ptr, sf_count_t count, void* u) {
  auto* m = static_cast<MemSource*>(u);
  if (count <= 0 || m->pos >= m->size) return 0;
  const sf_count_t n = std::min(count, m->size - m->pos);
  std::memcpy(ptr, m->data + m->pos, static_cast<size_t>(n));
  m->pos += n;
  return n;
}

sf_count_t mem_write(const void*, sf_count_t, void*) { return 0; }

sf_count_t mem_tell(void* u) { return static_cast<MemSource*>(u)->pos; }

}  // namespace

PcmAudio decode_audio(const std::string& path, const DecodeOptions& opts) {
  namespace fs = std::filesystem;
  const std::string where = fmt::format("audio file '{}'", path);
  if (path.empty()) fail("audio file path is empty");
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) fail("{}: no such file", where);
  if (ec) fail("{}: cannot access: {}", where, ec.message());
  if (fs::is_directory(st)) fail("{}: is a directory, expected an audio file", where);
  if (!fs::is_regular_file(st)) fail("{}: is not a regular file, expected an audio file", where);

  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail("{}: cannot open for reading: {}", where, std::strerror(errno));
  struct stat sb {};
  if (::fstat(fd.get(), &sb) != 0) fail("{}: cannot stat: {}", where, std::strerror(errno));
  if (sb.st_size == 0) fail("{}: is empty (0 bytes), expected audio", where);
  unsigned char head[16] = {};
  const ssize_t head_len = ::pread(fd.get(), head, sizeof head, 0);
  if (head_len < 0) fail("{}: cannot read: {}", where, std::strerror(errno));

  SF_INFO info{};
  SndPtr file(sf_open_fd(fd.get(), SFM_READ, &info, SF_FALSE));
  if (!file)
    fail_open(where, head, static_cast<size_t>(head_len), static_cast<uint64_t>(sb.st_size));
  return read_all(file.get(), info, where, opts);
}

PcmAudio decode_audio_memory(const void* data, size_t size, const std::string& name,
                             const DecodeOptions& opts) {
  const std::string where = fmt::format("audio '{}'", name);
  if (size == 0 || data == nullptr) fail("{}: is empty (0 bytes), expected audio", where);
  MemSource src{static_cast<const unsigned char*>(data), static_cast<sf_count_t>(size), 0};
  SF_VIRTUAL_IO io{mem_length, mem_seek, mem_read, mem_write, mem_tell};
  SF_INFO info{};
  SndPtr file(sf_open_virtual(&io, SFM_READ, &info, &src));
  if (!file) fail_open(where, src.data, std::min<size_t>(size, 16), size);
  return read_all(file.get(), info, where, opts);
}

std::vector<float> load_audio_16k(const std::string& path, const DecodeOptions& opts) {
  PcmAudio pcm = decode_audio(path, opts);
  if (pcm.sample_rate == 16000) return std::move(pcm.samples);
  return resample(pcm.samples, pcm.sample_rate, 16000);
}

}  // namespace stepaudio
