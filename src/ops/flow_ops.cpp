#include "ops/flow_ops.h"

#include "backend/cpu/flow_cpu.h"
#include "ops/act_ops.h"
#include "ops/conv_ops.h"
#include "ops/dispatch.h"
#include "ops/ops.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/t2w_ops_cuda.h"
#endif

namespace stepaudio::ops {

using namespace detail;

namespace {

int norm_axis(int axis, int ndim, const char* op) {
  const int a = axis < 0 ? axis + ndim : axis;
  need(a >= 0 && a < ndim, op, fmt::format("axis {} is out of range for {} dims", axis, ndim));
  return a;
}

}  // namespace

Tensor rel_pos_table(int64_t size, int64_t d_model) {
  need(size >= 1 && d_model >= 2 && d_model % 2 == 0, "rel_pos_table",
       fmt::format("needs size >= 1 and an even d_model, got size {}, d_model {}", size, d_model));
  Tensor y = Tensor::empty({2 * size - 1, d_model}, DType::F32);
  cpu::rel_pos_table(size, d_model, y.data<float>());
  return y;
}

Tensor rel_pos_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& p,
                         const Tensor& u, const Tensor& w) {
  const char* op = "rel_pos_attention";
  for (auto [t, n] : {std::pair{&q, "q"},
                      {&k, "k"},
                      {&v, "v"},
                      {&p, "p"},
                      {&u, "pos_bias_u"},
                      {&w, "pos_bias_v"}})
    need_f32(*t, op, n);
  need(q.ndim() == 4 && k.ndim() == 4 && k.shape() == v.shape() && q.dim(0) == k.dim(0) &&
           q.dim(2) == k.dim(2) && q.dim(3) == k.dim(3) && q.dim(1) <= k.dim(1),
       op,
       fmt::format("expected q [B, T1, H, D] and k = v [B, T2, H, D] with T1 <= T2; got q {}, k "
                   "{}, v {}",
                   q.desc(), k.desc(), v.desc()));
  const int64_t T2 = k.dim(1), H = q.dim(2), D = q.dim(3);
  need(T2 >= 1, op, "no keys");
  need(p.shape() == Shape{2 * T2 - 1, H, D}, op,
       fmt::format("p {} must be [2*T2-1, H, D] = [{}, {}, {}]", p.desc(), 2 * T2 - 1, H, D));
  need(u.shape() == Shape{H, D} && w.shape() == Shape{H, D}, op,
       fmt::format("pos_bias_u {} and pos_bias_v {} must be [{}, {}]", u.desc(), w.desc(), H, D));
  if (on_cuda(op, {&q, &k, &v, &p, &u, &w})) CUDA_OP(rel_pos_attention(q, k, v, p, u, w));
  Tensor out = Tensor::empty(q.shape(), DType::F32);
  cpu::rel_pos_attention(q.data<float>(), k.data<float>(), v.data<float>(), p.data<float>(),
                         u.data<float>(), w.data<float>(), {q.dim(0), q.dim(1), T2, H, D},
                         out.data<float>());
  return out;
}

Tensor timestep_embedding(const Tensor& t, int64_t dim, float scale, float max_period) {
  need_f32(t, "timestep_embedding", "t");
  need(t.ndim() == 1 && dim >= 2 && dim % 2 == 0 && max_period > 0, "timestep_embedding",
       fmt::format("expected t [B] and an even dim, got t {}, dim {}", t.desc(), dim));
  if (on_cuda("timestep_embedding", {&t})) CUDA_OP(timestep_embedding(t, dim, scale, max_period));
  Tensor y = Tensor::empty({t.dim(0), dim}, DType::F32);
  cpu::timestep_embedding(t.data<float>(), t.dim(0), dim, scale, max_period, y.data<float>());
  return y;
}

