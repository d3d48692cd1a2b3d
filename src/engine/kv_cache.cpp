#include "engine/kv_cache.h"

#include <algorithm>

#include "ops/ops.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/ops_cuda.h"
#include "backend/cuda/runtime.h"
#endif

namespace stepaudio {

KVCache::KVCache(const TextConfig& cfg, int64_t max_len, Device device, DType dtype, int64_t slots)
    : max_len_(max_len),
      kv_heads_(cfg.num_key_value_heads),
      head_dim_(cfg.head_dim()),
      device_(device),
      dtype_(dtype) {
  if (max_len < 1) fail("KVCache: max_len must be at least 1, got {}", max_len);
  if (slots < 1) fail("KVCache: slots must be at least 1, got {}", slots);
  if (dtype != DType::F32 && dtype != DType::BF16)
    fail("KVCache: the cache type must be F32 or BF16, got {}", dtype_name(dtype));
  if (dtype == DType::BF16 && device.is_cpu())
    fail("KVCache: a BF16 cache is only supported on CUDA");
  if (cfg.num_hidden_layers < 1 || kv_heads_ < 1 || head_dim_ < 1)
    fail("KVCache: bad text config (layers {}, kv heads {}, head_dim {})", cfg.num_hidden_layers,
         kv_heads_, head_dim_);
  lengths_.assign(static_cast<size_t>(slots), 0);
  // empty(): on the CPU, pages are only touched (and so only really allocated) as positions are
  // written.
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    k_.push_back(Tensor::empty({slots, max_len, kv_heads_, head_dim_}, dtype, device));
    v_.push_back(Tensor::empty({slots, max_len, kv_heads_, head_dim_}, dtype, device));
  }
}

void KVCache::check_slot(int64_t slot, const char* what) const {
  if (slot < 0 || slot >= slots())
    fail("KVCache::{}: slot {} outside [0, {})", what, slot, slots());
}

void KVCache::truncate(int64_t len, int64_t slot) {
  check_slot(slot, "truncate");
  if (len < 0 || len > length(slot))
    fail("KVCache::truncate: length {} outside [0, {}]", len, length(slot));
  lengths_[static_cast<size_t>(slot)] = len;
}

void KVCache::set_length(int64_t len, int64_t slot) {
  check_slot(slot, "set_length");
  if (len < 0 || len > max_len_) fail("KVCache: length {} outside [0, {}]", len, max_len_);
  lengths_[static_cast<size_t>(slot)] = len;
}

Tensor KVCache::rows(const Tensor& buf, int64_t slot, int64_t len) const {
  check_slot(slot, "rows");
  if (len < 0 || len > max_len_) fail("KVCache: {} rows outside [0, {}]", len, max_len_);
  Tensor r =
      buf.slice_rows(slot, slot + 1).reshape({max_len_, kv_heads_, head_dim_}).slice_rows(0, len);
  return dtype_ == DType::F32 ? r : ops::to_f32(r);
}

Tensor KVCache::keys(int64_t layer, int64_t slot, int64_t len) const {
  return rows(k(layer), slot, len);
}
Tensor KVCache::values(int64_t layer, int64_t slot, int64_t len) const {
  return rows(v(layer), slot, len);
}

void KVCache::write(int64_t layer, int64_t pos, const Tensor& k, const Tensor& v, int64_t slot) {
  if (layer < 0 || layer >= num_layers())
    fail("KVCache::write: layer {} outside [0, {})", layer, num_layers());
  check_slot(slot, "write");
  const Shape want{k.ndim() ? k.dim(0) : 0, kv_heads_, head_dim_};
  if (k.dtype() != DType::F32 || v.dtype() != DType::F32 || k.shape() != want || v.shape() != want)
    fail("KVCache::write: expected F32 k and v [L, {}, {}], got {} and {}", kv_heads_, head_dim_,
         k.desc(), v.desc());
  const int64_t L = k.dim(0);
  if (pos < 0 || pos + L > max_len_)
    fail("KVCache: positions [{}, {}) do not fit in the cache of {} positions", pos, pos + L,
         max_len_);
  if (k.device() != device_ || v.device() != device_)
    fail("KVCache::write: k ({}) and v ({}) must be on the cache's device {}", k.desc(), v.desc(),
         device_.str());
  const size_t row = static_cast<size_t>(kv_heads_ * head_dim_) * dtype_size(dtype_);
  const size_t at = static_cast<size_t>(slot * max_len_ + pos) * row;
  auto put = [&](Tensor& dst, const Tensor& src) {
    char* d = dst.data<char>() + at;
    if (device_.is_cuda()) {
#if STEPAUDIO_CUDA
      const Tensor s = dtype_ == DType::F32 ? src : cuda::convert(src, dtype_);
      cuda::copy(d, true, s.raw(), true, L * row);
#endif
      return;
    }
    std::copy_n(static_cast<const char*>(src.raw()), L * row, d);
  };
  put(k_[static_cast<size_t>(layer)], k);
  put(v_[static_cast<size_t>(layer)], v);
}

}  // namespace stepaudio
