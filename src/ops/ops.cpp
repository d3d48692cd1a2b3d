#include "ops/ops.h"

#include <cmath>
#include <utility>

#include "backend/cpu/attention_cpu.h"
#include "backend/cpu/convert_cpu.h"
#include "backend/cpu/linear_cpu.h"
#include "backend/cpu/norm_cpu.h"
#include "backend/cpu/pointwise_cpu.h"
#include "ops/dispatch.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/ops_cuda.h"
#endif

namespace stepaudio::ops {

using namespace detail;

namespace {

// A bias or norm weight as f32 (these are small; weights stay in their stored type).
Tensor vec_f32(const Tensor& t) { return t.dtype() == DType::F32 ? t : to_f32(t); }

Tensor to_f32_if_bf16(const Tensor& t) { return t.dtype() == DType::F32 ? t : to_f32(t); }

}  // namespace

Tensor to_f32(const Tensor& x) {
  need_float(x, "to_f32", "x");
  if (on_cuda("to_f32", {&x})) CUDA_OP(to_f32(x));
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  cpu::to_f32(x.raw(), x.dtype(), y.data<float>(), x.numel());
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  need(x.defined() && (x.dtype() == DType::F32 || x.dtype() == DType::BF16), "linear",
       fmt::format("x must be F32 or BF16, got {}", x.defined() ? x.desc() : "nothing"));
  need_float(w, "linear", "weight");
  need(x.ndim() >= 1 && w.ndim() == 2 && w.dim(1) == x.dim(-1), "linear",
       fmt::format("x {} does not match weight {} (expected weight [out, {}])", x.desc(), w.desc(),
                   x.ndim() ? x.dim(-1) : 0));
  if (b.defined()) {
    need_float(b, "linear", "bias");
    need(b.ndim() == 1 && b.dim(0) == w.dim(0), "linear",
         fmt::format("bias {} does not match weight {}", b.desc(), w.desc()));
  }
  if (on_cuda("linear", {&x, &w, &b})) CUDA_OP(linear(x, w, b));
  Shape os = x.shape();
  os.back() = w.dim(0);
  Tensor y = Tensor::empty(os, DType::F32);
  Tensor bf = b.defined() ? vec_f32(b) : Tensor();
  const Tensor xf = x.dtype() == DType::F32 ? x : to_f32(x);
  cpu::linear(xf.data<float>(), rows_of(x), x.dim(-1), w.raw(), w.dtype(), w.dim(0),
              bf.defined() ? bf.data<float>() : nullptr, y.data<float>());
  return y;
}

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding) {
  need_f32(x, "conv1d", "x");
  need_float(w, "conv1d", "weight");
  need(x.ndim() == 3 && w.ndim() == 3 && w.dim(1) == x.dim(1), "conv1d",
       fmt::format("x {} (expected [B, C_in, T]) does not match weight {} (expected [C_out, "
                   "C_in, K])",
                   x.desc(), w.desc()));
  need(stride >= 1 && padding >= 0, "conv1d",
       fmt::format("bad stride {} / padding {}", stride, padding));
  if (b.defined()) {
    need_float(b, "conv1d", "bias");
    need(b.ndim() == 1 && b.dim(0) == w.dim(0), "conv1d",
         fmt::format("bias {} does not match weight {}", b.desc(), w.desc()));
  }
  if (on_cuda("conv1d", {&x, &w, &b})) CUDA_OP(conv1d(x, w, b, stride, padding));
  const int64_t B = x.dim(0), C = x.dim(1), T = x.dim(2), Co = w.dim(0), K = w.dim(2);
  need(T + 2 * padding >= K, "conv1d",
       fmt::format("input length {} is shorter than the kernel {} (padding {})", T, K, padding));
  const int64_t To = (T + 2 * padding - K) / stride + 1;
  Tensor y = Tensor::empty({B, Co, To}, DType::F32);
  Tensor bf = b.defined() ? vec_f32(b) : Tensor();
  // Per batch item: col [To, C*K] @ W[Co, C*K]^T -> [To, Co], then back to channels-first.
  Tensor col = Tensor::empty({To, C * K}, DType::F32);
  Tensor tmp = Tensor::empty({1, To, Co}, DType::F32);
  for (int64_t i = 0; i < B; ++i) {
    cpu::im2col_1d(x.data<float>() + i * C * T, C, T, K, stride, padding, To, col.data<float>());
    cpu::linear(col.data<float>(), To, C * K, w.raw(), w.dtype(), Co,
                bf.defined() ? bf.data<float>() : nullptr, tmp.data<float>());
    cpu::transpose_last2(tmp.data<float>(), 1, To, Co, y.data<float>() + i * Co * To);
  }
  return y;
}

Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
  need_f32(x, "layer_norm", "x");
  need_float(w, "layer_norm", "weight");
  need_float(b, "layer_norm", "bias");
  need(x.ndim() >= 1 && w.numel() == x.dim(-1) && b.numel() == x.dim(-1), "layer_norm",
       fmt::format("x {} vs weight {} / bias {}", x.desc(), w.desc(), b.desc()));
  if (on_cuda("layer_norm", {&x, &w, &b})) CUDA_OP(layer_norm(x, w, b, eps));
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  Tensor wf = vec_f32(w), bf = vec_f32(b);
  cpu::layer_norm(x.data<float>(), rows_of(x), x.dim(-1), wf.data<float>(), bf.data<float>(), eps,
                  y.data<float>());
  return y;
}

