// Tensor side of the fused encoder ops: device checks, output allocation, launches.
#include "backend/cuda/fused_ops_cuda.h"

#include <cuda_runtime.h>

#include "backend/cuda/check.h"
#include "backend/cuda/kernels_cuda.h"
#include "backend/cuda/ops_cuda.h"

namespace stepaudio::cuda {

namespace {

void need_cuda(const Tensor& t, const char* op, const char* arg) {
  if (t.defined() && !t.device().is_cuda())
    fail("{}: {} must be on the GPU, got {}", op, arg, t.desc());
}

int64_t rows_of(const Tensor& x, const char* op) {
  const int64_t rows = x.ndim() ? x.numel() / x.dim(-1) : 1;
  if (rows > INT32_MAX) fail("{}: {} has too many rows for one launch", op, x.desc());
  return rows;
}

Tensor norm(const Tensor& x, float* x_out, const Tensor& r, const Tensor& r_bias, const Tensor& w,
            const Tensor& b, float eps, DType out, const char* op) {
  for (const Tensor* t : {&x, &r, &r_bias, &w, &b}) need_cuda(*t, op, "every input");
  if (w.dtype() != b.dtype())
    fail("{}: weight {} and bias {} must have one element type on CUDA", op, w.desc(), b.desc());
  Tensor y = Tensor::empty(x.shape(), out, x.device());
  if (y.numel() == 0) return y;
  CUDA_CHECK(cudaSetDevice(x.device().index));
  launch_add_layer_norm(x.data<float>(), x_out, r.defined() ? r.data<float>() : nullptr,
                        r_bias.defined() ? r_bias.raw() : nullptr,
                        r_bias.defined() ? elem_of(r_bias, op) : Elem::F32, rows_of(x, op),
                        x.dim(-1), w.raw(), b.raw(), elem_of(w, op), eps, y.raw(), elem_of(y, op));
  return y;
}

}  // namespace

Tensor layer_norm_to(const Tensor& x, const Tensor& w, const Tensor& b, float eps, DType out) {
  return norm(x, nullptr, Tensor(), Tensor(), w, b, eps, out, "layer_norm_to");
}

Tensor add_layer_norm_(Tensor& x, const Tensor& r, const Tensor& r_bias, const Tensor& w,
                       const Tensor& b, float eps, DType out) {
  return norm(x, x.data<float>(), r, r_bias, w, b, eps, out, "add_layer_norm");
}

void add_residual_(Tensor& x, const Tensor& r, const Tensor& r_bias) {
  for (const Tensor* t : {static_cast<const Tensor*>(&x), &r, &r_bias})
    need_cuda(*t, "add_residual", "every input");
  if (x.numel() == 0) return;
  CUDA_CHECK(cudaSetDevice(x.device().index));
  launch_add_residual(x.data<float>(), r.data<float>(), rows_of(x, "add_residual"), x.dim(-1),
                      r_bias.raw(), elem_of(r_bias, "add_residual"));
}

namespace {
Tensor bias_act(const Tensor& x, const Tensor& b, bool gelu, DType out, const char* op) {
  need_cuda(x, op, "x");
  need_cuda(b, op, "bias");
  Tensor y = Tensor::empty(x.shape(), out, x.device());
  if (y.numel() == 0) return y;
  CUDA_CHECK(cudaSetDevice(x.device().index));
  launch_bias_act(x.data<float>(), rows_of(x, op), x.dim(-1), b.defined() ? b.raw() : nullptr,
                  b.defined() ? elem_of(b, op) : Elem::F32, gelu, y.raw(), elem_of(y, op));
  return y;
}
}  // namespace

Tensor bias_gelu(const Tensor& x, const Tensor& b, DType out) {
  return bias_act(x, b, true, out, "bias_gelu");
}

Tensor bias_cast(const Tensor& x, const Tensor& b, DType out) {
  return bias_act(x, b, false, out, "bias_cast");
}

Tensor bias_cast_split(const Tensor& x, const Tensor& b, int64_t parts, DType out) {
  const char* op = "bias_cast_split";
  need_cuda(x, op, "x");
  need_cuda(b, op, "bias");
  const int64_t n = x.dim(-1), rows = rows_of(x, op), split = n / parts;
  Shape os = x.shape();
  os.back() = split;
  os.insert(os.begin(), parts);
  Tensor y = Tensor::empty(os, out, x.device());
  if (y.numel() == 0) return y;
  CUDA_CHECK(cudaSetDevice(x.device().index));
  launch_bias_act(x.data<float>(), rows, n, b.defined() ? b.raw() : nullptr,
                  b.defined() ? elem_of(b, op) : Elem::F32, false, y.raw(), elem_of(y, op), split);
  return y;
}

}  // namespace stepaudio::cuda
