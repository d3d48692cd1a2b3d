// Decoding steps for a fixed batch of sequences: one call = the next token of every row. The
// per-row state (cache slot, position, last id, sampling settings, ids seen so far, the sampler's
// step counter) lives in device tensors; a step is Qwen2LM::decode_step + ops::sample_tokens +
// ops::advance_positions, and only the chosen ids come back to the host. On CUDA the step is
// captured as a CUDA graph on its second call (the first runs eagerly and warms the allocator)
// and replayed from then on: one launch per token instead of ~15 per layer.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "engine/kv_cache.h"
#include "ops/sample_params.h"

namespace stepaudio {

class Qwen2LM;

class DecodeRunner {
 public:
  // `cache` must outlive the runner; batch <= cache.slots(). use_graph is ignored off CUDA.
  DecodeRunner(const Qwen2LM& lm, KVCache& cache, int64_t batch, bool use_graph = true);
  ~DecodeRunner();
  DecodeRunner(const DecodeRunner&) = delete;
  DecodeRunner& operator=(const DecodeRunner&) = delete;

  int64_t batch() const { return batch_; }
  bool graphed() const;

  // Row `row` continues the sequence in cache slot `slot`, whose first `position` rows are
  // filled; `last_id` is its newest token (not yet in the cache); `seen` every id so far (for the
  // repetition penalty); `step` the sampler's counter (the number of ids it drew for the row).
  void set_row(int64_t row, int64_t slot, int64_t position, int32_t last_id,
               const ops::SampleParams& params, std::span<const int32_t> seen, int64_t step);

  // Appends every row's last id to the cache and draws the next: returns the new ids (host).
  const std::vector<int32_t>& step();

  // The logits of the last step, F32 [batch, vocab] on the model's device.
  const Tensor& logits() const { return logits_; }
  // Host positions (the cache lengths after the last step).
  int64_t position(int64_t row) const { return host_pos_.at(static_cast<size_t>(row)); }

 private:
  void run_step();
  void upload();

  const Qwen2LM& lm_;
  KVCache& cache_;
  int64_t batch_;
  bool use_graph_;
  Device device_;
  int64_t steps_run_ = 0;
  bool dirty_ = true;  // host state changed since the last upload
  std::vector<int32_t> host_ids_, host_slots_, host_pos_;
  std::vector<int64_t> host_steps_;
  std::vector<ops::SampleParams> host_params_;
  std::vector<uint8_t> host_presence_;
  Tensor ids_, slots_, positions_, params_, presence_, steps_, logits_;
  struct Graph;
  std::unique_ptr<Graph> graph_;
};

}  // namespace stepaudio
