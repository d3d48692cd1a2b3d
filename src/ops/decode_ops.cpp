#include "ops/decode_ops.h"

#include <algorithm>
#include <vector>

#include "backend/cpu/attention_cpu.h"
#include "backend/cpu/convert_cpu.h"
#include "backend/cpu/norm_cpu.h"
#include "backend/cpu/pointwise_cpu.h"
#include "ops/dispatch.h"
#include "ops/ops.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/decode_cuda.h"
#endif

namespace stepaudio::ops {

using namespace detail;

namespace {

// Checks a cache pair [S, max_len, Hkv, D] and the per-sequence index tensors I32 [B].
void need_cache(const Tensor& k, const Tensor& v, const Tensor& slots, const Tensor& positions,
                int64_t B, const char* op) {
  need(k.defined() && v.defined() && k.ndim() == 4 && k.shape() == v.shape() &&
           k.dtype() == v.dtype() && (k.dtype() == DType::F32 || k.dtype() == DType::BF16),
       op,
       fmt::format("the cache must be F32 or BF16 K = V [slots, max_len, kv_heads, head_dim], got "
                   "{} and {}",
                   k.defined() ? k.desc() : "nothing", v.defined() ? v.desc() : "nothing"));
  need_type(slots, DType::I32, op, "slots");
  need_type(positions, DType::I32, op, "positions");
  need(slots.shape() == Shape{B} && positions.shape() == Shape{B}, op,
       fmt::format("slots {} and positions {} must be [{}]", slots.desc(), positions.desc(), B));
}

// CPU only: every slot and position in range.
void check_rows(const Tensor& k, const Tensor& slots, const Tensor& positions, const char* op) {
  const int32_t* s = slots.data<int32_t>();
  const int32_t* p = positions.data<int32_t>();
  for (int64_t b = 0; b < slots.numel(); ++b) {
    if (s[b] < 0 || s[b] >= k.dim(0))
      fail("{}: sequence {} uses slot {}; the cache has {} slots", op, b, s[b], k.dim(0));
    if (p[b] < 0 || p[b] >= k.dim(1))
      fail("{}: sequence {} is at position {}; the cache holds {} positions", op, b, p[b],
           k.dim(1));
  }
}

}  // namespace

Tensor embedding_rows(const Tensor& table, const Tensor& ids) {
  need(table.defined() && table.ndim() == 2 &&
           (table.dtype() == DType::F32 || table.dtype() == DType::BF16 ||
            table.dtype() == DType::F16),
       "embedding_rows",
       fmt::format("table must be a float [rows, dim] tensor, got {}",
                   table.defined() ? table.desc() : "nothing"));
  need_type(ids, DType::I32, "embedding_rows", "ids");
  need(ids.ndim() == 1, "embedding_rows", fmt::format("ids must be [n], got {}", ids.desc()));
  if (on_cuda("embedding_rows", {&table, &ids})) CUDA_OP(embedding_rows(table, ids));
  const int64_t n = ids.numel();
  const int32_t* id = ids.data<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    if (id[i] < 0 || id[i] >= table.dim(0))
      fail("embedding_rows: token id {} at position {} is outside the table's {} rows", id[i], i,
           table.dim(0));
  Tensor y = Tensor::empty({n, table.dim(1)}, DType::F32);
  cpu::embedding(table.raw(), table.dtype(), table.dim(1), id, n, y.data<float>());
  return y;
}

Tensor add_rms_norm(Tensor& x, const Tensor& r, const Tensor& w, float eps) {
  need_type(x, DType::F32, "add_rms_norm", "x");
  need_type(r, DType::F32, "add_rms_norm", "r");
  need_type(w, DType::F32, "add_rms_norm", "weight");
  need(x.ndim() >= 1 && r.shape() == x.shape() && w.numel() == x.dim(-1), "add_rms_norm",
       fmt::format("x {}, r {} and weight {} do not match", x.desc(), r.desc(), w.desc()));
  if (on_cuda("add_rms_norm", {&x, &r, &w})) CUDA_OP(add_rms_norm(x, r, w, eps));
  const int64_t n = x.dim(-1), rows = n ? x.numel() / n : 0;
  float* xp = x.data<float>();
  const float* rp = r.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) xp[i] += rp[i];
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  cpu::rms_norm(xp, rows, n, w.data<float>(), eps, y.data<float>());
  return y;
}