Tensor rms_norm(const Tensor& x, const Tensor& w, float eps) {
  need_f32(x, "rms_norm", "x");
  need_float(w, "rms_norm", "weight");
  need(x.ndim() >= 1 && w.numel() == x.dim(-1), "rms_norm",
       fmt::format("x {} vs weight {}", x.desc(), w.desc()));
  if (on_cuda("rms_norm", {&x, &w})) CUDA_OP(rms_norm(x, w, eps));
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  Tensor wf = vec_f32(w);
  cpu::rms_norm(x.data<float>(), rows_of(x), x.dim(-1), wf.data<float>(), eps, y.data<float>());
  return y;
}

void gelu_(Tensor& x) {
  need_f32(x, "gelu", "x");
  if (on_cuda("gelu", {&x})) CUDA_OP(gelu_(x));
  cpu::gelu(x.data<float>(), x.data<float>(), x.numel());
}

Tensor gelu(const Tensor& x) {
  Tensor y = x.clone();
  gelu_(y);
  return y;
}

void relu_(Tensor& x) {
  need_f32(x, "relu", "x");
  if (on_cuda("relu", {&x})) CUDA_OP(relu_(x));
  cpu::relu(x.data<float>(), x.data<float>(), x.numel());
}

Tensor relu(const Tensor& x) {
  Tensor y = x.clone();
  relu_(y);
  return y;
}

Tensor silu_mul(const Tensor& gate, const Tensor& up) {
  need_f32(gate, "silu_mul", "gate");
  need_f32(up, "silu_mul", "up");
  need(gate.shape() == up.shape(), "silu_mul",
       fmt::format("gate {} and up {} differ", gate.desc(), up.desc()));
  if (on_cuda("silu_mul", {&gate, &up})) CUDA_OP(silu_mul(gate, up));
  Tensor y = Tensor::empty(gate.shape(), DType::F32);
  cpu::silu_mul(gate.data<float>(), up.data<float>(), y.data<float>(), y.numel());
  return y;
}

void add_(Tensor& a, const Tensor& b) {
  need_f32(a, "add", "a");
  need_float(b, "add", "b");
  bool trailing = b.ndim() <= a.ndim();
  for (int i = 1; trailing && i <= b.ndim(); ++i) trailing = a.dim(-i) == b.dim(-i);
  need(trailing, "add",
       fmt::format("b {} must match the trailing dims of a {}", b.desc(), a.desc()));
  if (on_cuda("add", {&a, &b})) CUDA_OP(add_(a, b));
  if (a.numel() == 0) return;
  cpu::add(a.data<float>(), a.numel(), b.raw(), b.dtype(), b.numel());
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = a.clone();
  add_(y, b);
  return y;
}

