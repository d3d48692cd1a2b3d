#include "model/audio_splice.h"

namespace stepaudio {

Tensor splice_audio(const Tensor& embeds, std::span<const int32_t> ids,
                    const std::vector<Tensor>& audio_rows) {
  if (!embeds.defined() || embeds.dtype() != DType::F32 || embeds.ndim() != 2)
    fail("splice_audio: expected F32 embeddings [L, hidden], got {}",
         embeds.defined() ? embeds.desc() : "nothing");
  const int64_t L = embeds.dim(0), Hd = embeds.dim(1);
  if (static_cast<int64_t>(ids.size()) != L)
    fail("splice_audio: {} ids but {} embedding rows", ids.size(), L);
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < L; ++i)
    if (ids[static_cast<size_t>(i)] == kAudioStartId) starts.push_back(i);
  if (starts.size() != audio_rows.size())
    fail("splice_audio: the prompt has {} <audio_start> tokens but {} audio chunks were given",
         starts.size(), audio_rows.size());
  Tensor out = embeds.clone();
  for (size_t k = 0; k < starts.size(); ++k) {
    const Tensor& r = audio_rows[k];
    if (!r.defined() || r.dtype() != DType::F32 || r.ndim() != 2 || r.dim(1) != Hd)
      fail("splice_audio: audio chunk {}: expected F32 [n, {}], got {}", k, Hd,
           r.defined() ? r.desc() : "nothing");
    const int64_t s = starts[k] + 1, n = r.dim(0);
    if (s + n > L)
      fail(
          "splice_audio: audio chunk {} has {} rows but only {} positions follow its "
          "<audio_start> at {}",
          k, n, L - s, starts[k]);
    Tensor rows = out.slice_rows(s, s + n);  // a view: the copy lands in `out`, on its device
    copy_into(rows, r);
  }
  return out;
}

}  // namespace stepaudio
