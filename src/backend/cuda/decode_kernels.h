// Raw-pointer launchers of the decode kernels (decode_cuda.cu, sample_cuda.cu); no fmt/core
// headers here (see kernels_cuda.h). All launches go to the calling thread's default stream.
#pragma once
#include <cstdint>

#include "backend/cuda/kernels_cuda.h"

namespace stepaudio::cuda {

// Raw launchers (decode_cuda.cu).
void launch_embedding_rows(const void* table, Elem t, int64_t rows, int64_t dim, const int32_t* ids,
                           int64_t n, float* y);
void launch_add_rms_norm(float* x, const float* r, int64_t rows, int64_t n, const float* w,
                         float eps, float* y);
void launch_qkv_rope_append(const float* qkv, int64_t B, int64_t H, int64_t Hkv, int64_t D,
                            const int32_t* positions, const int32_t* slots, void* k_cache,
                            void* v_cache, bool bf16_cache, int64_t max_len, double theta,
                            float* q);
struct DecodeAttentionArgs {
  const float* q;
  const void *k, *v;
  bool bf16;
  const int32_t *slots, *positions;
  int64_t B, H, Hkv, D, max_len, splits;
  float scale;
  float *part_o, *part_ml, *out;
};
constexpr int64_t kDecodeKeysPerSplit = 128;
constexpr int64_t kDecodeMaxGroup = 8;
constexpr int64_t kDecodeMaxHeadDim = 256;
void launch_decode_attention(const DecodeAttentionArgs& a);
void launch_swiglu(const float* gu, int64_t B, int64_t I, float* y);
void launch_advance(int32_t* p, int64_t n);

// sample_cuda.cu: one block per row; z is an F32 [B, V] workspace.
void launch_sample(const float* logits, int64_t B, int64_t V, const void* params, uint8_t* presence,
                   int64_t* steps, int32_t* ids, float* z);

}  // namespace stepaudio::cuda