Tensor modulated_layer_norm(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps) {
  const char* op = "modulated_layer_norm";
  need_f32(x, op, "x");
  need_f32(shift, op, "shift");
  need_f32(scale, op, "scale");
  need(
      x.ndim() == 3 && shift.shape() == Shape{x.dim(0), x.dim(2)} && scale.shape() == shift.shape(),
      op,
      fmt::format("expected x [B, T, C], shift = scale [B, C]; got x {}, shift {}, scale {}",
                  x.desc(), shift.desc(), scale.desc()));
  if (on_cuda(op, {&x, &shift, &scale})) CUDA_OP(modulated_layer_norm(x, shift, scale, eps));
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  cpu::modulated_layer_norm(x.data<float>(), x.dim(0), x.dim(1), x.dim(2), shift.data<float>(),
                            scale.data<float>(), eps, y.data<float>());
  return y;
}

void gated_add_(Tensor& x, const Tensor& gate, const Tensor& y) {
  const char* op = "gated_add";
  need_f32(x, op, "x");
  need_f32(gate, op, "gate");
  need_f32(y, op, "y");
  need(x.ndim() == 3 && y.shape() == x.shape() && gate.shape() == Shape{x.dim(0), x.dim(2)}, op,
       fmt::format("expected x = y [B, T, C] and gate [B, C]; got x {}, gate {}, y {}", x.desc(),
                   gate.desc(), y.desc()));
  if (on_cuda(op, {&x, &gate, &y})) CUDA_OP(gated_add_(x, gate, y));
  cpu::gated_add(x.data<float>(), gate.data<float>(), y.data<float>(), x.dim(0), x.dim(1),
                 x.dim(2));
}

Tensor gated_add_modulated_ln_(Tensor& x, const Tensor& gate, const Tensor& y, const Tensor& shift,
                               const Tensor& scale, float eps) {
  const char* op = "gated_add_modulated_ln";
  for (auto [t, n] : {std::pair<const Tensor*, const char*>{&x, "x"},
                      {&gate, "gate"},
                      {&y, "y"},
                      {&shift, "shift"},
                      {&scale, "scale"}})
    need_f32(*t, op, n);
  const Shape row{x.ndim() == 3 ? x.dim(0) : -1, x.ndim() == 3 ? x.dim(2) : -1};
  need(x.ndim() == 3 && y.shape() == x.shape() && gate.shape() == row && shift.shape() == row &&
           scale.shape() == row,
       op,
       fmt::format("expected x = y [B, T, C] and gate = shift = scale [B, C]; got x {}, y {}, gate "
                   "{}, shift {}, scale {}",
                   x.desc(), y.desc(), gate.desc(), shift.desc(), scale.desc()));
  if (on_cuda(op, {&x, &gate, &y, &shift, &scale}))
    CUDA_OP(gated_add_modulated_ln_(x, gate, y, shift, scale, eps));
  gated_add_(x, gate, y);
  return modulated_layer_norm(x, shift, scale, eps);
}

Tensor layer_norm_mish(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
  const char* op = "layer_norm_mish";
  need_f32(x, op, "x");
  need(x.ndim() >= 1 && w.defined() && b.defined() && w.numel() == x.dim(-1) &&
           b.numel() == x.dim(-1),
       op,
       fmt::format("x {} vs weight {} / bias {}", x.desc(), w.defined() ? w.desc() : "none",
                   b.defined() ? b.desc() : "none"));
  if (w.dtype() == DType::F32 && b.dtype() == DType::F32 && on_cuda(op, {&x, &w, &b}))
    CUDA_OP(layer_norm_mish(x, w, b, eps));
  Tensor y = layer_norm(x, w, b, eps);
  mish_(y);
  return y;
}

Tensor chunk_last(const Tensor& x, int64_t n, int64_t i) {
  need_f32(x, "chunk_last", "x");
  need(x.ndim() >= 1 && n >= 1 && x.dim(-1) % n == 0 && i >= 0 && i < n, "chunk_last",
       fmt::format("cannot take chunk {} of {} from x {}", i, n, x.desc()));
  const int64_t C = x.dim(-1) / n;
  return slice_axis(x, -1, i * C, (i + 1) * C);
}

