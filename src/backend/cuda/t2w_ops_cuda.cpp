// The Tensor side of the token2wav CUDA ops: output allocation, the cuBLAS products of the
// convolutions and the relative-position attention, and the calls into the t2w_*.cu launchers.
#include "backend/cuda/t2w_ops_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>

#include "backend/cuda/blas.h"
#include "backend/cuda/check.h"
#include "backend/cuda/ops_cuda.h"
#include "backend/cuda/t2w_gemm.h"

namespace stepaudio::cuda {

namespace {

void set_device(const Tensor& t) { CUDA_CHECK(cudaSetDevice(t.device().index)); }

const float* fptr(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

// Weights and biases as F32 on the GPU: F32 in place, others converted for this call.
Tensor as_f32(const Tensor& t) {
  if (!t.defined() || t.dtype() == DType::F32) return t;
  return convert(t, DType::F32);
}

void need_int(int64_t v, const char* op, const char* what) {
  if (v > INT_MAX) fail("{}: {} = {} is too large for one cuBLAS call", op, what, v);
}

// Column-major strided-batched SGEMM, C = op(A) op(B), fp32 throughout (tf32: F32 data, TF32
// tensor-core products with fp32 accumulation).
void sgemm_batched(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda,
                   int64_t sa, const float* B, int64_t ldb, int64_t sb, float* C, int64_t ldc,
                   int64_t sc, int64_t batch, const char* op, bool tf32 = false) {
  if (m == 0 || n == 0 || batch == 0) return;
  for (auto [v, name] : {std::pair{m, "m"},
                         {n, "n"},
                         {k, "k"},
                         {lda, "lda"},
                         {ldb, "ldb"},
                         {ldc, "ldc"},
                         {batch, "batch"}})
    need_int(v, op, name);
  const float one = 1.f, zero = 0.f;
  if (tf32) {
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        blas_handle(), ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
        static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), &one, A, CUDA_R_32F,
        static_cast<int>(lda), sa, B, CUDA_R_32F, static_cast<int>(ldb), sb, &zero, C, CUDA_R_32F,
        static_cast<int>(ldc), sc, static_cast<int>(batch), CUBLAS_COMPUTE_32F_FAST_TF32,
        CUBLAS_GEMM_DEFAULT));
    return;
  }
  CUBLAS_CHECK(cublasSgemmStridedBatched(
      blas_handle(), ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
      static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), &one, A, static_cast<int>(lda),
      sa, B, static_cast<int>(ldb), sb, &zero, C, static_cast<int>(ldc), sc,
      static_cast<int>(batch)));
}

