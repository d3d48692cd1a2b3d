#include "engine/kv_cache.h"

#include <cstring>

#if STEPAUDIO_CUDA
#include "backend/cuda/runtime.h"
#endif

namespace stepaudio {

KVCache::KVCache(const TextConfig& cfg, int64_t max_len, Device device)
    : max_len_(max_len),
      kv_heads_(cfg.num_key_value_heads),
      head_dim_(cfg.head_dim()),
      device_(device) {
  if (max_len < 1) fail("KVCache: max_len must be at least 1, got {}", max_len);
  if (cfg.num_hidden_layers < 1 || kv_heads_ < 1 || head_dim_ < 1)
    fail("KVCache: bad text config (layers {}, kv heads {}, head_dim {})", cfg.num_hidden_layers,
         kv_heads_, head_dim_);
  // empty(): pages are only touched (and so only really allocated) as positions are written.
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    k_.push_back(Tensor::empty({max_len, kv_heads_, head_dim_}, DType::F32, device));
    v_.push_back(Tensor::empty({max_len, kv_heads_, head_dim_}, DType::F32, device));
  }
}

void KVCache::truncate(int64_t len) {
  if (len < 0 || len > length_) fail("KVCache::truncate: length {} outside [0, {}]", len, length_);
  length_ = len;
}

void KVCache::set_length(int64_t len) {
  if (len < 0 || len > max_len_) fail("KVCache: length {} outside [0, {}]", len, max_len_);
  length_ = len;
}

void KVCache::write(int64_t layer, int64_t pos, const Tensor& k, const Tensor& v) {
  if (layer < 0 || layer >= num_layers())
    fail("KVCache::write: layer {} outside [0, {})", layer, num_layers());
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
  const size_t row = static_cast<size_t>(kv_heads_ * head_dim_) * sizeof(float);
  if (device_.is_cuda()) {
#if STEPAUDIO_CUDA
    cuda::copy(k_[static_cast<size_t>(layer)].data<char>() + pos * row, true, k.raw(), true,
               L * row);
    cuda::copy(v_[static_cast<size_t>(layer)].data<char>() + pos * row, true, v.raw(), true,
               L * row);
#endif
    return;
  }
  std::memcpy(k_[static_cast<size_t>(layer)].data<char>() + pos * row, k.raw(), L * row);
  std::memcpy(v_[static_cast<size_t>(layer)].data<char>() + pos * row, v.raw(), L * row);
}

}  // namespace stepaudio
