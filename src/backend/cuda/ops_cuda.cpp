// The Tensor side of the CUDA ops: checks, output allocation (through the caching allocator),
// the cuBLAS products, and the calls into the kernel launchers of the .cu files.
#include "backend/cuda/ops_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "backend/cuda/blas.h"
#include "backend/cuda/check.h"
#include "backend/cuda/kernels_cuda.h"

namespace stepaudio::cuda {

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) fail("CUDA kernel launch failed in {}: {}", what, cudaGetErrorString(e));
}

int sm_count() {
  int dev = 0, n = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  return n;
}

// The kernels' element type of a float tensor.
Elem elem_of(const Tensor& t, const char* op) {
  switch (t.dtype()) {
    case DType::F32:
      return Elem::F32;
    case DType::BF16:
      return Elem::BF16;
    case DType::F16:
      return Elem::F16;
    default:
      fail("{}: unsupported element type {} on CUDA", op, t.desc());
  }
}

namespace {

cudaDataType_t blas_type(DType t) {
  switch (t) {
    case DType::F32:
      return CUDA_R_32F;
    case DType::BF16:
      return CUDA_R_16BF;
    case DType::F16:
      return CUDA_R_16F;
    default:
      fail("linear: unsupported weight type {} on CUDA", dtype_name(t));
  }
}

void need_cuda(const Tensor& t, const char* op, const char* arg) {
  if (t.defined() && !t.device().is_cuda())
    fail("{}: {} must be on the GPU, got {}", op, arg, t.desc());
}

void need_f32_cuda(const Tensor& t, const char* op) {
  need_cuda(t, op, "input");
  if (t.dtype() != DType::F32) fail("{}: expected F32, got {}", op, t.desc());
}

void set_device(const Tensor& t) { CUDA_CHECK(cudaSetDevice(t.device().index)); }

int64_t rows_of(const Tensor& x) { return x.ndim() ? x.numel() / x.dim(-1) : 1; }

std::atomic<int64_t> g_gemv_max_rows{-1};

}  // namespace

// Up to this many rows go through the weight-streaming GEMV, more through cuBLAS on the tensor
// cores. The GEMV re-reads x from L1 for every row, so it wins only for a row or two (measured
// by bench_llm_gpu's gemv_* lines; STEPAUDIO_GEMV_MAX_ROWS overrides).
int64_t gemv_max_rows() {
  int64_t v = g_gemv_max_rows.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("STEPAUDIO_GEMV_MAX_ROWS");
    v = e && *e ? std::clamp<int64_t>(std::atoll(e), 0, kGemvMaxRows) : 1;
    g_gemv_max_rows.store(v);
  }
  return v;
}