// A stride-1, one-group conv in TF32 without im2col: y[:, t] = sum_j W_j x[:, t - pad_left +
// j*dilation] as one accumulating product per tap j over the output columns whose input column is
// inside x (the padding contributes zeros). Row-major [C, T] blocks with leading dimension T are
// column-major [T, C] matrices, so a column window is a plain pointer offset. The tap that covers
// every output column (the centre one of a "same" conv) goes first with beta = 0; without one, y
// starts from zeros. The bias is added at the end, as on the im2col path.
void conv1d_taps_tf32(const Tensor& x, const Tensor& wf, const Tensor& bf, const T2wConvShape& s,
                      Tensor& y) {
  const char* op = "conv1d_ex";
  const int64_t B = x.dim(0), C = s.c_in, T = s.t_in, Co = s.c_out, K = s.k, To = s.t_out;
  const int64_t d = s.dilation, pl = s.pad_left;
  // taps [K, Co, C]: W_j = w[:, :, j] contiguous.
  const Tensor taps = transpose_last2(wf.reshape({1, Co * C, K})).reshape({K, Co, C});
  // Output columns [t0, t1) of tap j read input columns [t0 + off, t1 + off), off = j*d - pl.
  auto range = [&](int64_t j, int64_t& t0, int64_t& t1) {
    const int64_t off = j * d - pl;
    t0 = std::max<int64_t>(0, -off);
    t1 = std::min<int64_t>(To, T - off);
  };
  for (auto [v, name] : {std::pair{B, "batch"},
                         {C, "C_in"},
                         {Co, "C_out"},
                         {T, "input length"},
                         {To, "output length"}})
    need_int(v, op, name);
  int64_t first = -1;
  for (int64_t j = 0; j < K && first < 0; ++j) {
    int64_t t0, t1;
    range(j, t0, t1);
    if (t0 == 0 && t1 == To) first = j;
  }
  if (first < 0) CUDA_CHECK(cudaMemsetAsync(y.raw(), 0, y.nbytes(), cudaStreamPerThread));
  for (int64_t n = 0; n < K; ++n) {
    // The covering tap first, then the others in order.
    const int64_t j = first < 0 ? n : n == 0 ? first : n <= first ? n - 1 : n;
    int64_t t0, t1;
    range(j, t0, t1);
    if (t1 <= t0) continue;
    const float one = 1.f, zero = 0.f;
    const bool init = first >= 0 && n == 0;
    // Column-major: y_b^T[t0:t1, :] (ld To) = x_b^T[t0+off : t1+off, :] (ld T) * W_j^T (ld C).
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        blas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(t1 - t0), static_cast<int>(Co),
        static_cast<int>(C), &one, x.data<float>() + (t0 + j * d - pl), CUDA_R_32F,
        static_cast<int>(T), C * T, taps.data<float>() + j * Co * C, CUDA_R_32F,
        static_cast<int>(C), 0, init ? &zero : &one, y.data<float>() + t0, CUDA_R_32F,
        static_cast<int>(To), Co * To, static_cast<int>(B), CUBLAS_COMPUTE_32F_FAST_TF32,
        CUBLAS_GEMM_DEFAULT));
  }
  launch_t2w_add_bias_rows(y.data<float>(), B, Co, To, fptr(bf));
}

}  // namespace

void t2w_act_(Tensor& x, T2wAct act, float p) {
  if (x.numel() == 0) return;
  set_device(x);
  launch_t2w_act(act, x.data<float>(), x.numel(), p);
}

void t2w_mul_(Tensor& a, const Tensor& b) {
  if (a.numel() == 0) return;
  set_device(a);
  launch_t2w_mul(a.data<float>(), b.data<float>(), a.numel());
}

void t2w_snake_(Tensor& x, const Tensor& alpha) {
  if (x.numel() == 0) return;
  set_device(x);
  launch_t2w_snake(x.data<float>(), alpha.data<float>(), x.dim(0), x.dim(1), x.dim(2));
}

void t2w_clamp_(Tensor& x, float lo, float hi) {
  if (x.numel() == 0) return;
  set_device(x);
  launch_t2w_clamp(x.data<float>(), x.numel(), lo, hi);
}

