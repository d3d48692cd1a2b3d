// The whole flow on CUDA (weights moved to the GPU with Flow::to) against the token2wav-a goldens
// with the recorded noise injected, within the CPU golden tests' tolerances (flow_test.cpp), and
// against the CPU reference on the same inputs; streaming against the official streaming code's
// output (data/stream_ref.safetensors) and the CPU stream.
#include <memory>

#include "../ops/gpu_util.h"
#include "flow_golden.h"
#include "ops/flow_ops.h"

namespace stepaudio {
namespace {

using flow_test::data;
using flow_test::expect_close;
using flow_test::golden;
using flow_test::golden_ids;

constexpr double kDiTTol = 5e-5;   // one DiT call (as the CPU golden test)
constexpr double kStepTol = 5e-5;  // x_steps, feat (as the CPU golden test)

const Flow& gpu_flow() {
  static std::unique_ptr<Flow> f = [] {
    auto p = std::make_unique<Flow>(data().config, data().weights.fn());
    p->to(gpu_test::kGpu);
    return p;
  }();
  return *f;
}

class T2wFlowCuda : public gpu_test::PoisonedGpu {};

TEST_F(T2wFlowCuda, WeightsLiveOnTheGpu) {
  EXPECT_TRUE(gpu_flow().device().is_cuda());
  EXPECT_TRUE(gpu_flow().estimator().device().is_cuda());
  EXPECT_TRUE(gpu_flow().encoder().device().is_cuda());
}

TEST_F(T2wFlowCuda, DiTCallMatchesGoldens) {
  FlowTrace trace;
  const Tensor out =
      gpu_flow().estimator().forward(golden("dit/x"), golden("dit/mu"), golden("dit/t"),
                                     golden("dit/spks"), golden("dit/cond"), &trace);
  EXPECT_TRUE(out.device().is_cuda());
  for (const auto& [name, t] : trace) expect_close(t, golden(name), kDiTTol, name);
  expect_close(out, golden("dit/standalone_out"), kDiTTol, "dit/standalone_out");
}

TEST_F(T2wFlowCuda, InferenceWithInjectedNoise) {
  const auto prompt = golden_ids("flow/prompt_token"), codes = golden_ids("flow/token");
  FlowTrace trace;
  const Tensor feat =
      gpu_flow().inference(prompt, codes, golden("flow/prompt_feat"), golden("flow/embedding"), 10,
                           golden("flow/noise"), &trace);
  EXPECT_TRUE(feat.device().is_cuda());
  expect_close(feat, golden("flow/feat"), kStepTol, "feat vs golden (GPU)");
  for (const auto& [name, t] : trace)
    if (name == "flow/mu" || name == "flow/x_steps" || name == "flow/encoder_out")
      expect_close(t, golden(name), kStepTol, name + " (GPU)");
  const Tensor cpu = data().flow->inference(prompt, codes, golden("flow/prompt_feat"),
                                            golden("flow/embedding"), 10, golden("flow/noise"));
  expect_close(feat, cpu, 2e-5, "feat vs CPU");
  // The flow's own frame-indexed noise (drawn on the CPU, uploaded): same on both devices.
  expect_close(
      gpu_flow().inference(prompt, codes, golden("flow/prompt_feat"), golden("flow/embedding"), 10),
      data().flow->inference(prompt, codes, golden("flow/prompt_feat"), golden("flow/embedding"),
                             10),
      2e-5, "feat vs CPU, drawn noise");
}

// Chunks of `chunk` + 3 look-ahead tokens after the prompt, as tests/flow/flow_stream_test.cpp.
Tensor stream(const Flow& f, const std::vector<int32_t>& prompt, const std::vector<int32_t>& codes,
              int64_t chunk, const Tensor& noise) {
  const int64_t L = f.config().encoder.pre_lookahead_len;
  std::vector<int32_t> setup = prompt;
  setup.insert(setup.end(), prompt.begin(), prompt.begin() + L);
  FlowStreamState st =
      f.setup_cache(setup, golden("flow/prompt_feat"), golden("flow/embedding"), 10, noise);
  std::vector<Tensor> mels;
  size_t at = 0;
  while (true) {
    const bool last = at + static_cast<size_t>(chunk + L) >= codes.size();
    const size_t end = last ? codes.size() : at + static_cast<size_t>(chunk + L);
    std::vector<int32_t> part(codes.begin() + static_cast<long>(at),
                              codes.begin() + static_cast<long>(end));
    mels.push_back(f.inference_chunk(part, last, st));
    if (last) break;
    at += static_cast<size_t>(chunk);
  }
  return ops::concat_axis(mels, 1);
}

TEST_F(T2wFlowCuda, StreamMatchesOfficialAndCpu) {
  const SafetensorsFile ref = SafetensorsFile::open(
      (testing_paths::source() / "tests/flow/data/stream_ref.safetensors").string());
  const auto prompt = golden_ids("flow/prompt_token"), codes = golden_ids("flow/token");
  const Tensor noise = golden("flow/noise");
  for (int64_t chunk : {25, 4}) {
    const Tensor g = stream(gpu_flow(), prompt, codes, chunk, noise);
    EXPECT_TRUE(g.device().is_cuda());
    expect_close(g, ref.get(fmt::format("chunk{}", chunk)), 5e-5,
                 fmt::format("GPU stream, chunks of {}+3", chunk));
    expect_close(g, stream(*data().flow, prompt, codes, chunk, noise), 2e-5,
                 fmt::format("GPU vs CPU stream, chunks of {}+3", chunk));
  }
}

}  // namespace
}  // namespace stepaudio
