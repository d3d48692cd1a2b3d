#include "ops/fused_ops.h"

#include <cstring>

#include "ops/dispatch.h"
#include "ops/ops.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/fused_ops_cuda.h"
#endif

namespace stepaudio::ops {

using namespace detail;

namespace {

void need_dtype(const Tensor& t, const char* op, const char* arg, bool float_ok) {
  need(t.defined(), op, fmt::format("{} is undefined", arg));
  const DType d = t.dtype();
  const bool ok = d == DType::F32 || (float_ok && (d == DType::BF16 || d == DType::F16));
  need(ok, op,
       fmt::format("{} must be {}, got {}", arg, float_ok ? "F32, BF16 or F16" : "F32", t.desc()));
}

void need_vec(const Tensor& v, const Tensor& x, const char* op, const char* arg) {
  need_dtype(v, op, arg, true);
  need(v.ndim() == 1 && x.ndim() >= 1 && v.dim(0) == x.dim(-1), op,
       fmt::format("{} {} must be [{}] to match x {}", arg, v.desc(), x.ndim() ? x.dim(-1) : 0,
                   x.desc()));
}

void need_out(DType out, const char* op) {
  need(out == DType::F32 || out == DType::BF16, op,
       fmt::format("output type must be F32 or BF16, got {}", dtype_name(out)));
}

Tensor rounded(const Tensor& y, DType out) { return out == DType::F32 ? y : y.to_dtype(out); }

}  // namespace

Tensor layer_norm_to(const Tensor& x, const Tensor& w, const Tensor& b, float eps, DType out) {
  const char* op = "layer_norm_to";
  need_dtype(x, op, "x", false);
  need_vec(w, x, op, "weight");
  need_vec(b, x, op, "bias");
  need_out(out, op);
  if (on_cuda(op, {&x, &w, &b})) CUDA_OP(layer_norm_to(x, w, b, eps, out));
  return rounded(layer_norm(x, w, b, eps), out);
}

Tensor add_layer_norm_(Tensor& x, const Tensor& r, const Tensor& r_bias, const Tensor& w,
                       const Tensor& b, float eps, DType out) {
  const char* op = "add_layer_norm";
  need_dtype(x, op, "x", false);
  need_dtype(r, op, "r", false);
  need(r.shape() == x.shape(), op,
       fmt::format("r {} must have the shape of x {}", r.desc(), x.desc()));
  if (r_bias.defined()) need_vec(r_bias, x, op, "r_bias");
  need_vec(w, x, op, "weight");
  need_vec(b, x, op, "bias");
  need_out(out, op);
  if (on_cuda(op, {&x, &r, &r_bias, &w, &b}))
    CUDA_OP(add_layer_norm_(x, r, r_bias, w, b, eps, out));
  if (r_bias.defined()) {
    Tensor rb = add(r, r_bias);  // x + (r + r_bias): the order of linear-with-bias then add
    add_(x, rb);
  } else {
    add_(x, r);
  }
  return rounded(layer_norm(x, w, b, eps), out);
}

void add_residual_(Tensor& x, const Tensor& r, const Tensor& r_bias) {
  const char* op = "add_residual";
  need_dtype(x, op, "x", false);
  need_dtype(r, op, "r", false);
  need(r.shape() == x.shape(), op,
       fmt::format("r {} must have the shape of x {}", r.desc(), x.desc()));
  need_vec(r_bias, x, op, "r_bias");
  if (on_cuda(op, {&x, &r, &r_bias})) CUDA_OP(add_residual_(x, r, r_bias));
  add_(x, add(r, r_bias));
}

Tensor bias_gelu(const Tensor& x, const Tensor& b, DType out) {
  const char* op = "bias_gelu";
  need_dtype(x, op, "x", false);
  need_vec(b, x, op, "bias");
  need_out(out, op);
  if (on_cuda(op, {&x, &b})) CUDA_OP(bias_gelu(x, b, out));
  Tensor y = add(x, b);
  gelu_(y);
  return rounded(y, out);
}

Tensor bias_cast(const Tensor& x, const Tensor& b, DType out) {
  const char* op = "bias_cast";
  need_dtype(x, op, "x", false);
  if (b.defined()) need_vec(b, x, op, "bias");
  need_out(out, op);
  if (on_cuda(op, {&x, &b})) CUDA_OP(bias_cast(x, b, out));
  return rounded(b.defined() ? add(x, b) : x, out);
}

Tensor bias_cast_split(const Tensor& x, const Tensor& b, int64_t parts, DType out) {
  const char* op = "bias_cast_split";
  need_dtype(x, op, "x", false);
  if (b.defined()) need_vec(b, x, op, "bias");
  need_out(out, op);
  need(parts >= 1 && x.ndim() >= 1 && x.dim(-1) % parts == 0, op,
       fmt::format("x {} cannot be cut into {} equal parts", x.desc(), parts));
  if (on_cuda(op, {&x, &b})) CUDA_OP(bias_cast_split(x, b, parts, out));
  const Tensor y = rounded(b.defined() ? add(x, b) : x, out);
  const int64_t n = x.dim(-1), split = n / parts, rows = n ? y.numel() / n : 0;
  Shape os = x.shape();
  os.back() = split;
  os.insert(os.begin(), parts);
  Tensor r = Tensor::empty(os, out);
  const size_t es = dtype_size(out);
  const auto* src = static_cast<const uint8_t*>(y.raw());
  auto* dst = static_cast<uint8_t*>(r.raw());
  for (int64_t p = 0; p < parts; ++p)
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(dst + ((p * rows + i) * split) * es, src + (i * n + p * split) * es, split * es);
  return r;
}

}  // namespace stepaudio::ops