// y[M, N] (+)= x[M, K] W[N, K]^T through cuBLAS. In its column-major terms y^T (N x M) = W^T x^T
// with W read as a K x N column-major matrix (op T) and x as K x M; accumulate is beta = 1.
void blas_linear_into(const Tensor& x2d, const Tensor& w, float* y, bool accumulate) {
  const int64_t M = x2d.dim(0), K = x2d.dim(1), N = w.dim(0);
  if (M == 0 || N == 0) return;
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
    fail("linear: product of {} and {} is too large for cuBLAS", x2d.desc(), w.desc());
  // F32 weights: a true fp32 product (default math mode, no TF32). BF16/F16 weights: the
  // activations are rounded to the weight type (unless they come rounded: x already in the weight
  // type) and the tensor cores accumulate in fp32.
  Tensor xin = x2d.dtype() == w.dtype() ? x2d : convert(x2d, w.dtype());
  const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  CUBLAS_CHECK(cublasGemmEx(blas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N),
                            static_cast<int>(M), static_cast<int>(K), &one, w.raw(),
                            blas_type(w.dtype()), static_cast<int>(K), xin.raw(),
                            blas_type(xin.dtype()), static_cast<int>(K), &beta, y, CUDA_R_32F,
                            static_cast<int>(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

namespace {

// y[M, N] = x[M, K] W[N, K]^T + b.
void linear_into(const Tensor& x2d, const Tensor& w, const Tensor& b, float* y) {
  const int64_t M = x2d.dim(0), K = x2d.dim(1), N = w.dim(0);
  if (M == 0 || N == 0) return;
  if (M <= gemv_max_rows()) {
    const Tensor xf = x2d.dtype() == DType::F32 ? x2d : convert(x2d, DType::F32);
    launch_gemv(xf.data<float>(), M, w.raw(), elem_of(w, "linear"), b.defined() ? b.raw() : nullptr,
                b.defined() ? elem_of(b, "linear") : Elem::F32, y, N, K);
    return;
  }
  blas_linear_into(x2d, w, y, false);
  if (b.defined()) launch_add_bias(y, M, N, b.raw(), elem_of(b, "linear"));
}

}  // namespace

void set_gemv_max_rows(int64_t rows) {
  g_gemv_max_rows.store(std::clamp<int64_t>(rows, 0, kGemvMaxRows));
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  need_cuda(x, "linear", "x");
  need_cuda(w, "linear", "weight");
  need_cuda(b, "linear", "bias");
  set_device(x);
  Shape os = x.shape();
  os.back() = w.dim(0);
  Tensor y = Tensor::empty(os, DType::F32, x.device());
  const int64_t K = x.dim(-1), M = K ? x.numel() / K : 0;
  linear_into(x.reshape({M, K}), w, b, y.data<float>());
  return y;
}

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding) {
  need_cuda(x, "conv1d", "x");
  need_cuda(w, "conv1d", "weight");
  need_cuda(b, "conv1d", "bias");
  set_device(x);
  const int64_t B = x.dim(0), C = x.dim(1), T = x.dim(2), Co = w.dim(0), K = w.dim(2);
  if (T + 2 * padding < K)
    fail("conv1d: input length {} is shorter than the kernel {} (padding {})", T, K, padding);
  const int64_t To = (T + 2 * padding - K) / stride + 1;
  // Every batch item at once: col [B*To, C*K] @ W[Co, C*K]^T -> [B, To, Co] -> [B, Co, To].
  Tensor col = Tensor::empty({B * To, C * K}, DType::F32, x.device());
  if (col.numel() > 0)
    launch_im2col(x.data<float>(), B, C, T, K, stride, padding, To, col.data<float>());
  Tensor tmp = Tensor::empty({B, To, Co}, DType::F32, x.device());
  linear_into(col, w.reshape({Co, C * K}), b, tmp.data<float>());
  return transpose_last2(tmp);
}

Tensor rms_norm(const Tensor& x, const Tensor& w, float eps) {
  need_f32_cuda(x, "rms_norm");
  need_cuda(w, "rms_norm", "weight");
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (y.numel() == 0) return y;
  const int64_t rows = rows_of(x);
  if (rows > INT32_MAX) fail("rms_norm: {} has too many rows for one launch", x.desc());
  set_device(x);
  launch_rms_norm(x.data<float>(), rows, x.dim(-1), w.raw(), elem_of(w, "rms_norm"), eps,
                  y.data<float>());
  return y;
}

Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
  need_f32_cuda(x, "layer_norm");
  need_cuda(w, "layer_norm", "weight");
  need_cuda(b, "layer_norm", "bias");
  if (w.dtype() != b.dtype())
    fail("layer_norm: weight {} and bias {} must have one element type on CUDA", w.desc(),
         b.desc());
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  if (y.numel() == 0) return y;
  const int64_t rows = rows_of(x);
  if (rows > INT32_MAX) fail("layer_norm: {} has too many rows for one launch", x.desc());
  set_device(x);
  launch_layer_norm(x.data<float>(), rows, x.dim(-1), w.raw(), b.raw(), elem_of(w, "layer_norm"),
                    eps, y.data<float>());
  return y;
}

void gelu_(Tensor& x) {
  need_f32_cuda(x, "gelu");
  if (x.numel() == 0) return;
  set_device(x);
  launch_gelu(x.data<float>(), x.numel());
}

void relu_(Tensor& x) {
  need_f32_cuda(x, "relu");
  if (x.numel() == 0) return;
  set_device(x);
  launch_relu(x.data<float>(), x.numel());
}

Tensor silu_mul(const Tensor& gate, const Tensor& up) {
  need_f32_cuda(gate, "silu_mul");
  need_f32_cuda(up, "silu_mul");
  Tensor y = Tensor::empty(gate.shape(), DType::F32, gate.device());
  if (y.numel() == 0) return y;
  set_device(y);
  launch_silu_mul(gate.data<float>(), up.data<float>(), y.data<float>(), y.numel());
  return y;
}

void add_(Tensor& a, const Tensor& b) {
  need_f32_cuda(a, "add");
  need_cuda(b, "add", "b");
  if (a.numel() == 0) return;
  if (b.numel() == 0) fail("add: b {} is empty but a {} is not", b.desc(), a.desc());
  set_device(a);
  launch_add(a.data<float>(), a.numel(), b.raw(), elem_of(b, "add"), b.numel());
}

void rope_(Tensor& x, int64_t start_pos, double theta) {
  need_f32_cuda(x, "rope");
  if (x.numel() == 0) return;
  set_device(x);
  launch_rope(x.data<float>(), x.dim(0), x.dim(1), x.dim(2), start_pos, theta);
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale, bool causal,
                 int64_t q_offset, const Tensor& key_bias, DType compute, DType out_type) {
  need_cuda(q, "attention", "q");
  need_cuda(k, "attention", "k");
  need_cuda(v, "attention", "v");
  need_cuda(key_bias, "attention", "key_bias");
  const int64_t B = q.dim(0), Lq = q.dim(1), H = q.dim(2), D = q.dim(3);
  const int64_t Lk = k.dim(1), Hkv = k.dim(2);
  if (D > kAttentionMaxHeadDim)
    fail("attention: head_dim {} is larger than the CUDA kernel's {}", D, kAttentionMaxHeadDim);
  Tensor out = Tensor::empty(q.shape(), DType::F32, q.device());
  if (out.numel() == 0)
    return out_type == DType::F32 ? out : Tensor::empty(q.shape(), out_type, q.device());
  set_device(q);
  const int64_t G = H / Hkv;
  const int64_t row_tiles = (Lq * G + kAttentionRowTile - 1) / kAttentionRowTile;
  const int64_t blocks = row_tiles * B * Hkv;
  if (row_tiles > INT32_MAX || B * Hkv > 65535)
    fail("attention: q {} / k {} is too large for one launch", q.desc(), k.desc());
  if (Lk == 0) return Tensor::zeros(q.shape(), out_type, q.device());

  if (compute == DType::BF16 && Lq > 1 && flash_attention_supports(D)) {
    if (B > 65535 || H > 65535)
      fail("attention: q {} has too many batch items or heads for one launch", q.desc());
    // Rounded once here unless they come in bf16 (each K/V tile is read by every query block).
    auto bf16 = [](const Tensor& t) {
      return t.dtype() == DType::BF16 ? t : convert(t, DType::BF16);
    };
    const Tensor qb = bf16(q), kb = bf16(k), vb = bf16(v);
    FlashAttentionArgs f{};
    f.q = qb.raw(), f.k = kb.raw(), f.v = vb.raw();
    f.bias = key_bias.defined() ? key_bias.data<float>() : nullptr;
    // The flash kernel writes bf16 itself; `out` is then not used.
    if (out_type == DType::BF16) out = Tensor::empty(q.shape(), DType::BF16, q.device());
    f.out = out.raw();
    f.out_bf16 = out_type == DType::BF16;
    f.B = B, f.Lq = Lq, f.Lk = Lk, f.H = H, f.Hkv = Hkv, f.D = D;
    f.scale = scale;
    f.causal = causal;
    f.q_offset = q_offset;
    launch_flash_attention(f);
    return out;
  }

  // Split the keys over blocks when the grid is under two waves (decode): each split keeps at
  // least two key tiles so that the merge stays cheap.
  const int64_t target = 2 * static_cast<int64_t>(sm_count());
  const int64_t min_keys = 2 * kAttentionKeyTile;
  int64_t splits = 1;
  if (blocks < target && Lk > min_keys)
    splits =
        std::min<int64_t>({(target + blocks - 1) / blocks, (Lk + min_keys - 1) / min_keys, 65535});
  int64_t kps = (Lk + splits - 1) / splits;
  kps = (kps + kAttentionKeyTile - 1) / kAttentionKeyTile * kAttentionKeyTile;
  splits = (Lk + kps - 1) / kps;

  // The fp32 kernel reads F32; BF16 inputs (given for compute BF16) are upcast exactly.
  const Tensor qf = q.dtype() == DType::F32 ? q : convert(q, DType::F32);
  const Tensor kf = k.dtype() == DType::F32 ? k : convert(k, DType::F32);
  const Tensor vf = v.dtype() == DType::F32 ? v : convert(v, DType::F32);
  AttentionArgs a{};
  a.q = qf.data<float>();
  a.k = kf.data<float>();
  a.v = vf.data<float>();
  a.bias = key_bias.defined() ? key_bias.data<float>() : nullptr;
  a.out = out.data<float>();
  a.B = B, a.Lq = Lq, a.Lk = Lk, a.H = H, a.Hkv = Hkv, a.D = D;
  a.scale = scale;
  a.causal = causal;
  a.q_offset = q_offset;
  a.keys_per_split = kps;
  a.splits = splits;
  Tensor part_o, part_ml;
  if (splits > 1) {
    part_o = Tensor::empty({splits, B * Lq * H, D}, DType::F32, q.device());
    part_ml = Tensor::empty({splits, B * Lq * H, 2}, DType::F32, q.device());
    a.part_o = part_o.data<float>();
    a.part_ml = part_ml.data<float>();
  }
  launch_attention(a);
  return out_type == DType::F32 ? out : convert(out, out_type);
}

Tensor embedding(const Tensor& table, std::span<const int32_t> ids) {
  need_cuda(table, "embedding", "table");
  const int64_t n = static_cast<int64_t>(ids.size()), dim = table.dim(1);
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= table.dim(0))
      fail("embedding: token id {} at position {} is outside the table's {} rows", ids[i], i,
           table.dim(0));
  Tensor y = Tensor::empty({n, dim}, DType::F32, table.device());
  if (n == 0 || dim == 0) return y;
  set_device(table);
  Tensor ids_host = Tensor::empty({n}, DType::I32);
  std::copy(ids.begin(), ids.end(), ids_host.data<int32_t>());
  Tensor ids_dev = ids_host.to(table.device());
  launch_embedding(table.raw(), elem_of(table, "embedding"), dim, ids_dev.data<int32_t>(), n,
                   y.data<float>());
  return y;
}

