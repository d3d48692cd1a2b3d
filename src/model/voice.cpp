#include "model/voice.h"

#include <cmath>

#include "io/safetensors.h"

namespace stepaudio {

namespace {
void check_finite(const Tensor& t, const std::string& where, const char* name) {
  const float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(p[i])) fail("{}: tensor '{}' holds {} at element {}", where, name, p[i], i);
}
}  // namespace

void validate_voice(const Voice& v, const std::string& where) {
  const int64_t n = static_cast<int64_t>(v.prompt_codes.size());
  if (n == 0) fail("{}: tensor 'prompt_codes' is empty; a voice needs at least one code", where);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t c = v.prompt_codes[static_cast<size_t>(i)];
    if (c < 0 || c >= kSpeechCodebookSize)
      fail("{}: tensor 'prompt_codes' element {} is {}, expected a code in [0, {})", where, i, c,
           kSpeechCodebookSize);
  }
  const Tensor& m = v.prompt_mel;
  if (!m.defined()) fail("{}: tensor 'prompt_mel' is missing", where);
  if (m.dtype() != DType::F32 || !m.device().is_cpu() || m.shape() != Shape{2 * n, kFlowMels})
    fail(
        "{}: tensor 'prompt_mel' is {}, expected F32[{}, {}] on cpu (2 frames per prompt code, "
        "{} codes)",
        where, m.desc(), 2 * n, kFlowMels, n);
  check_finite(m, where, "prompt_mel");
  const Tensor& s = v.speaker_embedding;
  if (!s.defined()) fail("{}: tensor 'speaker_embedding' is missing", where);
  if (s.dtype() != DType::F32 || !s.device().is_cpu() || s.shape() != Shape{kSpeakerEmbeddingDim})
    fail("{}: tensor 'speaker_embedding' is {}, expected F32[{}] on cpu", where, s.desc(),
         kSpeakerEmbeddingDim);
  check_finite(s, where, "speaker_embedding");
}

Voice load_voice(const std::string& path) {
  SafetensorsFile f = SafetensorsFile::open(path);
  for (const auto& [name, info] : f.tensors())
    if (name != "prompt_codes" && name != "prompt_mel" && name != "speaker_embedding")
      fail(
          "{}: unexpected tensor '{}' in a voice file (expected prompt_codes, prompt_mel, "
          "speaker_embedding)",
          path, name);
  for (const char* name : {"prompt_codes", "prompt_mel", "speaker_embedding"})
    if (!f.has(name)) fail("{}: tensor '{}' is missing", path, name);

  Voice v;
  const Tensor codes = f.get("prompt_codes");
  if (codes.ndim() != 1 || (codes.dtype() != DType::I64 && codes.dtype() != DType::I32))
    fail("{}: tensor 'prompt_codes' is {}, expected I64[N]", path, codes.desc());
  for (int64_t i = 0; i < codes.numel(); ++i) {
    const int64_t c =
        codes.dtype() == DType::I64 ? codes.data<int64_t>()[i] : codes.data<int32_t>()[i];
    if (c < 0 || c >= kSpeechCodebookSize)
      fail("{}: tensor 'prompt_codes' element {} is {}, expected a code in [0, {})", path, i, c,
           kSpeechCodebookSize);
    v.prompt_codes.push_back(static_cast<int32_t>(c));
  }
  auto widen = [&](const char* name) {
    Tensor t = f.get(name);
    if (t.dtype() == DType::F16 || t.dtype() == DType::BF16) return t.to_dtype(DType::F32);
    return t;
  };
  v.prompt_mel = widen("prompt_mel");
  v.speaker_embedding = widen("speaker_embedding");
  validate_voice(v, path);
  return v;
}

void save_voice(const std::string& path, const Voice& v) {
  validate_voice(v, path);
  const int64_t n = static_cast<int64_t>(v.prompt_codes.size());
  Tensor codes = Tensor::empty({n}, DType::I64);
  for (int64_t i = 0; i < n; ++i) codes.data<int64_t>()[i] = v.prompt_codes[static_cast<size_t>(i)];
  save_safetensors(path,
                   {{"prompt_codes", codes},
                    {"prompt_mel", v.prompt_mel},
                    {"speaker_embedding", v.speaker_embedding}},
                   {{"format", "stepaudio-voice"}});
}

}  // namespace stepaudio
