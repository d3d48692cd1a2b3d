// The key/value cache of one sequence: per decoder layer, K and V rows [max_len, kv_heads,
// head_dim] (F32, RoPE already applied to K). Qwen2LM::forward writes rows length()...length()+L-1
// of every layer and then advances length(); a forward that throws leaves length() unchanged.
#pragma once
#include <cstdint>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "io/checkpoint.h"

namespace stepaudio {

class KVCache {
 public:
  KVCache(const TextConfig& cfg, int64_t max_len, Device device = Device::cpu());

  int64_t length() const { return length_; }
  int64_t max_len() const { return max_len_; }
  int64_t num_layers() const { return static_cast<int64_t>(k_.size()); }
  Device device() const { return device_; }

  // Forget everything (the memory is kept for the next sequence).
  void clear() { length_ = 0; }
  // Keep the first `len` positions (len <= length()), e.g. to re-run a suffix.
  void truncate(int64_t len);

  // Layer i's full buffers [max_len, kv_heads, head_dim].
  const Tensor& k(int64_t layer) const { return k_.at(static_cast<size_t>(layer)); }
  const Tensor& v(int64_t layer) const { return v_.at(static_cast<size_t>(layer)); }

  // Copies k, v ([L, kv_heads, head_dim] F32) into rows [pos, pos + L) of layer `layer`.
  void write(int64_t layer, int64_t pos, const Tensor& k, const Tensor& v);
  // Marks rows [0, len) as filled (called once all layers have been written).
  void set_length(int64_t len);

 private:
  int64_t max_len_ = 0, kv_heads_ = 0, head_dim_ = 0, length_ = 0;
  Device device_;
  std::vector<Tensor> k_, v_;
};

}  // namespace stepaudio
