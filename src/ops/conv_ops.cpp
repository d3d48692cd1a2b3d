#include "ops/conv_ops.h"

#include "backend/cpu/conv_cpu.h"
#include "ops/dispatch.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/t2w_ops_cuda.h"
#endif
#include "ops/ops.h"

namespace stepaudio::ops {

using namespace detail;

namespace {

void need_bct(const Tensor& x, const char* op) {
  need_f32(x, op, "x");
  need(x.ndim() == 3, op, fmt::format("x must be [B, C, T], got {}", x.desc()));
}

Tensor bias_f32(const Tensor& b, int64_t n, const char* op) {
  if (!b.defined()) return {};
  need_float(b, op, "bias");
  need(b.ndim() == 1 && b.dim(0) == n, op,
       fmt::format("bias {} must be [{}] (the output channels)", b.desc(), n));
  return b.dtype() == DType::F32 ? b : to_f32(b);
}

}  // namespace

Tensor conv1d_ex(const Tensor& x, const Tensor& w, const Tensor& b, const Conv1dOptions& o) {
  const char* op = "conv1d_ex";
  need_bct(x, op);
  need_float(w, op, "weight");
  need(o.stride >= 1 && o.dilation >= 1 && o.groups >= 1 && o.pad_left >= 0 && o.pad_right >= 0, op,
       fmt::format("bad options: stride {}, dilation {}, groups {}, padding {}/{}", o.stride,
                   o.dilation, o.groups, o.pad_left, o.pad_right));
  need(w.ndim() == 3 && w.dim(2) >= 1 && x.dim(1) % o.groups == 0 && w.dim(0) % o.groups == 0 &&
           w.dim(1) * o.groups == x.dim(1),
       op,
       fmt::format("x {} (expected [B, C_in, T]) does not match weight {} (expected [C_out, "
                   "C_in/groups, K] with groups {} dividing C_in and C_out)",
                   x.desc(), w.desc(), o.groups));
  const int64_t span = o.dilation * (w.dim(2) - 1) + 1;
  const int64_t padded = x.dim(2) + o.pad_left + o.pad_right;
  need(padded >= span, op,
       fmt::format("input length {} (padded to {}) is shorter than the dilated kernel {}", x.dim(2),
                   padded, span));
  const bool cuda = on_cuda(op, {&x, &w, &b});
  Tensor bf = bias_f32(b, w.dim(0), op);
  if (cuda)
    CUDA_OP(conv1d_ex(x, w, bf, o.stride, o.pad_left, o.pad_right, o.dilation, o.groups, o.tf32));
  cpu::Conv1dShape s{x.dim(1), x.dim(2),   w.dim(0),   w.dim(2), (padded - span) / o.stride + 1,
                     o.stride, o.pad_left, o.dilation, o.groups};
  const int64_t B = x.dim(0);
  Tensor y = Tensor::empty({B, s.c_out, s.t_out}, DType::F32);
  for (int64_t i = 0; i < B; ++i)
    cpu::conv1d(x.data<float>() + i * s.c_in * s.t_in, w.raw(), w.dtype(),
                bf.defined() ? bf.data<float>() : nullptr, s,
                y.data<float>() + i * s.c_out * s.t_out);
  return y;
}

Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride,
                        int64_t padding, [[maybe_unused]] bool tf32) {
  const char* op = "conv_transpose1d";
  need_bct(x, op);
  need_float(w, op, "weight");
  need(w.ndim() == 3 && w.dim(0) == x.dim(1) && w.dim(2) >= 1, op,
       fmt::format("x {} (expected [B, C_in, T]) does not match weight {} (expected [C_in, "
                   "C_out, K])",
                   x.desc(), w.desc()));
  need(stride >= 1 && padding >= 0, op, fmt::format("bad stride {} / padding {}", stride, padding));
  const int64_t T = x.dim(2), K = w.dim(2);
  need(T >= 1, op, fmt::format("x {} has no time steps", x.desc()));
  const int64_t To = (T - 1) * stride - 2 * padding + K;
  need(To >= 1, op,
       fmt::format("output length (T-1)*stride - 2*padding + K = {} is not positive (x {}, "
                   "stride {}, padding {}, K {})",
                   To, x.desc(), stride, padding, K));
  const bool cuda = on_cuda(op, {&x, &w, &b});
  const int64_t B = x.dim(0), Ci = x.dim(1), Co = w.dim(1);
  Tensor bf = bias_f32(b, Co, op);
  if (cuda) CUDA_OP(conv_transpose1d(x, w, bf, stride, padding, tf32));
  Tensor y = Tensor::empty({B, Co, To}, DType::F32);
  for (int64_t i = 0; i < B; ++i)
    cpu::conv_transpose1d(x.data<float>() + i * Ci * T, w.raw(), w.dtype(),
                          bf.defined() ? bf.data<float>() : nullptr, Ci, T, Co, K, stride, padding,
                          To, y.data<float>() + i * Co * To);
  return y;
}

Tensor pad_time(const Tensor& x, int64_t left, int64_t right, PadMode mode) {
  const char* op = "pad_time";
  need_bct(x, op);
  need(left >= 0 && right >= 0, op, fmt::format("negative padding {}/{}", left, right));
  const int64_t T = x.dim(2);
  if (mode == PadMode::Reflect)
    need(left < T && right < T, op,
         fmt::format("reflect padding {}/{} must be smaller than the length of x {}", left, right,
                     x.desc()));
  if (mode == PadMode::Replicate)
    need(T >= 1 || (left == 0 && right == 0), op,
         fmt::format("replicate padding of an empty x {}", x.desc()));
  if (on_cuda(op, {&x}))
    CUDA_OP(pad_time(x, left, right, mode == PadMode::Zero ? 0 : mode == PadMode::Reflect ? 1 : 2));
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), T + left + right}, DType::F32);
  cpu::pad_rows(x.data<float>(), x.dim(0) * x.dim(1), T, left, right,
                mode == PadMode::Zero      ? 0
                : mode == PadMode::Reflect ? 1
                                           : 2,
                y.data<float>());
  return y;
}

Tensor upsample_nearest_time(const Tensor& x, int64_t factor) {
  const char* op = "upsample_nearest_time";
  need_bct(x, op);
  need(factor >= 1, op, fmt::format("factor must be >= 1, got {}", factor));
  if (on_cuda(op, {&x})) CUDA_OP(upsample_nearest_time(x, factor));
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), x.dim(2) * factor}, DType::F32);
  cpu::upsample_nearest(x.data<float>(), x.dim(0) * x.dim(1), x.dim(2), factor, y.data<float>());
  return y;
}

}  // namespace stepaudio::ops