Tensor conv1d_ex(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride,
                 int64_t pad_left, int64_t pad_right, int64_t dilation, int64_t groups, bool tf32) {
  const char* op = "conv1d_ex";
  set_device(x);
  const int64_t B = x.dim(0), K = w.dim(2);
  const int64_t span = dilation * (K - 1) + 1, padded = x.dim(2) + pad_left + pad_right;
  T2wConvShape s{x.dim(1), x.dim(2), w.dim(0), K,     (padded - span) / stride + 1,
                 stride,   pad_left, dilation, groups};
  Tensor y = Tensor::empty({B, s.c_out, s.t_out}, DType::F32, x.device());
  if (y.numel() == 0) return y;
  const Tensor wf = as_f32(w), bf = as_f32(b);
  const int64_t cg = s.c_in / groups, og = s.c_out / groups, ck = cg * K;
  if (cg == 1) {
    launch_t2w_conv_depthwise(x.data<float>(), B, s, wf.data<float>(), fptr(bf), y.data<float>());
    return y;
  }
  if (tf32 && groups == 1 && stride == 1) {
    conv1d_taps_tf32(x, wf, bf, s, y);
    return y;
  }
  // col [B, C_in*K, To]; per batch item and group y_g [og, To] = W_g [og, ck] @ col_g [ck, To],
  // i.e. in cuBLAS's column-major view y_g^T = col_g^T W_g^T.
  Tensor col = Tensor::empty({B, s.c_in * K, s.t_out}, DType::F32, x.device());
  launch_t2w_im2col(x.data<float>(), B, s, col.data<float>());
  const int64_t To = s.t_out;
  if (groups == 1) {
    sgemm_batched(false, false, To, s.c_out, ck, col.data<float>(), To, ck * To, wf.data<float>(),
                  ck, 0, y.data<float>(), To, s.c_out * To, B, op, tf32);
  } else {
    for (int64_t i = 0; i < B; ++i)
      sgemm_batched(false, false, To, og, ck, col.data<float>() + i * s.c_in * K * To, To, ck * To,
                    wf.data<float>(), ck, og * ck, y.data<float>() + i * s.c_out * To, To, og * To,
                    groups, op, tf32);
  }
  launch_t2w_add_bias_rows(y.data<float>(), B, s.c_out, To, fptr(bf));
  return y;
}

Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride,
                        int64_t padding, bool tf32) {
  set_device(x);
  const int64_t B = x.dim(0), Ci = x.dim(1), T = x.dim(2), Co = w.dim(1), K = w.dim(2);
  const int64_t To = (T - 1) * stride - 2 * padding + K;
  Tensor y = Tensor::empty({B, Co, To}, DType::F32, x.device());
  if (y.numel() == 0) return y;
  const Tensor wf = as_f32(w), bf = as_f32(b);
  // col_b [Co*K, T] = W^T (W viewed as [Ci, Co*K]) @ x_b [Ci, T]; column-major: col^T = x^T W.
  Tensor col = Tensor::empty({B, Co * K, T}, DType::F32, x.device());
  if (Ci == 0)
    CUDA_CHECK(cudaMemsetAsync(col.raw(), 0, col.nbytes(), cudaStreamPerThread));
  else
    sgemm_batched(false, true, T, Co * K, Ci, x.data<float>(), T, Ci * T, wf.data<float>(), Co * K,
                  0, col.data<float>(), T, Co * K * T, B, "conv_transpose1d", tf32);
  launch_t2w_col2im_transpose(col.data<float>(), B, Co, K, T, stride, padding, To, fptr(bf),
                              y.data<float>());
  return y;
}

Tensor pad_time(const Tensor& x, int64_t left, int64_t right, int mode) {
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), x.dim(2) + left + right}, DType::F32, x.device());
  if (y.numel() == 0) return y;
  set_device(x);
  launch_t2w_pad_rows(x.data<float>(), x.dim(0) * x.dim(1), x.dim(2), left, right, mode,
                      y.data<float>());
  return y;
}

Tensor upsample_nearest_time(const Tensor& x, int64_t factor) {
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), x.dim(2) * factor}, DType::F32, x.device());
  if (y.numel() == 0) return y;
  set_device(x);
  launch_t2w_upsample_nearest(x.data<float>(), x.dim(0) * x.dim(1), x.dim(2), factor,
                              y.data<float>());
  return y;
}

Tensor stft_small(const Tensor& x, int64_t n_fft, int64_t hop) {
  const int64_t B = x.dim(0), N = x.dim(1), bins = n_fft / 2 + 1, frames = N / hop + 1;
  Tensor y = Tensor::empty({B, 2 * bins, frames}, DType::F32, x.device());
  if (y.numel() == 0) return y;
  set_device(x);
  launch_t2w_stft(x.data<float>(), B, N, n_fft, hop, y.data<float>());
  return y;
}

Tensor istft_small(const Tensor& mag, const Tensor& phase, int64_t n_fft, int64_t hop) {
  const int64_t B = mag.dim(0), frames = mag.dim(2);
  Tensor y = Tensor::empty({B, (frames - 1) * hop}, DType::F32, mag.device());
  if (y.numel() == 0) return y;
  set_device(mag);
  Tensor seg = Tensor::empty({B, frames, n_fft}, DType::F32, mag.device());
  launch_t2w_istft(mag.data<float>(), phase.data<float>(), B, frames, n_fft, hop, seg.data<float>(),
                   y.data<float>());
  return y;
}

Tensor nsf_sines(const Tensor& f0, const T2wNsfParams& p, const Tensor& rand_ini,
                 const Tensor& noise) {
  const int64_t F = f0.dim(0);
  Tensor y = Tensor::empty({F * p.upsample, p.dim}, DType::F32, f0.device());
  if (y.numel() == 0) return y;
  set_device(f0);
  Tensor phase = Tensor::empty({F, p.dim}, DType::F32, f0.device());
  launch_t2w_nsf_sines(f0.data<float>(), F, fptr(rand_ini), fptr(noise), p, phase.data<float>(),
                       y.data<float>());
  return y;
}

