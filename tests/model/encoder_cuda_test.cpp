// The audio encoder + adaptor on CUDA against the official tiny-a goldens (golden README §7),
// fed the golden mels and batched as the official code batches them: with F32 weights (fp32
// compute) within the CPU tolerance, with BF16 weights within bf16 bounds. GPU machine only.
#include <gtest/gtest.h>

#include "backend/cuda/allocator.h"
#include "core/device.h"
#include "model/encoder.h"
#include "tiny_model.h"

namespace stepaudio {
namespace {

using namespace testing_model;

void check_all_cases(DType weights, double tol) {
  ASSERT_TRUE(cuda_available());
  cuda::set_poison_allocations(true);  // unwritten outputs show up as NaN
  const AudioEncoder enc(tiny_checkpoint(), Device::cuda(0), weights);
  int checked = 0;
  for (const auto& [c, info] : manifest().at("cases").items()) {
    if (!info.contains("num_chunks")) continue;
    SCOPED_TRACE(c);
    const int64_t n_chunks = info["num_chunks"].get<int64_t>();
    std::vector<Tensor> mels;
    for (int64_t k = 0; k < n_chunks; ++k)
      mels.push_back(golden(fmt::format("{}/chunk{}/mel", c, k)).to(Device::cuda(0)));
    EncoderTrace trace;
    const std::vector<Tensor> rows = enc.encode(mels, &trace);
    ASSERT_EQ(rows.size(), static_cast<size_t>(n_chunks));
    for (int64_t k = 0; k < n_chunks; ++k) {
      const std::string p = fmt::format("{}/chunk{}/", c, k);
      const Tensor& out = rows[static_cast<size_t>(k)];
      EXPECT_TRUE(out.device().is_cpu());
      EXPECT_LE(max_abs_diff(trace.encoder_out[static_cast<size_t>(k)], golden(p + "encoder_out")),
                tol);
      EXPECT_LE(max_abs_diff(out, golden(p + "adaptor_out")), tol);
      ++checked;
    }
  }
  cuda::set_poison_allocations(false);
  EXPECT_GE(checked, 6);
}

TEST(EncoderCudaGolden, Fp32ComputeMeetsCpuTolerance) { check_all_cases(DType::F32, 1e-4); }

// |encoder_out| reaches about 4.3: bf16 weights and activations give errors of a few 1e-2.
TEST(EncoderCudaGolden, Bf16ComputeWithinBf16Bounds) { check_all_cases(DType::BF16, 0.1); }

}  // namespace
}  // namespace stepaudio
