#include <gtest/gtest.h>

#include <cmath>

#include "core/device.h"
#include "core/tensor.h"

using namespace stepaudio;

TEST(Tensor, EmptyShapeAndBytes) {
  Tensor t = Tensor::empty({3, 4}, DType::BF16);
  EXPECT_EQ(t.numel(), 12);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.desc(), "BF16[3, 4] on cpu");
}

TEST(Tensor, SliceRowsSharesStorage) {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {3, 2});
  Tensor s = t.slice_rows(1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_EQ(s.data<float>()[0], 2.0f);
  s.data<float>()[0] = 9;
  EXPECT_EQ(t.data<float>()[2], 9.0f);
  EXPECT_THROW(t.slice_rows(2, 4), Error);
}

TEST(Tensor, ReshapeChecksCount) {
  Tensor t = Tensor::zeros({2, 3}, DType::F32);
  EXPECT_EQ(t.reshape({3, 2}).shape(), (Shape{3, 2}));
  EXPECT_THROW(t.reshape({4, 2}), Error);
}

TEST(DType, Bf16RoundTripAndRounding) {
  for (float f : {0.0f, 1.0f, -2.5f, 3.140625f, 0x1p-100f, 65280.0f}) {
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(f)), f) << f;  // all representable in bf16
  }
  // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to even -> 1.0
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, F16RoundTrip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f}) {
    EXPECT_EQ(f16_to_f32(f32_to_f16(f)), f) << f;
  }
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(1e6f))));
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 1.0f / 4096)), 1.0f);  // tie to even
}

TEST(Tensor, ToDtypeConverts) {
  Tensor t = Tensor::from_vector({1.5f, -2.0f}, {2});
  Tensor b = t.to_dtype(DType::BF16);
  EXPECT_EQ(b.dtype(), DType::BF16);
  EXPECT_EQ(b.to_dtype(DType::F32).to_f32_vector(), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(t.to_dtype(DType::I64).data<int64_t>()[1], -2);
}

TEST(Device, ParseRejectsGarbage) {
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_THROW(parse_device("tpu"), Error);
  EXPECT_THROW(parse_device("cuda:x"), Error);
}