void copy_(Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  set_device(dst);
  CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), dst.nbytes(), cudaMemcpyDeviceToDevice,
                             cudaStreamPerThread));
}

Tensor hamming_crossfade(const Tensor& head, const Tensor& tail) {
  Tensor y = Tensor::empty(head.shape(), DType::F32, head.device());
  if (y.numel() == 0) return y;
  set_device(head);
  launch_t2w_hamming_crossfade(head.data<float>(), tail.data<float>(), head.dim(0),
                               y.data<float>());
  return y;
}

Tensor rel_pos_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& p,
                         const Tensor& u, const Tensor& w) {
  const char* op = "rel_pos_attention";
  const int64_t B = q.dim(0), T1 = q.dim(1), T2 = k.dim(1), H = q.dim(2), D = q.dim(3);
  const int64_t HD = H * D, P = 2 * T2 - 1;
  Tensor out = Tensor::empty(q.shape(), DType::F32, q.device());
  if (out.numel() == 0) return out;
  set_device(q);
  Tensor qu = Tensor::empty(q.shape(), DType::F32, q.device());
  Tensor qw = Tensor::empty(q.shape(), DType::F32, q.device());
  launch_t2w_add_pos_bias(q.data<float>(), u.data<float>(), w.data<float>(), B * T1, HD,
                          qu.data<float>(), qw.data<float>());
  // Per head: ac = (q+u) k^T [T1, T2]; bd = (q+w) p^T [T1, 2*T2-1] over the whole table (the
  // softmax reads its shifted window); out = softmax(...) v. Row-major [rows, HD] operands are
  // column-major [D, rows] matrices with leading dimension HD, head h at offset h*D.
  Tensor ac = Tensor::empty({H, T1, T2}, DType::F32, q.device());
  Tensor bd = Tensor::empty({H, T1, P}, DType::F32, q.device());
  for (int64_t b = 0; b < B; ++b) {
    const float* kb = k.data<float>() + b * T2 * HD;
    const float* vb = v.data<float>() + b * T2 * HD;
    const float* qub = qu.data<float>() + b * T1 * HD;
    const float* qwb = qw.data<float>() + b * T1 * HD;
    sgemm_batched(true, false, T2, T1, D, kb, HD, D, qub, HD, D, ac.data<float>(), T2, T1 * T2, H,
                  op);
    sgemm_batched(true, false, P, T1, D, p.data<float>(), HD, D, qwb, HD, D, bd.data<float>(), P,
                  T1 * P, H, op);
    launch_t2w_rel_softmax(ac.data<float>(), bd.data<float>(), H, T1, T2, D);
    sgemm_batched(false, false, D, T1, T2, vb, HD, D, ac.data<float>(), T2, T1 * T2,
                  out.data<float>() + b * T1 * HD, HD, D, H, op);
  }
  return out;
}

Tensor timestep_embedding(const Tensor& t, int64_t dim, float scale, float max_period) {
  Tensor y = Tensor::empty({t.dim(0), dim}, DType::F32, t.device());
  if (y.numel() == 0) return y;
  set_device(t);
  launch_t2w_timestep_embedding(t.data<float>(), t.dim(0), dim, scale, max_period, y.data<float>());
  return y;
}

Tensor modulated_layer_norm(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps) {
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (y.numel() == 0) return y;
  if (x.dim(0) * x.dim(1) > INT_MAX) fail("modulated_layer_norm: {} has too many rows", x.desc());
  set_device(x);
  launch_t2w_modulated_layer_norm(x.data<float>(), x.dim(0), x.dim(1), x.dim(2),
                                  shift.data<float>(), scale.data<float>(), eps, y.data<float>());
  return y;
}

void gated_add_(Tensor& x, const Tensor& gate, const Tensor& y) {
  if (x.numel() == 0) return;
  set_device(x);
  launch_t2w_gated_add(x.data<float>(), gate.data<float>(), y.data<float>(), x.dim(0), x.dim(1),
                       x.dim(2));
}