Tensor l2_normalize(const Tensor& x, float eps) {
  need_f32(x, "l2_normalize", "x");
  need(x.ndim() >= 1 && x.dim(-1) >= 1, "l2_normalize",
       fmt::format("x {} has no last axis to normalise", x.desc()));
  if (on_cuda("l2_normalize", {&x})) CUDA_OP(l2_normalize(x, eps));
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  cpu::l2_normalize(x.data<float>(), x.numel() / x.dim(-1), x.dim(-1), eps, y.data<float>());
  return y;
}

Tensor concat_axis(const std::vector<Tensor>& xs, int axis) {
  const char* op = "concat_axis";
  need(!xs.empty(), op, "no tensors");
  bool cuda = false;
  for (const Tensor& t : xs) {
    need_f32(t, op, "input");
    const bool c = on_cuda(op, {&t, &xs[0]});
    cuda = cuda || c;
  }
  const int nd = xs[0].ndim();
  const int a = norm_axis(axis, nd, op);
  Shape os = xs[0].shape();
  os[static_cast<size_t>(a)] = 0;
  for (const Tensor& t : xs) {
    bool same = t.ndim() == nd;
    for (int i = 0; same && i < nd; ++i) same = i == a || t.dim(i) == xs[0].dim(i);
    need(same, op,
         fmt::format("{} does not match {} outside axis {}", t.desc(), xs[0].desc(), axis));
    os[static_cast<size_t>(a)] += t.dim(a);
  }
  if (cuda) CUDA_OP(concat_axis(xs, a, os));
  Tensor y = Tensor::empty(os, DType::F32);
  int64_t outer, inner;
  split_shape(os, a, outer, inner);
  const int64_t dst_stride = os[static_cast<size_t>(a)] * inner;
  int64_t at = 0;
  for (const Tensor& t : xs) {
    const int64_t len = t.dim(a) * inner;
    if (len > 0)
      cpu::copy_strided(t.data<float>(), len, y.data<float>() + at, dst_stride, outer, len);
    at += len;
  }
  return y;
}

Tensor slice_axis(const Tensor& x, int axis, int64_t begin, int64_t end) {
  const char* op = "slice_axis";
  need_f32(x, op, "x");
  const int a = norm_axis(axis, x.ndim(), op);
  need(begin >= 0 && begin <= end && end <= x.dim(a), op,
       fmt::format("range [{}, {}) is outside axis {} of {}", begin, end, axis, x.desc()));
  if (on_cuda(op, {&x})) CUDA_OP(slice_axis(x, a, begin, end));
  Shape os = x.shape();
  os[static_cast<size_t>(a)] = end - begin;
  Tensor y = Tensor::empty(os, DType::F32);
  int64_t outer, inner;
  split_shape(x.shape(), a, outer, inner);
  const int64_t len = (end - begin) * inner;
  if (len > 0)
    cpu::copy_strided(x.data<float>() + begin * inner, x.dim(a) * inner, y.data<float>(), len,
                      outer, len);
  return y;
}

Tensor repeat_time(const Tensor& x, int64_t T) {
  need_f32(x, "repeat_time", "x");
  need(x.ndim() == 2 && T >= 0, "repeat_time",
       fmt::format("expected x [B, C] and T >= 0, got x {}, T {}", x.desc(), T));
  if (on_cuda("repeat_time", {&x})) CUDA_OP(repeat_time(x, T));
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), T}, DType::F32);
  cpu::repeat_cols(x.data<float>(), x.numel(), T, y.data<float>());
  return y;
}

Tensor frame_noise(uint64_t seed, int64_t channels, int64_t begin, int64_t end) {
  need(channels >= 1 && begin >= 0 && begin <= end, "frame_noise",
       fmt::format("bad request: {} channels, frames [{}, {})", channels, begin, end));
  Tensor y = Tensor::empty({channels, end - begin}, DType::F32);
  cpu::frame_noise(seed, channels, begin, end, y.data<float>());
  return y;
}

