#include "model/adaptor.h"

#include "ops/ops.h"

namespace stepaudio {

namespace {
constexpr int64_t kPadding = 1;  // hard-coded in the official Adaptor
}

Adaptor::Adaptor(const AudioEncoderConfig& cfg, const WeightFn& get) : cfg_(cfg) {
  if (cfg.adapter_stride < 1 || cfg.kernel_size < 1)
    fail("adaptor: kernel_size {} / adapter_stride {} not supported (expected >= 1)",
         cfg.kernel_size, cfg.adapter_stride);
  const int64_t C = cfg.n_audio_state, H = cfg.adapter_hidden, D = cfg.llm_dim;
  conv_w_ = expect_weight(get, "adapter.conv.weight", {C, C, cfg.kernel_size});
  conv_b_ = expect_vector_f32(get, "adapter.conv.bias", C);
  w1_ = expect_weight(get, "adapter.linear1.weight", {H, C});
  b1_ = expect_vector_f32(get, "adapter.linear1.bias", H);
  w2_ = expect_weight(get, "adapter.linear2.weight", {D, H});
  b2_ = expect_vector_f32(get, "adapter.linear2.bias", D);
}

int64_t Adaptor::out_len(int64_t t) const {
  const int64_t span = t + 2 * kPadding - cfg_.kernel_size;
  return span < 0 ? 0 : span / cfg_.adapter_stride + 1;
}

void Adaptor::upload(Device device, DType matrices) {
  for (Tensor* t : {&conv_w_, &w1_, &w2_})
    *t = (t->dtype() == matrices ? *t : t->to_dtype(matrices)).to(device);
  for (Tensor* t : {&conv_b_, &b1_, &b2_}) *t = t->to(device);
}

Tensor Adaptor::forward(const Tensor& x) const {
  Tensor h = ops::conv1d(ops::transpose_last2(x), conv_w_, conv_b_, cfg_.adapter_stride, kPadding);
  ops::gelu_(h);
  h = ops::transpose_last2(h);  // [B, T4, n_state]
  h = ops::linear(h, w1_, b1_);
  ops::relu_(h);
  return ops::linear(h, w2_, b2_);
}

}  // namespace stepaudio
