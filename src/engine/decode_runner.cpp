#include "engine/decode_runner.h"

#include <cstdlib>
#include <cstring>

#include "model/llm.h"
#include "ops/decode_ops.h"
#include "ops/sample_ops.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/graph.h"
#endif

namespace stepaudio {

struct DecodeRunner::Graph {
#if STEPAUDIO_CUDA
  explicit Graph(int device) : g(device) {}
  cuda::Graph g;
#endif
};

namespace {
// STEPAUDIO_NO_CUDA_GRAPH=1 runs every step eagerly (for profiling and comparisons).
bool graphs_disabled() {
  const char* e = std::getenv("STEPAUDIO_NO_CUDA_GRAPH");
  return e && *e && std::strcmp(e, "0") != 0;
}

Tensor host_tensor(const void* data, Shape shape, DType dt) {
  Tensor t = Tensor::empty(std::move(shape), dt);
  std::memcpy(t.raw(), data, t.nbytes());
  return t;
}
}  // namespace

DecodeRunner::DecodeRunner(const Qwen2LM& lm, KVCache& cache, int64_t batch, bool use_graph)
    : lm_(lm),
      cache_(cache),
      batch_(batch),
      use_graph_(use_graph && lm.device().is_cuda() && !graphs_disabled()),
      device_(lm.device()) {
  if (batch < 1 || batch > cache.slots())
    fail("DecodeRunner: batch {} must be in [1, {}] (the cache's slots)", batch, cache.slots());
  const int64_t V = lm.config().vocab_size;
  host_ids_.assign(static_cast<size_t>(batch), 0);
  host_slots_.resize(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) host_slots_[static_cast<size_t>(b)] = static_cast<int32_t>(b);
  host_pos_.assign(static_cast<size_t>(batch), 0);
  host_steps_.assign(static_cast<size_t>(batch), 0);
  host_params_.assign(static_cast<size_t>(batch), ops::SampleParams{});
  host_presence_.assign(static_cast<size_t>(batch * V), 0);
  // Fixed device buffers: a captured graph reads and writes exactly these every replay.
  ids_ = Tensor::zeros({batch}, DType::I32).to(device_);
  slots_ = Tensor::zeros({batch}, DType::I32).to(device_);
  positions_ = Tensor::zeros({batch}, DType::I32).to(device_);
  steps_ = Tensor::zeros({batch}, DType::I64).to(device_);
  presence_ = Tensor::zeros({batch, V}, DType::U8).to(device_);
  params_ = ops::make_sample_params(host_params_, device_);
}

DecodeRunner::~DecodeRunner() = default;

bool DecodeRunner::graphed() const { return graph_ != nullptr; }

void DecodeRunner::set_row(int64_t row, int64_t slot, int64_t position, int32_t last_id,
                           const ops::SampleParams& params, std::span<const int32_t> seen,
                           int64_t step) {
  if (row < 0 || row >= batch_) fail("DecodeRunner: row {} outside [0, {})", row, batch_);
  if (slot < 0 || slot >= cache_.slots())
    fail("DecodeRunner: slot {} outside the cache's {} slots", slot, cache_.slots());
  if (position < 0 || position >= cache_.max_len())
    fail("DecodeRunner: position {} leaves no room in the cache of {} positions", position,
         cache_.max_len());
  const int64_t V = lm_.config().vocab_size;
  if (last_id < 0 || last_id >= V) fail("DecodeRunner: id {} outside the vocabulary", last_id);
  const auto r = static_cast<size_t>(row);
  host_slots_[r] = static_cast<int32_t>(slot);
  host_pos_[r] = static_cast<int32_t>(position);
  host_ids_[r] = last_id;
  host_steps_[r] = step;
  host_params_[r] = params;
  uint8_t* pres = host_presence_.data() + r * static_cast<size_t>(V);
  std::memset(pres, 0, static_cast<size_t>(V));
  for (int32_t id : seen)
    if (id >= 0 && id < V) pres[id] = 1;
  dirty_ = true;
}

// Device tensors are refilled in place (their addresses are baked into the graph).
void DecodeRunner::upload() {
  const int64_t V = lm_.config().vocab_size, B = batch_;
  copy_into(ids_, host_tensor(host_ids_.data(), {B}, DType::I32));
  copy_into(slots_, host_tensor(host_slots_.data(), {B}, DType::I32));
  copy_into(positions_, host_tensor(host_pos_.data(), {B}, DType::I32));
  copy_into(steps_, host_tensor(host_steps_.data(), {B}, DType::I64));
  copy_into(presence_, host_tensor(host_presence_.data(), {B, V}, DType::U8));
  copy_into(params_, ops::make_sample_params(host_params_, Device::cpu()));
  dirty_ = false;
}

void DecodeRunner::run_step() {
  logits_ = lm_.decode_step(ids_, positions_, slots_, cache_);
  ops::sample_tokens(logits_, params_, presence_, steps_, ids_);
  ops::advance_positions(positions_);
}

const std::vector<int32_t>& DecodeRunner::step() {
  for (int64_t b = 0; b < batch_; ++b)
    if (host_pos_[static_cast<size_t>(b)] >= cache_.max_len())
      fail("DecodeRunner: row {} is at position {}; the cache holds {}", b,
           host_pos_[static_cast<size_t>(b)], cache_.max_len());
  if (dirty_) upload();
  if (!use_graph_ || steps_run_ == 0) {
    run_step();  // eagerly: off CUDA, and once first to warm the allocator's cache
  } else {
#if STEPAUDIO_CUDA
    if (!graph_) {
      graph_ = std::make_unique<Graph>(device_.index);
      graph_->g.capture([&] { run_step(); });
    }
    graph_->g.replay();
#endif
  }
  ++steps_run_;
  const Tensor ids = device_.is_cpu() ? ids_ : ids_.to(Device::cpu());
  std::memcpy(host_ids_.data(), ids.raw(), host_ids_.size() * sizeof(int32_t));
  for (int64_t b = 0; b < batch_; ++b) {
    const auto r = static_cast<size_t>(b);
    ++host_pos_[r];
    ++host_steps_[r];
    host_presence_[r * static_cast<size_t>(lm_.config().vocab_size) +
                   static_cast<size_t>(host_ids_[r])] = 1;
    cache_.set_length(host_pos_[r], host_slots_[r]);
  }
  return host_ids_;
}

}  // namespace stepaudio
