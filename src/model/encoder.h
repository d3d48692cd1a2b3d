// The audio encoder (spec §3; Whisper-large-v3 shape, Qwen2-Audio-style pooling) followed by the
// adaptor (§4): log-mel chunks in, one block of LLM-width rows per chunk out.
//
//   x = gelu(conv1(mel)); x = gelu(conv2(x))            stride 2: T2 = (T + 1) / 2
//   x = x^T + positional_embedding[:T2]
//   32 x { x += attn(attn_ln(x), key_bias); x += mlp(mlp_ln(x)) }
//   x = after_norm(avg_pool(x))                          T3 = T2 / 2
//   adaptor(x)                                           T4 = (T3 - 1) / 2 + 1
//
// Chunks are run as one zero-padded batch, exactly like the official padding_mels: the key mask
// offset (T_max + 1) % 2 depends on the longest chunk, so a chunk's result depends on its batch
// (golden README §4).
#pragma once
#include <cstdint>
#include <vector>

#include "core/device.h"
#include "model/adaptor.h"
#include "model/weights.h"

namespace stepaudio {

// What tests compare against the official model (all host F32).
struct EncoderTrace {
  std::vector<Tensor> blocks_in;     // per chunk: [(T_k + 1) / 2, n_state] rows of block 0's input
  std::vector<Tensor> encoder_out;   // per chunk: [E_k, n_state], after after_norm
  std::vector<int64_t> encoder_len;  // per chunk: E_k
  Tensor key_bias;                   // [B, (T_max + 1) / 2]: 0 for used keys, -1e10 for masked
};

// The lengths of the official code for a chunk of T mel frames (T includes the 2 pad frames).
int64_t audio_wav_len(int64_t mel_frames);      // T - 2
int64_t audio_encoder_len(int64_t mel_frames);  // E = (wav_len + 1) / 2 / 2
int64_t audio_adaptor_len(int64_t mel_frames);  // n = (E - 1) / 2 + 1 (= audio_patch_count)

class AudioEncoder {
 public:
  // On CUDA the weights are uploaded once: matrices in `cuda_weights` (BF16 by default; F32
  // gives fp32 compute for comparisons with the goldens), vectors as F32.
  AudioEncoder(const Checkpoint& ckpt, Device device = Device::cpu(),
               DType cuda_weights = DType::BF16)
      : AudioEncoder(ckpt.config().audio, weights_of(ckpt), device, cuda_weights) {}
  AudioEncoder(const AudioEncoderConfig& cfg, const WeightFn& get, Device device = Device::cpu(),
               DType cuda_weights = DType::BF16);

  const AudioEncoderConfig& config() const { return cfg_; }

  // mels: one F32 [n_mels, T_k] per chunk, on any device. Returns one CPU F32 [n_k, llm_dim] per
  // chunk: the rows the LLM receives after that chunk's <audio_start>. Trace tensors are on the
  // CPU.
  std::vector<Tensor> encode(const std::vector<Tensor>& mels, EncoderTrace* trace = nullptr) const;

 private:
  struct Block {
    Tensor attn_ln_w, attn_ln_b, q_w, q_b, k_w, v_w, v_b, o_w, o_b;
    Tensor qkv_w, qkv_b;  // on CUDA: q | k | v in one product ([3C, C]; the key part of qkv_b is 0)
    Tensor mlp_ln_w, mlp_ln_b, fc1_w, fc1_b, fc2_w, fc2_b;
  };
  Tensor block(const Block& b, const Tensor& x, const Tensor& key_bias) const;

  AudioEncoderConfig cfg_;
  Device device_;
  Tensor conv1_w_, conv1_b_, conv2_w_, conv2_b_, pos_, after_w_, after_b_;
  std::vector<Block> blocks_;
  Adaptor adaptor_;
};

}  // namespace stepaudio