Tensor avg_pool_time(const Tensor& x) {
  need_f32_cuda(x, "avg_pool_time");
  const int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2);
  Tensor y = Tensor::empty({B, T / 2, C}, DType::F32, x.device());
  if (y.numel() == 0) return y;
  set_device(x);
  launch_avg_pool2(x.data<float>(), B, T, C, y.data<float>());
  return y;
}

Tensor transpose_last2(const Tensor& x) {
  need_f32_cuda(x, "transpose_last2");
  const int64_t B = x.dim(0), A = x.dim(1), C = x.dim(2);
  Tensor y = Tensor::empty({B, C, A}, DType::F32, x.device());
  if (y.numel() == 0) return y;
  if (B > 65535 || (A + 31) / 32 > 65535 || (C + 31) / 32 > INT32_MAX)
    fail("transpose_last2: {} is too large for one launch", x.desc());
  set_device(x);
  launch_transpose(x.data<float>(), B, A, C, y.data<float>());
  return y;
}

Tensor convert(const Tensor& x, DType dtype) {
  need_cuda(x, "convert", "x");
  Tensor y = Tensor::empty(x.shape(), dtype, x.device());
  if (y.numel() == 0) return y;
  set_device(x);
  launch_convert(x.raw(), elem_of(x, "convert"), y.raw(), elem_of(y, "convert"), x.numel());
  return y;
}

Tensor to_f32(const Tensor& x) { return convert(x, DType::F32); }

}  // namespace stepaudio::cuda
