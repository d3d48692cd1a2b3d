#include "ops/flow_ops.h"

#include "backend/cpu/flow_cpu.h"
#include "ops/dispatch.h"
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

}  // namespace stepaudio::ops