Tensor qkv_rope_append(const Tensor& qkv, int64_t heads, int64_t kv_heads, const Tensor& positions,
                       const Tensor& slots, Tensor& k_cache, Tensor& v_cache, double theta) {
  const char* op = "qkv_rope_append";
  need_type(qkv, DType::F32, op, "qkv");
  need(qkv.ndim() == 2, op, fmt::format("qkv must be [B, (H + 2 Hkv) D], got {}", qkv.desc()));
  const int64_t B = qkv.dim(0);
  need_cache(k_cache, v_cache, slots, positions, B, op);
  const int64_t D = k_cache.dim(3);
  need(heads >= 1 && kv_heads == k_cache.dim(2) && heads % kv_heads == 0 && D % 2 == 0 &&
           qkv.dim(1) == (heads + 2 * kv_heads) * D,
       op,
       fmt::format("qkv {} does not fit {} heads and the cache's {} KV heads of {}", qkv.desc(),
                   heads, k_cache.dim(2), D));
  if (on_cuda(op, {&qkv, &positions, &slots, &k_cache, &v_cache}))
    CUDA_OP(qkv_rope_append(qkv, heads, kv_heads, positions, slots, k_cache, v_cache, theta));
  check_rows(k_cache, slots, positions, op);
  const int64_t H = heads, Hkv = kv_heads, W = (H + 2 * Hkv) * D, row = Hkv * D;
  Tensor q = Tensor::empty({B, H, D}, DType::F32);
  std::vector<float> k(static_cast<size_t>(row));
  const bool bf16 = k_cache.dtype() == DType::BF16;
  for (int64_t b = 0; b < B; ++b) {
    const float* src = qkv.data<float>() + b * W;
    const int64_t pos = positions.data<int32_t>()[b];
    const int64_t at = slots.data<int32_t>()[b] * k_cache.dim(1) + pos;
    float* qb = q.data<float>() + b * H * D;
    std::copy(src, src + H * D, qb);
    cpu::rope(qb, 1, H, D, pos, theta);
    std::copy(src + H * D, src + H * D + row, k.data());
    cpu::rope(k.data(), 1, Hkv, D, pos, theta);
    const float* v = src + H * D + row;
    if (bf16) {
      uint16_t* kc = k_cache.data<uint16_t>() + at * row;
      uint16_t* vc = v_cache.data<uint16_t>() + at * row;
      for (int64_t i = 0; i < row; ++i) {
        kc[i] = f32_to_bf16(k[static_cast<size_t>(i)]);
        vc[i] = f32_to_bf16(v[i]);
      }
    } else {
      std::copy(k.begin(), k.end(), k_cache.data<float>() + at * row);
      std::copy(v, v + row, v_cache.data<float>() + at * row);
    }
  }
  return q;
}

Tensor decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                        const Tensor& slots, const Tensor& positions, float scale) {
  const char* op = "decode_attention";
  need_type(q, DType::F32, op, "q");
  need(q.ndim() == 3, op, fmt::format("q must be [B, H, D], got {}", q.desc()));
  const int64_t B = q.dim(0), H = q.dim(1), D = q.dim(2);
  need_cache(k_cache, v_cache, slots, positions, B, op);
  const int64_t Hkv = k_cache.dim(2);
  need(D == k_cache.dim(3) && H % Hkv == 0, op,
       fmt::format("q {} does not fit the cache {}", q.desc(), k_cache.desc()));
  if (on_cuda(op, {&q, &k_cache, &v_cache, &slots, &positions}))
    CUDA_OP(decode_attention(q, k_cache, v_cache, slots, positions, scale));
  check_rows(k_cache, slots, positions, op);
  Tensor out = Tensor::empty({B, H * D}, DType::F32);
  const int64_t row = Hkv * D;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = positions.data<int32_t>()[b] + 1;
    const int64_t at = slots.data<int32_t>()[b] * k_cache.dim(1);
    // An F32 cache is read in place; a BF16 one (possible when a caller hands one in) is upcast.
    std::vector<float> kbuf, vbuf;
    const float* k = nullptr;
    const float* v = nullptr;
    if (k_cache.dtype() == DType::F32) {
      k = k_cache.data<float>() + at * row;
      v = v_cache.data<float>() + at * row;
    } else {
      kbuf.resize(static_cast<size_t>(len * row));
      vbuf.resize(kbuf.size());
      const size_t off = static_cast<size_t>(at * row) * dtype_size(k_cache.dtype());
      cpu::to_f32(static_cast<const char*>(k_cache.raw()) + off, k_cache.dtype(), kbuf.data(),
                  len * row);
      cpu::to_f32(static_cast<const char*>(v_cache.raw()) + off, v_cache.dtype(), vbuf.data(),
                  len * row);
      k = kbuf.data();
      v = vbuf.data();
    }
    cpu::AttentionShape s{1, 1, len, H, Hkv, D};
    cpu::attention(q.data<float>() + b * H * D, k, v, s, scale, false, 0, nullptr,
                   out.data<float>() + b * H * D);
  }
  return out;
}

Tensor swiglu(const Tensor& gu) {
  need_type(gu, DType::F32, "swiglu", "gu");
  need(gu.ndim() == 2 && gu.dim(1) % 2 == 0, "swiglu",
       fmt::format("gu must be [B, 2 I], got {}", gu.desc()));
  if (on_cuda("swiglu", {&gu})) CUDA_OP(swiglu(gu));
  const int64_t B = gu.dim(0), I = gu.dim(1) / 2;
  Tensor y = Tensor::empty({B, I}, DType::F32);
  for (int64_t b = 0; b < B; ++b)
    cpu::silu_mul(gu.data<float>() + b * 2 * I, gu.data<float>() + b * 2 * I + I,
                  y.data<float>() + b * I, I);
  return y;
}