void rope_(Tensor& x, int64_t start_pos, double theta) {
  need_f32(x, "rope", "x");
  need(x.ndim() == 3 && x.dim(2) % 2 == 0, "rope",
       fmt::format("x must be [L, heads, head_dim] with an even head_dim, got {}", x.desc()));
  need(start_pos >= 0 && theta > 0, "rope",
       fmt::format("bad start position {} / theta {}", start_pos, theta));
  if (on_cuda("rope", {&x})) CUDA_OP(rope_(x, start_pos, theta));
  cpu::rope(x.data<float>(), x.dim(0), x.dim(1), x.dim(2), start_pos, theta);
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt) {
  for (const auto& [t, name] : {std::pair{&q, "q"}, std::pair{&k, "k"}, std::pair{&v, "v"}})
    need(t->defined() && (t->dtype() == DType::F32 || t->dtype() == DType::BF16), "attention",
         fmt::format("{} must be F32 or BF16, got {}", name, t->defined() ? t->desc() : "nothing"));
  need(q.ndim() == 4 && k.ndim() == 4 && k.shape() == v.shape() && q.dim(0) == k.dim(0) &&
           q.dim(3) == k.dim(3) && k.dim(2) > 0 && q.dim(2) % k.dim(2) == 0,
       "attention",
       fmt::format("expected q [B, Lq, H, D] and k = v [B, Lk, Hkv, D] with H % Hkv == 0; got q "
                   "{}, k {}, v {}",
                   q.desc(), k.desc(), v.desc()));
  if (opt.key_bias.defined()) {
    need_f32(opt.key_bias, "attention", "key_bias");
    need(opt.key_bias.shape() == Shape{k.dim(0), k.dim(1)}, "attention",
         fmt::format("key_bias {} must be [B, Lk] = [{}, {}]", opt.key_bias.desc(), k.dim(0),
                     k.dim(1)));
  }
  need(opt.q_offset >= 0, "attention", fmt::format("negative q_offset {}", opt.q_offset));
  need(opt.compute == DType::F32 || opt.compute == DType::BF16, "attention",
       fmt::format("compute type must be F32 or BF16, got {}", dtype_name(opt.compute)));
  need(opt.out == DType::F32 || opt.out == DType::BF16, "attention",
       fmt::format("output type must be F32 or BF16, got {}", dtype_name(opt.out)));
  if (on_cuda("attention", {&q, &k, &v, &opt.key_bias}))
    CUDA_OP(attention(q, k, v, opt.scale, opt.causal, opt.q_offset, opt.key_bias, opt.compute,
                      opt.out));
  Tensor out = Tensor::empty(q.shape(), DType::F32);
  cpu::AttentionShape s{q.dim(0), q.dim(1), k.dim(1), q.dim(2), k.dim(2), q.dim(3)};
  const Tensor qf = to_f32_if_bf16(q), kf = to_f32_if_bf16(k), vf = to_f32_if_bf16(v);
  cpu::attention(qf.data<float>(), kf.data<float>(), vf.data<float>(), s, opt.scale, opt.causal,
                 opt.q_offset, opt.key_bias.defined() ? opt.key_bias.data<float>() : nullptr,
                 out.data<float>());
  return opt.out == DType::F32 ? out : out.to_dtype(opt.out);
}

Tensor embedding(const Tensor& table, std::span<const int32_t> ids) {
  need_float(table, "embedding", "table");
  need(table.ndim() == 2, "embedding",
       fmt::format("table must be [rows, dim], got {}", table.desc()));
  if (on_cuda("embedding", {&table})) CUDA_OP(embedding(table, ids));
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= table.dim(0))
      fail("embedding: token id {} at position {} is outside the table's {} rows", ids[i], i,
           table.dim(0));
  const int64_t n = static_cast<int64_t>(ids.size());
  Tensor y = Tensor::empty({n, table.dim(1)}, DType::F32);
  cpu::embedding(table.raw(), table.dtype(), table.dim(1), ids.data(), n, y.data<float>());
  return y;
}

Tensor avg_pool_time(const Tensor& x) {
  need_f32(x, "avg_pool_time", "x");
  need(x.ndim() == 3, "avg_pool_time", fmt::format("x must be [B, T, C], got {}", x.desc()));
  if (on_cuda("avg_pool_time", {&x})) CUDA_OP(avg_pool_time(x));
  Tensor y = Tensor::empty({x.dim(0), x.dim(1) / 2, x.dim(2)}, DType::F32);
  cpu::avg_pool2_time(x.data<float>(), x.dim(0), x.dim(1), x.dim(2), y.data<float>());
  return y;
}

Tensor transpose_last2(const Tensor& x) {
  need_f32(x, "transpose_last2", "x");
  need(x.ndim() == 3, "transpose_last2", fmt::format("x must be [B, A, C], got {}", x.desc()));
  if (on_cuda("transpose_last2", {&x})) CUDA_OP(transpose_last2(x));
  Tensor y = Tensor::empty({x.dim(0), x.dim(2), x.dim(1)}, DType::F32);
  cpu::transpose_last2(x.data<float>(), x.dim(0), x.dim(1), x.dim(2), y.data<float>());
  return y;
}

}  // namespace stepaudio::ops
