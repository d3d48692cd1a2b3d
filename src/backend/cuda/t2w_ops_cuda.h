// CUDA side of the token2wav ops (ops/{act,conv,stft,vocoder,flow}_ops.h), one function per op
// with the meaning of the CPU reference. Arguments have been checked by the ops layer (shapes,
// dtypes, one device); these allocate the outputs on the input's device (caching allocator), run
// the kernels of t2w_*.cu on the thread's default stream and the large products in cuBLAS (fp32,
// no TF32). Weights of conv1d_ex / conv_transpose1d may be F32 (used in place) or BF16 / F16
// (converted to F32 per call). Plain C++ so the g++-compiled dispatch code can include it.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/cuda/t2w_kernels.h"
#include "core/tensor.h"

namespace stepaudio::cuda {

// act_ops
void t2w_act_(Tensor& x, T2wAct act, float p = 0.f);
void t2w_mul_(Tensor& a, const Tensor& b);
void t2w_snake_(Tensor& x, const Tensor& alpha);
void t2w_clamp_(Tensor& x, float lo, float hi);

// conv_ops
// tf32: the products in TF32 on the tensor cores (the fast token2wav mode), else exact fp32.
Tensor conv1d_ex(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride,
                 int64_t pad_left, int64_t pad_right, int64_t dilation, int64_t groups,
                 bool tf32 = false);
Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride,
                        int64_t padding, bool tf32 = false);
Tensor pad_time(const Tensor& x, int64_t left, int64_t right,
                int mode);  // 0 zero, 1 reflect, 2 replicate
Tensor upsample_nearest_time(const Tensor& x, int64_t factor);

// stft_ops
Tensor stft_small(const Tensor& x, int64_t n_fft, int64_t hop);
Tensor istft_small(const Tensor& mag, const Tensor& phase, int64_t n_fft, int64_t hop);

// vocoder_ops
Tensor nsf_sines(const Tensor& f0, const T2wNsfParams& p, const Tensor& rand_ini,
                 const Tensor& noise);
void copy_(Tensor& dst, const Tensor& src);
Tensor hamming_crossfade(const Tensor& head, const Tensor& tail);

// flow_ops
Tensor rel_pos_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& p,
                         const Tensor& u, const Tensor& w);
Tensor timestep_embedding(const Tensor& t, int64_t dim, float scale, float max_period);
Tensor modulated_layer_norm(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps);
void gated_add_(Tensor& x, const Tensor& gate, const Tensor& y);
Tensor gated_add_modulated_ln_(Tensor& x, const Tensor& gate, const Tensor& y, const Tensor& shift,
                               const Tensor& scale, float eps);
Tensor l2_normalize(const Tensor& x, float eps);
// Checked: x F32 [..., C], w, b F32 [C].
Tensor layer_norm_mish(const Tensor& x, const Tensor& w, const Tensor& b, float eps);
// axis already normalised to [0, ndim); shapes checked.
Tensor concat_axis(const std::vector<Tensor>& xs, int axis, const Shape& out_shape);
Tensor slice_axis(const Tensor& x, int axis, int64_t begin, int64_t end);
Tensor repeat_time(const Tensor& x, int64_t T);
void axpy_(Tensor& y, float a, const Tensor& x);
// x, w F32 (b F32 or undefined), checked: TF32 product with the bias in the epilogue.
Tensor linear_tf32(const Tensor& x, const Tensor& w, const Tensor& b);
Tensor chunks_last(const Tensor& x, int64_t n);
// Checked: qkv F32 [B, T, 3*H*D], norms F32 [D]; out_dtype F32 or BF16.
std::vector<Tensor> split_qkv_norm(const Tensor& qkv, int64_t H, int64_t D, const Tensor& qn_w,
                                   const Tensor& qn_b, const Tensor& kn_w, const Tensor& kn_b,
                                   float eps, DType out_dtype);
// F32 x, w, b (checked, T >= 1); ctx as ops::causal_conv_cl. TF32 GEMM; with taps (F32
// [K, C_out, C], checked) the shifted products instead of im2col.
Tensor causal_conv_cl(const Tensor& x, const Tensor& w, const Tensor& b, Tensor* ctx,
                      const Tensor& taps);
Tensor counter_normal(uint64_t seed, int64_t offset, const Shape& shape, Device device);

}  // namespace stepaudio::cuda
