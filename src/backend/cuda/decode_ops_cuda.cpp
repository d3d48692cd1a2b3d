// The Tensor side of the decode ops on CUDA: output allocation and the launcher calls.
#include <cuda_runtime.h>

#include "backend/cuda/check.h"
#include "backend/cuda/decode_cuda.h"
#include "backend/cuda/decode_kernels.h"
#include "backend/cuda/ops_cuda.h"

namespace stepaudio::cuda {

Tensor embedding_rows(const Tensor& table, const Tensor& ids) {
  Tensor y = Tensor::empty({ids.numel(), table.dim(1)}, DType::F32, table.device());
  if (ids.numel() > 0)
    launch_embedding_rows(table.raw(), elem_of(table, "embedding_rows"), table.dim(0), table.dim(1),
                          ids.data<int32_t>(), ids.numel(), y.data<float>());
  return y;
}

Tensor add_rms_norm(Tensor& x, const Tensor& r, const Tensor& w, float eps) {
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  const int64_t n = x.dim(-1), rows = n ? x.numel() / n : 0;
  if (rows > 0)
    launch_add_rms_norm(x.data<float>(), r.data<float>(), rows, n, w.data<float>(), eps,
                        y.data<float>());
  return y;
}

Tensor qkv_rope_append(const Tensor& qkv, int64_t heads, int64_t kv_heads, const Tensor& positions,
                       const Tensor& slots, Tensor& k_cache, Tensor& v_cache, double theta) {
  const int64_t B = qkv.dim(0), D = k_cache.dim(3);
  Tensor q = Tensor::empty({B, heads, D}, DType::F32, qkv.device());
  if (B > 0)
    launch_qkv_rope_append(qkv.data<float>(), B, heads, kv_heads, D, positions.data<int32_t>(),
                           slots.data<int32_t>(), k_cache.raw(), v_cache.raw(),
                           k_cache.dtype() == DType::BF16, k_cache.dim(1), theta, q.data<float>());
  return q;
}

Tensor decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                        const Tensor& slots, const Tensor& positions, float scale) {
  const int64_t B = q.dim(0), H = q.dim(1), D = q.dim(2), Hkv = k_cache.dim(2);
  const bool bf16 = k_cache.dtype() == DType::BF16;
  const int64_t max_group =
      decode_attention_uses_mma(bf16, D) ? kDecodeMmaMaxGroup : kDecodeMaxGroup;
  if (H / Hkv > max_group)
    fail(
        "decode_attention: {} query heads per KV head; the CUDA kernel for a {} cache with "
        "head_dim {} takes at most {}",
        H / Hkv, dtype_name(k_cache.dtype()), D, max_group);
  if (D > kDecodeMaxHeadDim || D % 8 != 0)
    fail("decode_attention: head_dim {} is not supported on CUDA (a multiple of 8, at most {})", D,
         kDecodeMaxHeadDim);
  // The split follows the cache capacity, not the (device-side) lengths, so that the launch is
  // the same every token; splits past a sequence's length return at once.
  const int64_t max_len = k_cache.dim(1);
  const int64_t kps = decode_keys_per_split(bf16, B, Hkv, D, max_len);
  const int64_t splits = (max_len + kps - 1) / kps;
  Tensor out = Tensor::empty({B, H * D}, DType::F32, q.device());
  Tensor part_o = Tensor::empty({B, H, splits, D}, DType::F32, q.device());
  Tensor part_ml = Tensor::empty({B, H, splits, 2}, DType::F32, q.device());
  if (B == 0) return out;
  DecodeAttentionArgs a{q.data<float>(),
                        k_cache.raw(),
                        v_cache.raw(),
                        bf16,
                        slots.data<int32_t>(),
                        positions.data<int32_t>(),
                        B,
                        H,
                        Hkv,
                        D,
                        max_len,
                        splits,
                        kps,
                        scale,
                        part_o.data<float>(),
                        part_ml.data<float>(),
                        out.data<float>()};
  launch_decode_attention(a);
  return out;
}

Tensor swiglu(const Tensor& gu) {
  const int64_t B = gu.dim(0), I = gu.dim(1) / 2;
  Tensor y = Tensor::empty({B, I}, DType::F32, gu.device());
  if (y.numel() > 0) launch_swiglu(gu.data<float>(), B, I, y.data<float>());
  return y;
}

