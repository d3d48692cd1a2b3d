#include "ops/sample_ops.h"

#include <cmath>
#include <cstring>

#include "backend/cpu/sample_cpu.h"
#include "ops/sample_rng.h"
#if STEPAUDIO_CUDA
#include "backend/cuda/decode_cuda.h"
#endif

namespace stepaudio::ops {

Tensor make_sample_params(const std::vector<SampleParams>& params, Device device) {
  for (size_t i = 0; i < params.size(); ++i) {
    const SampleParams& p = params[i];
    if (!std::isfinite(p.temperature) || p.temperature < 0 || !std::isfinite(p.top_p) ||
        p.top_p <= 0 || p.top_p > 1 || !std::isfinite(p.repetition_penalty) ||
        p.repetition_penalty <= 0 || p.top_k < 0)
      fail(
          "sampling parameters of row {}: temperature {} (>= 0), top_p {} (in (0, 1]), "
          "repetition_penalty {} (> 0), top_k {} (>= 0)",
          i, p.temperature, p.top_p, p.repetition_penalty, p.top_k);
  }
  Tensor t = Tensor::empty({static_cast<int64_t>(params.size()), 32}, DType::U8);
  if (!params.empty()) std::memcpy(t.raw(), params.data(), params.size() * sizeof(SampleParams));
  return device.is_cpu() ? t : t.to(device);
}

double sample_uniform(uint64_t seed, int64_t step, int64_t i) {
  return hash_uniform(seed, step, i);
}

int32_t sample_row_host(std::span<const float> logits, const SampleParams& params,
                        std::span<uint8_t> presence, int64_t step) {
  if (presence.size() != logits.size())
    fail("sample_row_host: presence has {} entries for {} logits", presence.size(), logits.size());
  if (logits.empty()) fail("sample_row_host: no logits");
  return cpu::sample_row(logits.data(), static_cast<int64_t>(logits.size()), params,
                         presence.data(), step);
}

void sample_tokens(const Tensor& logits, const Tensor& params, Tensor& presence, Tensor& steps,
                   Tensor& ids) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) fail("sample_tokens: {}", what);
  };
  need(logits.defined() && logits.dtype() == DType::F32 && logits.ndim() == 2,
       fmt::format("logits must be F32 [B, V], got {}",
                   logits.defined() ? logits.desc() : "nothing"));
  const int64_t B = logits.dim(0), V = logits.dim(1);
  need(params.defined() && params.dtype() == DType::U8 && params.shape() == Shape{B, 32},
       fmt::format("params must be U8 [{}, 32]", B));
  need(presence.defined() && presence.dtype() == DType::U8 && presence.shape() == Shape{B, V},
       fmt::format("presence must be U8 [{}, {}]", B, V));
  need(steps.defined() && steps.dtype() == DType::I64 && steps.shape() == Shape{B},
       fmt::format("steps must be I64 [{}]", B));
  need(ids.defined() && ids.dtype() == DType::I32 && ids.shape() == Shape{B},
       fmt::format("ids must be I32 [{}]", B));
  const Device d = logits.device();
  need(params.device() == d && presence.device() == d && steps.device() == d && ids.device() == d,
       "all tensors must be on one device");
  if (d.is_cuda()) {
#if STEPAUDIO_CUDA
    cuda::sample_tokens(logits, params, presence, steps, ids);
    return;
#else
    fail("sample_tokens: this build has no CUDA backend");
#endif
  }
  const auto* p = reinterpret_cast<const SampleParams*>(params.raw());
  for (int64_t b = 0; b < B; ++b) {
    ids.data<int32_t>()[b] =
        cpu::sample_row(logits.data<float>() + b * V, V, p[b], presence.data<uint8_t>() + b * V,
                        steps.data<int64_t>()[b]);
    steps.data<int64_t>()[b] += 1;
  }
}

}  // namespace stepaudio::ops