Tensor gated_add_modulated_ln_(Tensor& x, const Tensor& gate, const Tensor& y, const Tensor& shift,
                               const Tensor& scale, float eps) {
  Tensor out = Tensor::empty(x.shape(), DType::F32, x.device());
  if (out.numel() == 0) return out;
  if (x.dim(0) * x.dim(1) > INT_MAX) fail("gated_add_modulated_ln: {} has too many rows", x.desc());
  set_device(x);
  launch_t2w_gated_add_modulated_ln(x.data<float>(), gate.data<float>(), y.data<float>(), x.dim(0),
                                    x.dim(1), x.dim(2), shift.data<float>(), scale.data<float>(),
                                    eps, out.data<float>());
  return out;
}

Tensor layer_norm_mish(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
  const int64_t C = x.dim(-1), rows = C ? x.numel() / C : 0;
  set_device(x);
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (y.numel() == 0) return y;
  if (launch_t2w_layer_norm_mish(x.data<float>(), rows, C, w.data<float>(), b.data<float>(), eps,
                                 y.data<float>()))
    return y;
  // Another width or a misaligned view: the two ops.
  y = layer_norm(x, w, b, eps);
  launch_t2w_act(T2wAct::Mish, y.data<float>(), y.numel(), 0.f);
  return y;
}

Tensor l2_normalize(const Tensor& x, float eps) {
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (y.numel() == 0) return y;
  const int64_t n = x.dim(-1), rows = x.numel() / n;
  if (rows > INT_MAX) fail("l2_normalize: {} has too many rows", x.desc());
  set_device(x);
  launch_t2w_l2_normalize(x.data<float>(), rows, n, eps, y.data<float>());
  return y;
}

Tensor concat_axis(const std::vector<Tensor>& xs, int axis, const Shape& out_shape) {
  Tensor y = Tensor::empty(out_shape, DType::F32, xs[0].device());
  if (y.numel() == 0) return y;
  set_device(y);
  int64_t outer, inner;
  split_shape(out_shape, axis, outer, inner);
  const int64_t dst_stride = out_shape[static_cast<size_t>(axis)] * inner;
  int64_t at = 0;
  for (const Tensor& t : xs) {
    const int64_t len = t.dim(axis) * inner;
    launch_t2w_copy_strided(t.data<float>(), len, y.data<float>() + at, dst_stride, outer, len);
    at += len;
  }
  return y;
}

Tensor slice_axis(const Tensor& x, int axis, int64_t begin, int64_t end) {
  Shape os = x.shape();
  os[static_cast<size_t>(axis)] = end - begin;
  Tensor y = Tensor::empty(os, DType::F32, x.device());
  if (y.numel() == 0) return y;
  set_device(x);
  int64_t outer, inner;
  split_shape(x.shape(), axis, outer, inner);
  const int64_t len = (end - begin) * inner;
  launch_t2w_copy_strided(x.data<float>() + begin * inner, x.dim(axis) * inner, y.data<float>(),
                          len, outer, len);
  return y;
}

Tensor repeat_time(const Tensor& x, int64_t T) {
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), T}, DType::F32, x.device());
  if (y.numel() == 0) return y;
  set_device(x);
  launch_t2w_repeat_cols(x.data<float>(), x.numel(), T, y.data<float>());
  return y;
}

void axpy_(Tensor& y, float a, const Tensor& x) {
  if (y.numel() == 0) return;
  set_device(y);
  launch_t2w_axpy(y.data<float>(), a, x.data<float>(), y.numel());
}

Tensor linear_tf32(const Tensor& x, const Tensor& w, const Tensor& b) {
  set_device(x);
  Shape os = x.shape();
  os.back() = w.dim(0);
  Tensor y = Tensor::empty(os, DType::F32, x.device());
  const int64_t K = x.dim(-1), M = K ? x.numel() / K : 0;
  gemm_tf32_bias(x.data<float>(), M, K, w.data<float>(), w.dim(0), fptr(b), y.data<float>(),
                 "linear_tf32");
  return y;
}

