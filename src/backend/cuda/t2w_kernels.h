// Raw-pointer launchers of the token2wav kernels (t2w_*.cu), called by t2w_ops_cuda.cpp. Free of
// fmt and core headers (see kernels_cuda.h). Every launcher queues its kernels on the calling
// thread's default stream and then calls check_launch(). Each kernel computes what its CPU
// counterpart in backend/cpu/{act,conv,stft,vocoder,flow}_cpu computes, in the same float32
// order where the result depends on it (noted at the kernel).
#pragma once
#include <cstdint>

#include "backend/cuda/kernels_cuda.h"

namespace stepaudio::cuda {

// Pointwise, in place (t2w_pointwise.cu). `p` is the slope / alpha / factor where one is used.
enum class T2wAct : int { LeakyRelu, Elu, Silu, Mish, Tanh, GeluTanh, Exp, Sin, Scale, Abs };
void launch_t2w_act(T2wAct act, float* x, int64_t n, float p);
void launch_t2w_clamp(float* x, int64_t n, float lo, float hi);
void launch_t2w_mul(float* a, const float* b, int64_t n);
// y += a * x
void launch_t2w_axpy(float* y, float a, const float* x, int64_t n);
// x [rows = B*C, T]: x + 1/(alpha[c]+1e-9) * sin(alpha[c]*x)^2
void launch_t2w_snake(float* x, const float* alpha, int64_t B, int64_t C, int64_t T);
// x [B, T, C] += gate[b, C] * y
void launch_t2w_gated_add(float* x, const float* gate, const float* y, int64_t B, int64_t T,
                          int64_t C);
// x [rows] -> y [rows, T], each value repeated
void launch_t2w_repeat_cols(const float* x, int64_t rows, int64_t T, float* y);
void launch_t2w_hamming_crossfade(const float* head, const float* tail, int64_t n, float* y);
// Rows of t -> t + left + right; mode 0 zero, 1 reflect, 2 replicate.
void launch_t2w_pad_rows(const float* x, int64_t rows, int64_t t, int64_t left, int64_t right,
                         int mode, float* y);
void launch_t2w_upsample_nearest(const float* x, int64_t rows, int64_t t, int64_t factor, float* y);
// y [B, C, T] += bias[C]
void launch_t2w_add_bias_rows(float* y, int64_t B, int64_t C, int64_t T, const float* bias);
// dst[o * dst_stride + i] = src[o * src_stride + i] for i < inner (element strides).
void launch_t2w_copy_strided(const float* src, int64_t src_stride, float* dst, int64_t dst_stride,
                             int64_t outer, int64_t inner);

// x [B, n*C] -> y [n, B, C] (all n chunks of the last axis in one launch).
void launch_t2w_chunks_last(const float* x, int64_t B, int64_t n, int64_t C, float* y);

// Convolutions (t2w_conv.cu). Shapes as cpu::Conv1dShape.
struct T2wConvShape {
  int64_t c_in, t_in, c_out, k, t_out, stride, pad_left, dilation, groups;
};
// col [B, C_in*K, t_out]: row (c, k) holds x[c, t*stride - pad_left + k*dilation] (0 outside).
void launch_t2w_im2col(const float* x, int64_t B, const T2wConvShape& s, float* col);
// Causal conv (stride 1, dilation 1) on channels-last x [B, T, C] with P = K-1 frames of left
// context ctx [B, C, P] (channels-first, as DiTCache keeps it; null: zeros):
// col [B*T, C*K], col[b*T + t, c*K + kk] = frame t + kk - P of [ctx; x].
void launch_t2w_im2col_causal_cl(const float* x, const float* ctx, int64_t B, int64_t T, int64_t C,
                                 int64_t K, float* col);
// col [B, R, C*K] (R <= P = K-1), col[b, t, c*K + kk] = ctx[b, c, t + kk] if t + kk < P, else 0:
// the context's part of the first R output frames of that conv.
void launch_t2w_causal_ctx_col(const float* ctx, int64_t B, int64_t R, int64_t C, int64_t K,
                               float* col);
// out [B, C, P] = the last P frames of [ctx; x] (ctx null: zeros).
void launch_t2w_causal_ctx_cl(const float* x, const float* ctx, int64_t B, int64_t T, int64_t C,
                              int64_t P, float* out);
// One input channel per group (depthwise): a direct loop. w F32 [C_out, K]; bias may be null.
void launch_t2w_conv_depthwise(const float* x, int64_t B, const T2wConvShape& s, const float* w,
                               const float* bias, float* y);
// ConvTranspose1d's gather: col [B, C_out*K, t_in] -> y [B, C_out, t_out] (+ bias, may be null).
void launch_t2w_col2im_transpose(const float* col, int64_t B, int64_t c_out, int64_t k,
                                 int64_t t_in, int64_t stride, int64_t pad, int64_t t_out,
                                 const float* bias, float* y);

// STFT / iSTFT of small frames (t2w_stft.cu), periodic Hann, center + reflect, float64 DFT sums
// as the CPU reference. stft: x [B, N] -> y [B, 2*bins, frames].
void launch_t2w_stft(const float* x, int64_t B, int64_t N, int64_t n_fft, int64_t hop, float* y);
// mag, phase [B, bins, frames] -> y [B, (frames-1)*hop]; seg is a [B, frames, n_fft] workspace.
void launch_t2w_istft(const float* mag, const float* phase, int64_t B, int64_t frames,
                      int64_t n_fft, int64_t hop, float* seg, float* y);

// NSF sine source (t2w_vocoder.cu): f0 [F] -> out [F*upsample, dim]; rand_ini / noise may be
// null; phase is a [F, dim] workspace.
struct T2wNsfParams {
  int64_t dim, upsample;
  float sample_rate, sine_amp, noise_std, voiced_threshold;
};
void launch_t2w_nsf_sines(const float* f0, int64_t F, const float* rand_ini, const float* noise,
                          const T2wNsfParams& p, float* phase, float* out);

// Flow composites (t2w_flow.cu).
// qu = q + u[h, d], qw = q + w[h, d] for q [rows, H*D].
void launch_t2w_add_pos_bias(const float* q, const float* u, const float* w, int64_t rows,
                             int64_t HD, float* qu, float* qw);
// Per (h, i) row of one batch item: s_j = (ac[h, i, j] + bd[h, i, T1-1+j-i]) / sqrt(D), softmax
// over j, written back to ac. ac [H, T1, T2], bd [H, T1, 2*T2-1].
void launch_t2w_rel_softmax(float* ac, const float* bd, int64_t H, int64_t T1, int64_t T2,
                            int64_t D);
void launch_t2w_timestep_embedding(const float* t, int64_t B, int64_t dim, float scale,
                                   float max_period, float* y);
void launch_t2w_modulated_layer_norm(const float* x, int64_t B, int64_t T, int64_t C,
                                     const float* shift, const float* scale, float eps, float* y);
// x [B, T, C] += gate[b, C] * add (as launch_t2w_gated_add), then y = the modulated LayerNorm of
// the new x (as launch_t2w_modulated_layer_norm), in one pass when C % 4 == 0 and aligned.
void launch_t2w_gated_add_modulated_ln(float* x, const float* gate, const float* add, int64_t B,
                                       int64_t T, int64_t C, const float* shift, const float* scale,
                                       float eps, float* y);
// y [rows, C] = Mish(LayerNorm(x) * w + b) (float64 statistics, biased variance) in one pass.
// Only for C % 4 == 0 with 16-byte aligned pointers: returns false (and does nothing) otherwise.
bool launch_t2w_layer_norm_mish(const float* x, int64_t rows, int64_t C, const float* w,
                                const float* b, float eps, float* y);
// out[i] = rng::counter_normal(mix64(seed), offset + i), i < n (backend/cpu/counter_rng.h).
void launch_t2w_counter_normal(uint64_t seed, int64_t offset, int64_t n, float* out);
// qkv [rows, 3*H*D] (q, k, v blocks) -> q, k, v [rows, H*D]; q and k LayerNormed per head over D
// with (qw, qb) / (kw, kb) [D]; v copied. q, k, v are float, or __nv_bfloat16 when bf16.
void launch_t2w_split_qkv_norm(const float* qkv, int64_t rows, int64_t H, int64_t D,
                               const float* qw, const float* qb, const float* kw, const float* kb,
                               float eps, bool bf16, void* q, void* k, void* v);
void launch_t2w_l2_normalize(const float* x, int64_t rows, int64_t n, float eps, float* y);

}  // namespace stepaudio::cuda