namespace {

// One fused GEMV for up to gemv_max_rows() rows. Where RMSNorm/SwiGLU cannot be folded in (x too
// long for the staging buffer, odd alignment), that op runs on its own into F32 and the product
// takes it plainly; the residual add stays in the product's store either way.
void fused_linear(const Tensor& in, GemvInput kind, int64_t M, int64_t K, const Tensor& norm_w,
                  float eps, const Tensor& w, const Tensor& bias, float* y, bool accumulate) {
  const Tensor b = !bias.defined() || bias.dtype() == DType::F32 ? bias : convert(bias, DType::F32);
  FusedGemvArgs a{in.data<float>(),
                  norm_w.defined() ? norm_w.data<float>() : nullptr,
                  eps,
                  w.raw(),
                  elem_of(w, "linear"),
                  b.defined() ? b.data<float>() : nullptr,
                  y,
                  accumulate,
                  M,
                  w.dim(0),
                  K};
  if (launch_fused_gemv(a, kind)) return;
  Tensor t = Tensor::empty({M, K}, DType::F32, in.device());
  if (kind == GemvInput::RmsNorm)
    launch_rms_norm(in.data<float>(), M, K, norm_w.raw(), Elem::F32, eps, t.data<float>());
  else
    launch_swiglu(in.data<float>(), M, K, t.data<float>());
  a.x = t.data<float>();
  launch_fused_gemv(a, GemvInput::Plain);
}

void set_device(const Tensor& t) { CUDA_CHECK(cudaSetDevice(t.device().index)); }

}  // namespace

// Batch 1 (gemv_max_rows()): one kernel. More rows: the norm writes the product's input type
// (no separate convert), cuBLAS, then the bias.
Tensor rms_norm_linear(const Tensor& x, const Tensor& norm_w, float eps, const Tensor& w,
                       const Tensor& bias) {
  set_device(x);
  const int64_t K = x.dim(-1), M = x.numel() / K, N = w.dim(0);
  Shape os = x.shape();
  os.back() = N;
  Tensor y = Tensor::empty(os, DType::F32, x.device());
  if (M == 0 || N == 0) return y;
  if (M <= gemv_max_rows()) {
    fused_linear(x, GemvInput::RmsNorm, M, K, norm_w, eps, w, bias, y.data<float>(), false);
    return y;
  }
  Tensor h = Tensor::empty({M, K}, w.dtype(), x.device());
  launch_rms_norm_cast(x.data<float>(), M, K, norm_w.data<float>(), eps, h.raw(),
                       elem_of(w, "rms_norm_linear"));
  blas_linear_into(h, w, y.data<float>(), false);
  if (bias.defined()) launch_add_bias(y.data<float>(), M, N, bias.raw(), elem_of(bias, "linear"));
  return y;
}

// More rows: x is cuBLAS's C with beta = 1.
void linear_add_(Tensor& x, const Tensor& a, const Tensor& w) {
  set_device(x);
  const int64_t K = a.dim(-1), M = a.numel() / K;
  if (M == 0 || w.dim(0) == 0) return;
  if (M <= gemv_max_rows())
    fused_linear(a, GemvInput::Plain, M, K, Tensor(), 0.0f, w, Tensor(), x.data<float>(), true);
  else
    blas_linear_into(a.reshape({M, K}), w, x.data<float>(), true);
}

void swiglu_linear_add_(Tensor& x, const Tensor& gu, const Tensor& w) {
  set_device(x);
  const int64_t I = gu.dim(-1) / 2, M = gu.numel() / gu.dim(-1);
  if (M == 0 || w.dim(0) == 0) return;
  if (M <= gemv_max_rows()) {
    fused_linear(gu, GemvInput::SwiGlu, M, I, Tensor(), 0.0f, w, Tensor(), x.data<float>(), true);
    return;
  }
  Tensor h = Tensor::empty({M, I}, w.dtype(), x.device());
  launch_swiglu_cast(gu.data<float>(), M, I, h.raw(), elem_of(w, "swiglu_linear_add"));
  blas_linear_into(h, w, x.data<float>(), true);
}

Tensor concat_cols(const std::vector<Tensor>& parts, int64_t total) {
  const int64_t B = parts[0].dim(0);
  Tensor y = Tensor::empty({B, total}, DType::F32, parts[0].device());
  int64_t off = 0;
  for (const Tensor& p : parts) {
    if (B > 0 && p.dim(1) > 0)
      CUDA_CHECK(cudaMemcpy2DAsync(y.data<float>() + off, total * sizeof(float), p.raw(),
                                   p.dim(1) * sizeof(float), p.dim(1) * sizeof(float), B,
                                   cudaMemcpyDeviceToDevice, cudaStreamPerThread));
    off += p.dim(1);
  }
  return y;
}

void sample_tokens(const Tensor& logits, const Tensor& params, Tensor& presence, Tensor& steps,
                   Tensor& ids) {
  const int64_t B = logits.dim(0), V = logits.dim(1);
  if (B == 0) return;
  Tensor z = Tensor::empty({sample_workspace_floats(B, V)}, DType::F32, logits.device());
  launch_sample(logits.data<float>(), B, V, params.raw(), presence.data<uint8_t>(),
                steps.data<int64_t>(), ids.data<int32_t>(), z.data<float>());
}

void advance_positions(Tensor& positions) {
  if (positions.numel() > 0) launch_advance(positions.data<int32_t>(), positions.numel());
}

}  // namespace stepaudio::cuda
