// stepaudio make-voice --prompt-wav WAV --codes CODES.txt --speaker-embedding EMB -o VOICE:
// packs a prompt speaker into a voice file (model/voice.h). The prompt mel is computed here from
// the wav (mean over channels, 24 kHz, flow mel, 2 frames per code); the speech codes and the
// CAM++ embedding come from outside (the S3 tokenizer and CAM++ are not part of this engine).
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "audio/prompt_mel.h"
#include "command.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/voice.h"

namespace {

using namespace stepaudio;

struct MakeVoiceArgs {
  std::string wav, codes, embedding, out;
};

std::string read_all(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the {} file", path, what);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Whitespace- or comma-separated tokens.
std::vector<std::string> tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::vector<int32_t> read_codes(const std::string& path) {
  std::vector<int32_t> codes;
  const auto toks = tokens(read_all(path, "codes"));
  for (size_t i = 0; i < toks.size(); ++i) {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(toks[i].c_str(), &end, 10);
    if (errno || *end || v < 0 || v >= kSpeechCodebookSize)
      fail("{}: code {} is '{}', expected an integer in [0, {})", path, i + 1, toks[i],
           kSpeechCodebookSize);
    codes.push_back(static_cast<int32_t>(v));
  }
  if (codes.empty()) fail("{}: no speech codes found", path);
  return codes;
}

Tensor read_embedding(const std::string& path) {
  if (path.size() >= 12 && path.ends_with(".safetensors")) {
    const SafetensorsFile f = SafetensorsFile::open(path);
    if (f.tensors().size() != 1)
      fail("{}: expected exactly one tensor (the speaker embedding), found {}", path,
           f.tensors().size());
    const std::string& name = f.tensors().begin()->first;
    Tensor t = f.get(name);
    if (t.numel() != kSpeakerEmbeddingDim ||
        (t.dtype() != DType::F32 && t.dtype() != DType::F16 && t.dtype() != DType::BF16))
      fail("{}: tensor '{}' is {}, expected {} floats", path, name, t.desc(), kSpeakerEmbeddingDim);
    return t.to_dtype(DType::F32).reshape({kSpeakerEmbeddingDim});
  }
  const auto toks = tokens(read_all(path, "speaker embedding"));
  if (toks.size() != static_cast<size_t>(kSpeakerEmbeddingDim))
    fail("{}: found {} values, expected {} (the CAM++ speaker embedding)", path, toks.size(),
         kSpeakerEmbeddingDim);
  std::vector<float> v;
  for (size_t i = 0; i < toks.size(); ++i) {
    errno = 0;
    char* end = nullptr;
    const float x = std::strtof(toks[i].c_str(), &end);
    if (errno || *end || !std::isfinite(x))
      fail("{}: value {} is '{}', expected a finite number", path, i + 1, toks[i]);
    v.push_back(x);
  }
  return Tensor::from_vector(v, {kSpeakerEmbeddingDim});
}

int run_make_voice(const MakeVoiceArgs& a) {
  Voice v;
  v.prompt_codes = read_codes(a.codes);
  v.speaker_embedding = read_embedding(a.embedding);
  const Tensor mel = prompt_mel_from_file(a.wav);
  v.prompt_mel = fix_prompt_mel_length(mel, static_cast<int64_t>(v.prompt_codes.size()));
  save_voice(a.out, v);
  std::printf("prompt: %s (%lld mel frames, %zu codes -> %lld frames)\n", a.wav.c_str(),
              static_cast<long long>(mel.dim(0)), v.prompt_codes.size(),
              static_cast<long long>(v.prompt_mel.dim(0)));
  std::printf("wrote %s\n", a.out.c_str());
  return 0;
}

stepaudio::cli::Register reg(
    "make-voice", "pack a prompt wav, its speech codes and a speaker embedding into a voice file",
    [](CLI::App& sub) {
      auto a = std::make_shared<MakeVoiceArgs>();
      sub.add_option("--prompt-wav", a->wav, "prompt audio (any format/rate/channels)")->required();
      sub.add_option("--codes", a->codes, "text file of the prompt's 25 Hz speech codes")
          ->required();
      sub.add_option("--speaker-embedding", a->embedding,
                     ".safetensors with one 192-float tensor, or a text file of 192 floats")
          ->required();
      sub.add_option("-o,--out", a->out, "voice file to write (.safetensors)")->required();
      return [a]() -> int { return run_make_voice(*a); };
    });

}  // namespace
