// Raw-pointer launchers of the op kernels (the .cu files), called by ops_cuda.cpp. Kept free of
// fmt and core headers: nvcc 13 cannot compile fmt 9's compile-time format checks, so every
// message and Tensor lives in g++-compiled code. Every launcher queues its kernels on the legacy
// default stream and then calls check_launch(), which throws stepaudio::Error on a launch error.
#pragma once
#include <cstdint>

namespace stepaudio::cuda {

enum class Elem : int { F32, BF16, F16 };

// Defined in ops_cuda.cpp: throws when the last launch failed, naming `what`.
void check_launch(const char* what);
int sm_count();

void launch_gelu(float* x, int64_t n);
void launch_relu(float* x, int64_t n);
void launch_silu_mul(const float* gate, const float* up, float* y, int64_t n);
// a[i] += b[i % nb]
void launch_add(float* a, int64_t n, const void* b, Elem bt, int64_t nb);
void launch_rope(float* x, int64_t L, int64_t heads, int64_t head_dim, int64_t start, double theta);
void launch_embedding(const void* table, Elem t, int64_t dim, const int32_t* ids, int64_t n,
                      float* y);
void launch_avg_pool2(const float* x, int64_t B, int64_t T, int64_t C, float* y);
void launch_transpose(const float* x, int64_t B, int64_t A, int64_t C, float* y);
void launch_convert(const void* x, Elem xt, void* y, Elem yt, int64_t n);

void launch_rms_norm(const float* x, int64_t rows, int64_t n, const void* w, Elem wt, float eps,
                     float* y);
void launch_layer_norm(const float* x, int64_t rows, int64_t n, const void* w, const void* b,
                       Elem wt, float eps, float* y);
// Fused ops (fused_ops_cuda.cpp). Per row of n: when r is given, x_out = x + r (+ rb) first;
// then y = layer_norm(that row) with w, b (type wt), written as yt (F32 or BF16). x_out may be x.
void launch_add_layer_norm(const float* x, float* x_out, const float* r, const void* rb, Elem rbt,
                           int64_t rows, int64_t n, const void* w, const void* b, Elem wt,
                           float eps, void* y, Elem yt);
// y = x + b, or gelu(x + b), per row of n, written as yt (F32 or BF16); b may be null.
// split > 0 (dividing n): y is [n / split, rows, split], each row's parts to their own block.
void launch_bias_act(const float* x, int64_t rows, int64_t n, const void* b, Elem bt, bool gelu,
                     void* y, Elem yt, int64_t split = 0);
// x += r + b per row of n.
void launch_add_residual(float* x, const float* r, int64_t rows, int64_t n, const void* b, Elem bt);

// y[M, N] = x[M, K] W[N, K]^T + b for M <= kGemvMaxRows; b may be null.
constexpr int64_t kGemvMaxRows = 8;
void launch_gemv(const float* x, int64_t M, const void* w, Elem wt, const void* b, Elem bt,
                 float* y, int64_t N, int64_t K);
// Defined in ops_cuda.cpp: up to this many rows take the GEMV, more go to cuBLAS.
int64_t gemv_max_rows();

// The decode projections' GEMV (M <= kGemvMaxRows rows) with the op before it folded into the
// load of x and the residual add into the store of y:
//   Plain:   y (+)= x W^T + b                      x [M, K]
//   RmsNorm: y (+)= rms_norm(x, norm_w, eps) W^T + b
//   SwiGlu:  y (+)= (silu(gate) * up) W^T + b        x = gate | up [M, 2K]
// With accumulate, y += the product; y must not overlap x then. b (F32) and norm_w (F32) may be
// null where unused. Returns false (and launches nothing) when RmsNorm/SwiGlu cannot run fused
// for this shape or alignment, or SwiGlu's row is too long to stage well; Plain always runs.
enum class GemvInput : int { Plain, RmsNorm, SwiGlu };
struct FusedGemvArgs {
  const float* x;
  const float* norm_w;
  float eps;
  const void* w;
  Elem wt;
  const float* b;
  float* y;
  bool accumulate;
  int64_t M, N, K;
};
bool launch_fused_gemv(const FusedGemvArgs& a, GemvInput in);
// The cuBLAS path's prologues, written in the product's input type yt: y = rms_norm(x) per row of
// n, and y = silu(gate) * up from gu [rows, 2 I].
void launch_rms_norm_cast(const float* x, int64_t rows, int64_t n, const float* w, float eps,
                          void* y, Elem yt);
void launch_swiglu_cast(const float* gu, int64_t rows, int64_t I, void* y, Elem yt);
// Programmatic dependent launch of the GEMV (sm_90+; off by default, STEPAUDIO_PDL=1 on).
void set_gemv_pdl(bool on);
void launch_add_bias(float* y, int64_t rows, int64_t N, const void* b, Elem bt);
void launch_im2col(const float* x, int64_t B, int64_t C, int64_t T, int64_t K, int64_t stride,
                   int64_t pad, int64_t To, float* col);

struct AttentionArgs {
  const float *q, *k, *v, *bias;  // bias [B, Lk] or null
  float* out;
  float *part_o, *part_ml;  // split-K workspaces ([splits, B*Lq*H, D] and [.., 2]) or null
  int64_t B, Lq, Lk, H, Hkv, D;
  float scale;
  bool causal;
  int64_t q_offset;
  int64_t keys_per_split, splits;
};
constexpr int64_t kAttentionMaxHeadDim = 128;
constexpr int64_t kAttentionKeyTile = 32;
constexpr int64_t kAttentionRowTile = 16;
void launch_attention(const AttentionArgs& a);

// Flash attention on bf16 tensor cores for many queries (flash_attention.cu). q [B, Lq, H, D],
// k = v [B, Lk, Hkv, D] in bf16, contiguous; out F32 [B, Lq, H, D]; fp32 softmax and accumulation.
// Needs Lk >= 1 and a head_dim for which flash_attention_supports() holds.
struct FlashAttentionArgs {
  const void *q, *k, *v;  // __nv_bfloat16
  const float* bias;      // [B, Lk] or null
  void* out;              // float, or __nv_bfloat16 when out_bf16
  bool out_bf16;
  int64_t B, Lq, Lk, H, Hkv, D;
  float scale;
  bool causal;
  int64_t q_offset;
};
bool flash_attention_supports(int64_t head_dim);
void launch_flash_attention(const FlashAttentionArgs& a);

}  // namespace stepaudio::cuda