Tensor causal_conv_cl(const Tensor& x, const Tensor& w, const Tensor& b, Tensor* ctx,
                      const Tensor& taps) {
  set_device(x);
  const int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2), Co = w.dim(0), K = w.dim(2), P = K - 1;
  const float* prev = ctx && ctx->defined() ? ctx->data<float>() : nullptr;
  Tensor y = Tensor::empty({B, T, Co}, DType::F32, x.device());
  const char* op = "causal_conv_cl";
  if (taps.defined()) {
    // y[t] = b + sum_j W_j x[t - s_j], s_j = P - j, x before frame 0 being the context. Tap P
    // (no shift) covers every row of both batch items at once and adds the bias; tap j < P adds
    // into rows [s_j, T) of each item from its rows [0, T - s_j).
    const float* wt = taps.data<float>();
    gemm_tf32_bias(x.data<float>(), B * T, C, wt + P * Co * C, Co, fptr(b), y.data<float>(), op);
    for (int64_t j = 0; j < P; ++j) {
      const int64_t s = P - j;
      if (T > s)
        gemm_tf32_acc_batched(x.data<float>(), T - s, C, T * C, wt + j * Co * C, Co,
                              y.data<float>() + s * Co, T * Co, B, op);
    }
    if (prev) {
      // The context's share of the first R frames: its own small im2col against the whole
      // [C_out, C*K] weight (zeros where a tap reads x, which the products above covered).
      const int64_t R = std::min(P, T);
      Tensor col = Tensor::empty({B * R, C * K}, DType::F32, x.device());
      launch_t2w_causal_ctx_col(prev, B, R, C, K, col.data<float>());
      gemm_tf32_acc_batched(col.data<float>(), R, C * K, R * C * K, w.data<float>(), Co,
                            y.data<float>(), T * Co, B, op);
    }
  } else {
    Tensor col = Tensor::empty({B * T, C * K}, DType::F32, x.device());
    launch_t2w_im2col_causal_cl(x.data<float>(), prev, B, T, C, K, col.data<float>());
    // col [B*T, C*K] @ W[Co, C*K]^T: W's [Co, C, K] layout is already the (c, kk) column order.
    gemm_tf32_bias(col.data<float>(), B * T, C * K, w.data<float>(), Co, fptr(b), y.data<float>(),
                   op);
  }
  if (ctx) {
    // Written to a new tensor: the old context may be shared (a cache copied for another stream).
    Tensor next = Tensor::empty({B, C, P}, DType::F32, x.device());
    launch_t2w_causal_ctx_cl(x.data<float>(), prev, B, T, C, P, next.data<float>());
    *ctx = next;
  }
  return y;
}

std::vector<Tensor> split_qkv_norm(const Tensor& qkv, int64_t H, int64_t D, const Tensor& qn_w,
                                   const Tensor& qn_b, const Tensor& kn_w, const Tensor& kn_b,
                                   float eps, DType out_dtype) {
  const int64_t B = qkv.dim(0), T = qkv.dim(1);
  std::vector<Tensor> out;
  for (int i = 0; i < 3; ++i) out.push_back(Tensor::empty({B, T, H, D}, out_dtype, qkv.device()));
  if (B * T == 0) return out;
  set_device(qkv);
  launch_t2w_split_qkv_norm(qkv.data<float>(), B * T, H, D, qn_w.data<float>(), qn_b.data<float>(),
                            kn_w.data<float>(), kn_b.data<float>(), eps, out_dtype == DType::BF16,
                            out[0].raw(), out[1].raw(), out[2].raw());
  return out;
}

Tensor chunks_last(const Tensor& x, int64_t n) {
  const int64_t B = x.dim(0), C = x.dim(1) / n;
  Tensor y = Tensor::empty({n, B, C}, DType::F32, x.device());
  if (y.numel() == 0) return y;
  set_device(x);
  launch_t2w_chunks_last(x.data<float>(), B, n, C, y.data<float>());
  return y;
}

Tensor counter_normal(uint64_t seed, int64_t offset, const Shape& shape, Device device) {
  Tensor y = Tensor::empty(shape, DType::F32, device);
  if (y.numel() == 0) return y;
  set_device(y);
  launch_t2w_counter_normal(seed, offset, y.numel(), y.data<float>());
  return y;
}

}  // namespace stepaudio::cuda
