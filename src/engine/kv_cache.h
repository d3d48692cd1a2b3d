// The key/value cache: per decoder layer, K and V buffers [slots, max_len, kv_heads, head_dim]
// (RoPE already applied to K), F32 or BF16. A slot holds one sequence; a single-sequence cache
// has one slot. Qwen2LM::forward (prefill) writes rows length(slot)...+L-1 of one slot and then
// advances that slot's length; a forward that throws leaves it unchanged. The batched decode step
// (Qwen2LM::decode_step) reads its positions from a device tensor instead and the caller tracks
// the lengths (set_length).
#pragma once
#include <cstdint>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "io/checkpoint.h"

namespace stepaudio {

class KVCache {
 public:
  KVCache(const TextConfig& cfg, int64_t max_len, Device device = Device::cpu(),
          DType dtype = DType::F32, int64_t slots = 1);

  int64_t length(int64_t slot = 0) const { return lengths_.at(static_cast<size_t>(slot)); }
  int64_t max_len() const { return max_len_; }
  int64_t slots() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t num_layers() const { return static_cast<int64_t>(k_.size()); }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }

  // Forget everything (the memory is kept for the next sequence).
  void clear() { std::fill(lengths_.begin(), lengths_.end(), 0); }
  // Keep the first `len` positions of a slot (len <= length(slot)), e.g. to re-run a suffix.
  void truncate(int64_t len, int64_t slot = 0);

  // Layer i's full buffers [slots, max_len, kv_heads, head_dim].
  Tensor& k(int64_t layer) { return k_.at(static_cast<size_t>(layer)); }
  Tensor& v(int64_t layer) { return v_.at(static_cast<size_t>(layer)); }
  const Tensor& k(int64_t layer) const { return k_.at(static_cast<size_t>(layer)); }
  const Tensor& v(int64_t layer) const { return v_.at(static_cast<size_t>(layer)); }

  // Rows [0, len) of one slot of layer i as F32 [len, kv_heads, head_dim] (a view when the cache
  // is F32, a converted copy when it is BF16).
  Tensor keys(int64_t layer, int64_t slot, int64_t len) const;
  Tensor values(int64_t layer, int64_t slot, int64_t len) const;

  // Copies k, v ([L, kv_heads, head_dim] F32) into rows [pos, pos + L) of one slot of a layer,
  // converting to the cache type.
  void write(int64_t layer, int64_t pos, const Tensor& k, const Tensor& v, int64_t slot = 0);
  // Marks rows [0, len) of a slot as filled.
  void set_length(int64_t len, int64_t slot = 0);

 private:
  Tensor rows(const Tensor& buf, int64_t slot, int64_t len) const;
  void check_slot(int64_t slot, const char* what) const;

  int64_t max_len_ = 0, kv_heads_ = 0, head_dim_ = 0;
  Device device_;
  DType dtype_ = DType::F32;
  std::vector<int64_t> lengths_;
  std::vector<Tensor> k_, v_;
};

}  // namespace stepaudio
