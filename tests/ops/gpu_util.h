// Helpers of the CUDA-vs-CPU op tests: seeded random tensors, relative L2 with a NaN check (GPU
// blocks are NaN-poisoned when handed out, so an unwritten element fails), a fixture that turns
// the poisoning on.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/cuda/allocator.h"
#include "core/device.h"
#include "core/tensor.h"

namespace stepaudio::gpu_test {

inline const Device kGpu = Device::cuda(0);

// xorshift64*: fast enough for tensors of hundreds of millions of elements.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float uniform() {  // [-1, 1)
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<float>((s * 0x2545F4914F6CDD1Dull) >> 40) / 8388608.0f - 1.0f;
  }
};

inline uint64_t next_seed() {
  static uint64_t n = 54321;
  return ++n;
}

inline Tensor rand_f32(Shape shape, float scale = 1.0f) {
  Tensor t = Tensor::empty(std::move(shape), DType::F32);
  Rng r(next_seed());
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = scale * r.uniform();
  return t;
}

inline Tensor rand_bf16(Shape shape, float scale) {
  Tensor t = Tensor::empty(std::move(shape), DType::BF16);
  Rng r(next_seed());
  uint16_t* p = t.data<uint16_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = f32_to_bf16(scale * r.uniform());
  return t;
}

inline Tensor gpu(const Tensor& t) { return t.to(kGpu); }

// ||a - b|| / ||b||, with a (the GPU result) required to be finite everywhere.
inline double rel_l2(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape()) << a.desc() << " vs " << b.desc();
  const std::vector<float> x = a.to_f32_vector(), y = b.to_f32_vector();
  if (x.size() != y.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      ADD_FAILURE() << "non-finite GPU output at element " << i << " of " << a.desc();
      return INFINITY;
    }
    num += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    den += static_cast<double>(y[i]) * y[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1));
}

class PoisonedGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cuda_available()) << "test_gpu needs a CUDA device";
    cuda::set_poison_allocations(true);
  }
  void TearDown() override { cuda::set_poison_allocations(false); }
};

}  // namespace stepaudio::gpu_test
