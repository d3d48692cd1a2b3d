// Puts the audio into the prompt (spec §4, golden README §4): the k-th <audio_start> (151688) in
// reading order receives chunk k, i.e. embedding rows s+1 ... s+n_k are replaced by that chunk's
// adaptor rows; the <audio_start> and <audio_end> rows keep their token embeddings.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace stepaudio {

inline constexpr int32_t kAudioStartId = 151688;

// embeds: F32 [L, hidden] (the embeddings of `ids`); audio_rows[k]: F32 [n_k, hidden].
// Returns a new [L, hidden] tensor. Fails when the number of <audio_start> tokens differs from
// the number of chunks, or a chunk's rows run past the end of the prompt.
Tensor splice_audio(const Tensor& embeds, std::span<const int32_t> ids,
                    const std::vector<Tensor>& audio_rows);

}  // namespace stepaudio
