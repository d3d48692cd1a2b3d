// Raw-pointer launchers of the decode kernels (decode_cuda.cu, sample_cuda.cu); no fmt/core
// headers here (see kernels_cuda.h). All launches go to the calling thread's default stream.
#pragma once
#include <cstdint>

#include "backend/cuda/kernels_cuda.h"

namespace stepaudio::cuda {

// Raw launchers (decode_cuda.cu, decode_attention.cu).
void launch_embedding_rows(const void* table, Elem t, int64_t rows, int64_t dim, const int32_t* ids,
                           int64_t n, float* y);
void launch_add_rms_norm(float* x, const float* r, int64_t rows, int64_t n, const float* w,
                         float eps, float* y);
void launch_qkv_rope_append(const float* qkv, int64_t B, int64_t H, int64_t Hkv, int64_t D,
                            const int32_t* positions, const int32_t* slots, void* k_cache,
                            void* v_cache, bool bf16_cache, int64_t max_len, double theta,
                            float* q);
// Split-K decode attention (decode_attention.cu). Block `split` of a sequence takes the keys
// [split * keys_per_split, +keys_per_split) below its length and writes an unnormalised partial
// output part_o [B, H, splits, D] with its (max, sum) in part_ml [B, H, splits, 2]; a merge kernel
// combines them (the tensor-core path writes and reads only the splits that hold keys).
struct DecodeAttentionArgs {
  const float* q;
  const void *k, *v;
  bool bf16;
  const int32_t *slots, *positions;
  int64_t B, H, Hkv, D, max_len, splits, keys_per_split;
  float scale;
  float *part_o, *part_ml, *out;
};
// The CUDA-core kernel (F32 caches, any head dim): 128 keys per split, at most 8 query heads per
// KV head.
constexpr int64_t kDecodeKeysPerSplit = 128;
constexpr int64_t kDecodeMaxGroup = 8;
constexpr int64_t kDecodeMaxHeadDim = 256;
// The tensor-core kernel (BF16 caches, head dim 64 or 128): the group padded to 16 rows.
constexpr int64_t kDecodeMmaMaxGroup = 16;
bool decode_attention_uses_mma(bool bf16_cache, int64_t head_dim);
// Keys per split for a launch; depends only on the shapes (never on the positions), so that a
// captured step replays the same grid.
int64_t decode_keys_per_split(bool bf16_cache, int64_t B, int64_t Hkv, int64_t D, int64_t max_len);
void launch_decode_attention(const DecodeAttentionArgs& a);
void launch_swiglu(const float* gu, int64_t B, int64_t I, float* y);
void launch_advance(int32_t* p, int64_t n);

// sample_cuda.cu: `work` holds sample_workspace_floats(B, V) floats (256-byte aligned, as the
// allocator gives).
int64_t sample_workspace_floats(int64_t B, int64_t V);
void launch_sample(const float* logits, int64_t B, int64_t V, const void* params, uint8_t* presence,
                   int64_t* steps, int32_t* ids, float* work);

}  // namespace stepaudio::cuda