namespace {

// w: a float [N, K] matrix for an input whose rows have K features.
void need_weight(const Tensor& w, int64_t K, const char* op) {
  need_float(w, op, "weight");
  need(w.ndim() == 2 && w.dim(1) == K, op,
       fmt::format("weight must be [out, {}], got {}", K, w.desc()));
}

// An F32 input [..., n >= 1].
void need_rows(const Tensor& t, const char* op, const char* arg) {
  need_type(t, DType::F32, op, arg);
  need(t.ndim() >= 1 && t.dim(-1) >= 1, op,
       fmt::format("{} must be [..., n >= 1], got {}", arg, t.desc()));
}

// x ([..., N]) has a's leading dims and w's output width.
void need_out(const Tensor& x, const Tensor& a, const Tensor& w, const char* op, const char* arg) {
  need_type(x, DType::F32, op, "x");
  Shape want = a.shape();
  want.back() = w.dim(0);
  need(x.shape() == want, op,
       fmt::format("x {} must be {} for {} {} and weight {}", x.desc(), shape_str(want), arg,
                   a.desc(), w.desc()));
  const auto* xb = static_cast<const char*>(x.raw());
  const auto* ab = static_cast<const char*>(a.raw());
  need(x.numel() == 0 || a.numel() == 0 || xb + x.nbytes() <= ab || ab + a.nbytes() <= xb, op,
       fmt::format("{} {} overlaps the output x {}", arg, a.desc(), x.desc()));
}

}  // namespace

Tensor rms_norm_linear(const Tensor& x, const Tensor& norm_w, float eps, const Tensor& w,
                       const Tensor& bias) {
  const char* op = "rms_norm_linear";
  need_rows(x, op, "x");
  const int64_t K = x.dim(-1);
  need_type(norm_w, DType::F32, op, "norm weight");
  need(norm_w.numel() == K, op,
       fmt::format("norm weight {} must have {} elements for x {}", norm_w.desc(), K, x.desc()));
  need_weight(w, K, op);
  if (bias.defined()) {
    need_float(bias, op, "bias");
    need(bias.ndim() == 1 && bias.dim(0) == w.dim(0), op,
         fmt::format("bias {} does not match weight {}", bias.desc(), w.desc()));
  }
  if (on_cuda(op, {&x, &norm_w, &w, &bias})) CUDA_OP(rms_norm_linear(x, norm_w, eps, w, bias));
  return linear(rms_norm(x, norm_w, eps), w, bias);
}

void linear_add_(Tensor& x, const Tensor& a, const Tensor& w) {
  const char* op = "linear_add";
  need_rows(a, op, "a");
  need_weight(w, a.dim(-1), op);
  need_out(x, a, w, op, "a");
  if (on_cuda(op, {&x, &a, &w})) CUDA_OP(linear_add_(x, a, w));
  add_(x, linear(a, w));
}

void swiglu_linear_add_(Tensor& x, const Tensor& gu, const Tensor& w) {
  const char* op = "swiglu_linear_add";
  need_rows(gu, op, "gu");
  need(gu.dim(-1) % 2 == 0, op, fmt::format("gu must be gate | up [..., 2 I], got {}", gu.desc()));
  const int64_t I = gu.dim(-1) / 2;
  need_weight(w, I, op);
  need_out(x, gu, w, op, "gu");
  if (on_cuda(op, {&x, &gu, &w})) CUDA_OP(swiglu_linear_add_(x, gu, w));
  const Tensor g2 = gu.reshape({gu.numel() / (2 * I), 2 * I});
  Shape hs = gu.shape();
  hs.back() = I;
  add_(x, linear(swiglu(g2).reshape(hs), w));
}

Tensor concat_cols(const std::vector<Tensor>& parts) {
  need(!parts.empty(), "concat_cols", "no tensors");
  int64_t B = -1, total = 0;
  for (const Tensor& p : parts) {
    need_type(p, DType::F32, "concat_cols", "part");
    need(p.ndim() == 2 && (B < 0 || p.dim(0) == B) && p.device() == parts[0].device(),
         "concat_cols", fmt::format("parts must be [B, n] on one device, got {}", p.desc()));
    B = p.dim(0);
    total += p.dim(1);
  }
  if (parts[0].device().is_cuda()) CUDA_OP(concat_cols(parts, total));
  Tensor y = Tensor::empty({B, total}, DType::F32);
  int64_t off = 0;
  for (const Tensor& p : parts) {
    for (int64_t b = 0; b < B; ++b)
      std::copy_n(p.data<float>() + b * p.dim(1), p.dim(1), y.data<float>() + b * total + off);
    off += p.dim(1);
  }
  return y;
}

void advance_positions(Tensor& positions) {
  need_type(positions, DType::I32, "advance_positions", "positions");
  if (on_cuda("advance_positions", {&positions})) CUDA_OP(advance_positions(positions));
  int32_t* p = positions.data<int32_t>();
  for (int64_t i = 0; i < positions.numel(); ++i) ++p[i];
}

}  // namespace stepaudio::ops