void axpy_(Tensor& y, float a, const Tensor& x) {
  need_f32(y, "axpy", "y");
  need_f32(x, "axpy", "x");
  need(x.shape() == y.shape(), "axpy",
       fmt::format("x {} and y {} must have the same shape", x.desc(), y.desc()));
  if (on_cuda("axpy", {&y, &x})) CUDA_OP(axpy_(y, a, x));
  cpu::axpy(y.data<float>(), a, x.data<float>(), y.numel());
}

Tensor linear_tf32(const Tensor& x, const Tensor& w, const Tensor& b) {
  const bool f32 = x.defined() && w.defined() && x.dtype() == DType::F32 &&
                   w.dtype() == DType::F32 && (!b.defined() || b.dtype() == DType::F32);
  if (!f32 || !on_cuda("linear_tf32", {&x, &w, &b})) return linear(x, w, b);
  need(x.ndim() >= 1 && w.ndim() == 2 && w.dim(1) == x.dim(-1), "linear_tf32",
       fmt::format("x {} does not match weight {} (expected weight [out, {}])", x.desc(), w.desc(),
                   x.ndim() ? x.dim(-1) : 0));
  need(!b.defined() || (b.ndim() == 1 && b.dim(0) == w.dim(0)), "linear_tf32",
       fmt::format("bias {} does not match weight {}", b.desc(), w.desc()));
  CUDA_OP(linear_tf32(x, w, b));
}

Tensor conv_taps(const Tensor& w) {
  need_f32(w, "conv_taps", "weight");
  need(w.ndim() == 3, "conv_taps", fmt::format("weight must be [C_out, C, K], got {}", w.desc()));
  const int64_t Co = w.dim(0), C = w.dim(1), K = w.dim(2);
  return transpose_last2(w.reshape({1, Co * C, K})).reshape({K, Co, C});
}

Tensor causal_conv_cl(const Tensor& x, const Tensor& w, const Tensor& b, Tensor* ctx, bool tf32,
                      const Tensor& taps) {
  const char* op = "causal_conv_cl";
  need_f32(x, op, "x");
  need_float(w, op, "weight");
  need(x.ndim() == 3 && w.ndim() == 3 && w.dim(1) == x.dim(2) && w.dim(2) >= 1, op,
       fmt::format("x {} (expected [B, T, C]) does not match weight {} (expected [C_out, C, K])",
                   x.desc(), w.desc()));
  need(!b.defined() || (b.ndim() == 1 && b.dim(0) == w.dim(0)), op,
       fmt::format("bias {} does not match weight {}", b.defined() ? b.desc() : "", w.desc()));
  const int64_t B = x.dim(0), C = x.dim(2), P = w.dim(2) - 1;
  const bool have_ctx = ctx && ctx->defined();
  if (have_ctx) {
    need_f32(*ctx, op, "context");
    need(ctx->shape() == Shape{B, C, P}, op,
         fmt::format("context {} must be [{}, {}, {}]", ctx->desc(), B, C, P));
  }
  if (taps.defined()) {
    need_f32(taps, op, "taps");
    need(taps.shape() == Shape{w.dim(2), w.dim(0), C}, op,
         fmt::format("taps {} must be [K, C_out, C] = [{}, {}, {}]", taps.desc(), w.dim(2),
                     w.dim(0), C));
  }
  const Tensor none;
  const bool cuda = on_cuda(op, {&x, &w, &b, have_ctx ? ctx : &none, &taps});
  if (cuda && tf32 && w.dtype() == DType::F32 && (!b.defined() || b.dtype() == DType::F32) &&
      x.dim(1) > 0)
    CUDA_OP(causal_conv_cl(x, w, b, ctx, taps));
  // The reference: channels-first causal conv between two transposes.
  const Tensor xc = transpose_last2(x);
  Tensor y;
  if (!ctx) {
    y = conv1d_ex(xc, w, b, {.pad_left = P});
  } else {
    const Tensor prev = have_ctx ? *ctx : Tensor::zeros({B, C, P}, DType::F32, x.device());
    const Tensor xin = concat_axis({prev, xc}, 2);
    *ctx = slice_axis(xin, 2, xin.dim(2) - P, xin.dim(2));
    y = conv1d_ex(xin, w, b, {});
  }
  return transpose_last2(y);
}

