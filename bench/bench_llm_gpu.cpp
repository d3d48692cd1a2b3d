// LLM decode on the GPU against the memory-bandwidth roofline.
//
//   bench_llm_gpu --model DIR [--ctx 1024,8192] [--batch 1,8,64] [--steps 64] [--json FILE]
//                 [--no-micro] [--no-b1] [--no-variants]
//
// Measures, in this order: the device-to-device copy bandwidth (cudaMemcpy of 4 GB, bytes read +
// written, the ceiling), the bf16 GEMV of each decoder matrix shape alone (weights rotated so L2
// does not help), the checkpoint load (open + upload as bf16), prefill tok/s, then decode at each
// context and batch size through DecodeRunner (the engine's step: decode_step + device sampling,
// replayed as a CUDA graph; batch 1 also eagerly, to show what the graph saves): step time,
// aggregate tok/s, and the bytes a step must read (every matrix once + each sequence's BF16 KV
// cache) over the step time, and the peak GPU memory. Batches > 1 do not prefill (their caches
// are zero-filled to the context length: the values do not change the time). Prints
// "RESULT name value unit" lines for scripts/gpu-check.
#if STEPAUDIO_CUDA
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "backend/cuda/allocator.h"
#include "backend/cuda/check.h"
#include "backend/cuda/kernels_cuda.h"
#include "backend/cuda/ops_cuda.h"
#include "core/tensor.h"
#include "engine/decode_runner.h"
#include "engine/kv_cache.h"
#include "io/checkpoint.h"
#include "model/llm.h"
#include "ops/ops.h"
#include "report.h"

using namespace stepaudio;
using bench::median;
using bench::now_s;
using bench::result;

