// Scaled dot-product attention on f32 tensors, softmax in f32.
#pragma once
#include <cstdint>

namespace stepaudio::cpu {

struct AttentionShape {
  int64_t batch = 1;
  int64_t q_len = 0, kv_len = 0;
  int64_t heads = 0, kv_heads = 0, head_dim = 0;  // heads % kv_heads == 0 (GQA)
};

// q: [B, Lq, H, D]; k, v: [B, Lk, Hkv, D]; out: [B, Lq, H, D]; all contiguous.
// Query i may attend key j when !causal or j <= q_offset + i. key_bias ([B, Lk], may be null) is
// added to the scaled scores before the softmax, as the encoder's padding mask is.
void attention(const float* q, const float* k, const float* v, const AttentionShape& s, float scale,
               bool causal, int64_t q_offset, const float* key_bias, float* out);

}  // namespace stepaudio::cpu