std::vector<Tensor> split_qkv_norm(const Tensor& qkv, int64_t H, int64_t D, const Tensor& qn_w,
                                   const Tensor& qn_b, const Tensor& kn_w, const Tensor& kn_b,
                                   float eps, DType out) {
  const char* op = "split_qkv_norm";
  need(out == DType::F32 || out == DType::BF16, op,
       fmt::format("output type must be F32 or BF16, got {}", dtype_name(out)));
  need_f32(qkv, op, "qkv");
  need(H >= 1 && D >= 1 && qkv.ndim() == 3 && qkv.dim(2) == 3 * H * D, op,
       fmt::format("qkv must be [B, T, 3*{}*{}], got {}", H, D, qkv.desc()));
  for (auto [t, n] : {std::pair{&qn_w, "q_norm weight"},
                      {&qn_b, "q_norm bias"},
                      {&kn_w, "k_norm weight"},
                      {&kn_b, "k_norm bias"}}) {
    need_f32(*t, op, n);
    need(t->shape() == Shape{D}, op, fmt::format("{} must be [{}], got {}", n, D, t->desc()));
  }
  if (on_cuda(op, {&qkv, &qn_w, &qn_b, &kn_w, &kn_b}))
    CUDA_OP(split_qkv_norm(qkv, H, D, qn_w, qn_b, kn_w, kn_b, eps, out));
  const int64_t B = qkv.dim(0), T = qkv.dim(1), I = H * D;
  auto part = [&](int64_t i) {
    return slice_axis(qkv, 2, i * I, (i + 1) * I).reshape({B, T, H, D});
  };
  std::vector<Tensor> r = {layer_norm(part(0), qn_w, qn_b, eps),
                           layer_norm(part(1), kn_w, kn_b, eps), part(2)};
  if (out != DType::F32)
    for (Tensor& t : r) t = t.to_dtype(out);
  return r;
}

Tensor chunks_last(const Tensor& x, int64_t n) {
  need_f32(x, "chunks_last", "x");
  need(x.ndim() == 2 && n >= 1 && x.dim(1) % n == 0, "chunks_last",
       fmt::format("x must be [B, n*C] with n = {}, got {}", n, x.desc()));
  const int64_t B = x.dim(0), C = x.dim(1) / n;
  if (on_cuda("chunks_last", {&x})) CUDA_OP(chunks_last(x, n));
  Tensor y = Tensor::empty({n, B, C}, DType::F32);
  cpu::chunks_last(x.data<float>(), B, n, C, y.data<float>());
  return y;
}

Tensor counter_normal(uint64_t seed, int64_t offset, const Shape& shape, Device device) {
  int64_t n = 1;
  for (int64_t d : shape) {
    need(d >= 0, "counter_normal", fmt::format("negative dimension in the shape ({})", d));
    n *= d;
  }
  need(offset >= 0, "counter_normal", fmt::format("negative offset {}", offset));
  if (device.is_cuda()) {
#if STEPAUDIO_CUDA
    return cuda::counter_normal(seed, offset, shape, device);
#else
    fail("counter_normal: this build has no CUDA backend");
#endif
  }
  Tensor y = Tensor::empty(shape, DType::F32);
  cpu::counter_normal(seed, offset, n, y.data<float>());
  return y;
}

Tensor frame_noise_fast(uint64_t seed, int64_t channels, int64_t begin, int64_t end,
                        Device device) {
  need(channels >= 1 && begin >= 0 && begin <= end, "frame_noise_fast",
       fmt::format("bad request: {} channels, frames [{}, {})", channels, begin, end));
  const int64_t n = end - begin;
  const Tensor by_frame = counter_normal(seed, begin * channels, {1, n, channels}, device);
  return transpose_last2(by_frame).reshape({channels, n});
}

}  // namespace stepaudio::ops