namespace {

struct Events {
  cudaEvent_t a, b;
  Events() {
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
  }
  ~Events() {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  void start() { CUDA_CHECK(cudaEventRecord(a)); }
  double stop_ms() {
    CUDA_CHECK(cudaEventRecord(b));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    return ms;
  }
};

double copy_bandwidth() {
  const size_t bytes = size_t{4} << 30;
  void *a = nullptr, *b = nullptr;
  CUDA_CHECK(cudaMalloc(&a, bytes));
  CUDA_CHECK(cudaMalloc(&b, bytes));
  CUDA_CHECK(cudaMemset(a, 0x3c, bytes));
  Events ev;
  std::vector<double> ms;
  for (int i = 0; i < 8; ++i) {
    ev.start();
    CUDA_CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    const double t = ev.stop_ms();
    if (i >= 2) ms.push_back(t);
  }
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes / (median(ms) * 1e-3) / 1e9;  // read + written
}

// One bf16 product shape alone, M rows of x, weights rotated over enough copies to exceed L2;
// for M > 1 both the GEMV kernel and cuBLAS (the tag says which).
void gemv_shape(const char* name, int64_t N, int64_t K, int64_t M = 1, bool gemv = true) {
  const int64_t bytes = N * K * 2;
  const int copies = static_cast<int>(std::max<int64_t>(2, (int64_t{400} << 20) / bytes + 1));
  std::vector<Tensor> ws;
  Tensor host = Tensor::empty({N, K}, DType::BF16);
  uint16_t* p = host.data<uint16_t>();
  uint64_t s = 99;
  for (int64_t i = 0; i < N * K; ++i) {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    p[i] = f32_to_bf16(static_cast<float>((s * 0x2545F4914F6CDD1Dull) >> 40) / 8388608.0f / 8.0f -
                       1.0f / 16.0f);
  }
  for (int c = 0; c < copies; ++c) ws.push_back(host.to(Device::cuda(0)));
  Tensor x = Tensor::from_vector(std::vector<float>(static_cast<size_t>(M * K), 0.5f), {M, K})
                 .to(Device::cuda(0));
  cuda::set_gemv_max_rows(gemv ? M : 0);
  for (int i = 0; i < 3; ++i) ops::linear(x, ws[static_cast<size_t>(i % copies)]);
  Events ev;
  const int reps = 40;
  ev.start();
  for (int i = 0; i < reps; ++i) ops::linear(x, ws[static_cast<size_t>(i % copies)]);
  const double us = ev.stop_ms() * 1e3 / reps;
  cuda::set_gemv_max_rows(1);
  const std::string tag =
      M == 1 ? std::string(name) : fmt::format("{}_m{}_{}", name, M, gemv ? "gemv" : "cublas");
  result(fmt::format("gemv_{}_us", tag), us, "us");
  result(fmt::format("gemv_{}_GBps", tag), bytes / (us * 1e-6) / 1e9, "GB/s");
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    out.push_back(std::stoll(s.substr(i, j - i)));
    i = j + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, json;
  std::vector<int64_t> ctxs{1024};
  std::vector<int64_t> batches{1, 8, 64};
  int steps = 64;
  // --no-micro: skip copy bandwidth and GEMV shapes; --no-b1; --no-variants: batch 1 only as a
  // graph (not also eagerly and with programmatic launch), for profiling.
  bool micro = true, b1 = true, variants = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) fail("bench_llm_gpu: {} needs a value", a);
      return argv[++i];
    };
    if (a == "--model")
      model = next();
    else if (a == "--ctx")
      ctxs = parse_list(next());
    else if (a == "--batch")
      batches = parse_list(next());
    else if (a == "--steps")
      steps = std::stoi(next());
    else if (a == "--no-micro")
      micro = false;
    else if (a == "--no-b1")
      b1 = false;
    else if (a == "--no-variants")
      variants = false;
    else if (a == "--json")
      json = next();
    else
      fail("bench_llm_gpu: unknown argument '{}'", a);
  }
  try {
    if (!cuda_available()) fail("bench_llm_gpu needs a CUDA device");
    const double bw = micro ? copy_bandwidth() : 4262.5;  // the H200's, measured 2026-11-29
    result("copy_bw_GBps", bw, "GB/s");
    if (micro) {
      gemv_shape("qo_3584x3584", 3584, 3584);
      gemv_shape("kv_512x3584", 512, 3584);
      gemv_shape("gateup_18944x3584", 18944, 3584);
      gemv_shape("down_3584x18944", 3584, 18944);
      gemv_shape("lmhead_158720x3584", 158720, 3584);
      for (int64_t m : {2, 4, 8})
        for (bool g : {true, false}) gemv_shape("gateup_37888x3584", 37888, 3584, m, g);
    }
    cuda::release_cached(0);
    if (model.empty()) return 0;

    double t0 = now_s();
    const Checkpoint ckpt = Checkpoint::open(model);
    const double t_open = now_s() - t0;
    t0 = now_s();
    const Qwen2LM lm(ckpt, Device::cuda(0), DType::BF16);
    CUDA_CHECK(cudaDeviceSynchronize());
    const double t_upload = now_s() - t0;
    result("load_open_s", t_open, "s");
    result("load_upload_s", t_upload, "s");
    const TextConfig& cfg = lm.config();
    const int64_t Hd = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size;
    const int64_t D = cfg.head_dim(), H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads;
    const double layer_bytes =
        2.0 * (2.0 * Hd * H * D + 2.0 * Hd * Hkv * D + 3.0 * Hd * I);  // bf16 matrices
    const double weight_bytes = layer_bytes * cfg.num_hidden_layers + 2.0 * V * Hd;
    result("weights_GB", weight_bytes / 1e9, "GB");

    const double kv_row_bytes = 2.0 * cfg.num_hidden_layers * Hkv * D * 2.0;  // K+V, bf16
    // Median step time of `steps` DecodeRunner steps for B sequences at context ctx.
    auto decode = [&](KVCache& cache, int64_t B, int64_t ctx, bool graph) {
      DecodeRunner run(lm, cache, B, graph);
      ops::SampleParams greedy;
      for (int64_t b = 0; b < B; ++b)
        run.set_row(b, b, ctx, 1000 + static_cast<int32_t>(b), greedy, {}, 1);
      std::vector<double> step_s;
      for (int s = 0; s < steps + 2; ++s) {
        const double a = now_s();
        run.step();
        if (s >= 2) step_s.push_back(now_s() - a);  // the eager first step and the capture
      }
      return median(step_s);
    };
    auto report = [&](const std::string& tag, double t, int64_t B, int64_t ctx) {
      const double bytes = weight_bytes + B * (ctx + steps / 2.0) * kv_row_bytes;
      const double gbps = bytes / t / 1e9;
      result(fmt::format("decode_{}_tok_per_s", tag), B / t, "tok/s");
      result(fmt::format("decode_{}_ms", tag), t * 1e3, "ms");
      result(fmt::format("decode_{}_GBps", tag), gbps, "GB/s");
      result(fmt::format("decode_{}_roofline_frac", tag), gbps / bw, "x");
    };
    for (int64_t ctx : ctxs) {
      if (b1) {
        KVCache cache = lm.make_cache(ctx + steps + 3, 1);
        // Prefill ctx rows of token embeddings (the ids do not matter to the timing).
        std::vector<int32_t> ids(static_cast<size_t>(ctx));
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919) % 151000);
        Tensor emb = lm.embed(ids);
        CUDA_CHECK(cudaDeviceSynchronize());
        t0 = now_s();
        lm.forward(emb, cache);  // host logits: synchronised
        const double t_prefill = now_s() - t0;
        result(fmt::format("prefill_{}_tok_per_s", ctx), ctx / t_prefill, "tok/s");
        report(fmt::format("{}_b1", ctx), decode(cache, 1, ctx, true), 1, ctx);
        if (variants) {
          report(fmt::format("{}_b1_eager", ctx), decode(cache, 1, ctx, false), 1, ctx);
          cuda::set_gemv_pdl(true);
          report(fmt::format("{}_b1_pdl", ctx), decode(cache, 1, ctx, true), 1, ctx);
          cuda::set_gemv_pdl(false);
        }
      }
      for (int64_t B : batches) {
        if (B == 1) continue;
        KVCache cache = lm.make_cache(ctx + steps + 3, B);
        for (int64_t l = 0; l < cache.num_layers(); ++l) {
          CUDA_CHECK(cudaMemset(cache.k(l).raw(), 0, cache.k(l).nbytes()));
          CUDA_CHECK(cudaMemset(cache.v(l).raw(), 0, cache.v(l).nbytes()));
        }
        report(fmt::format("{}_b{}", ctx, B), decode(cache, B, ctx, true), B, ctx);
        if (variants) {  // the decode chain with programmatic dependent launch (pdl.cuh)
          cuda::set_gemv_pdl(true);
          report(fmt::format("{}_b{}_pdl", ctx, B), decode(cache, B, ctx, true), B, ctx);
          cuda::set_gemv_pdl(false);
        }
      }
    }
    const auto st = cuda::allocator_stats(0);
    result("peak_gpu_alloc_GB", st.peak_in_use / 1e9, "GB");
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    result("gpu_mem_used_GB", (total_b - free_b) / 1e9, "GB");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_llm_gpu: %s\n", e.what());
    return 1;
  }
  if (!json.empty()) {
    std::ofstream out(json);
    out << "{";
    bool first = true;
    for (const auto& [k, v] : bench::results()) {
      out << (first ? "" : ", ") << "\"" << k << "\": " << v;
      first = false;
    }
    out << "}\n";
  }
  return 0;
}
#else
#include <cstdio>
int main() {
  std::fprintf(stderr, "bench_llm_gpu: this build has no CUDA backend\n");
  return 1;
}
#endif
