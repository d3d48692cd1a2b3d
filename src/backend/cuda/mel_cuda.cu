#include "backend/cuda/mel_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>

#include <algorithm>
#include <cstring>
#include <list>
#include <mutex>
#include <utility>

#include "audio/mel.h"
#include "audio/mel_filters.h"
#include "backend/cpu/mel_cpu.h"
#include "backend/cuda/check.h"

namespace stepaudio::cuda {

namespace {
using mel::kBins;
using mel::kCenterPad;
using mel::kHop;
using mel::kMels;
using mel::kNFft;
using mel::kTailPad;

// One clip of the batch, as the kernels see it.
struct ClipDesc {
  long long sample_off;  // into the concatenated samples
  int n;                 // samples
  int frame_off;         // first frame in the batch's frame / mel-column space
  int frames;            // T
  int pad_;
  float* out;  // [128, T] row-major
};
static_assert(sizeof(ClipDesc) == 32);

__constant__ float c_window[kNFft];

// Index of the clip that owns batch frame f (clips are in frame order).
__device__ __forceinline__ int clip_of_frame(const ClipDesc* clips, int nclips, int f) {
  int lo = 0, hi = nclips - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (clips[mid].frame_off <= f)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// One block per frame: gathers 400 samples of the zero- and reflect-padded clip, times the window.
__global__ void frame_kernel(const float* __restrict__ samples, const ClipDesc* __restrict__ clips,
                             int nclips, float* __restrict__ frames,
                             unsigned* __restrict__ maxbits) {
  const int f = blockIdx.x;
  if (f < nclips && threadIdx.x == 0) maxbits[f] = 0u;  // reset the per-clip max (mel >= 0)
  const ClipDesc c = clips[clip_of_frame(clips, nclips, f)];
  const long long len = static_cast<long long>(c.n) + kTailPad;
  const long long j0 = static_cast<long long>(f - c.frame_off) * kHop - kCenterPad;
  const float* x = samples + c.sample_off;
  float* out = frames + static_cast<long long>(f) * kNFft;
  for (int i = threadIdx.x; i < kNFft; i += blockDim.x) {
    long long j = j0 + i;
    if (j < 0) j = -j;
    if (j >= len) j = 2 * (len - 1) - j;
    out[i] = j < c.n ? x[j] * c_window[i] : 0.0f;
  }
}

__global__ void power_kernel(const cufftComplex* __restrict__ spec, float* __restrict__ power,
                             long long n) {
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    const cufftComplex v = spec[i];
    power[i] = v.x * v.x + v.y * v.y;
  }
}

constexpr int kTileT = 32, kRowsPerPass = 8;  // block = 32 frames x 8 mel rows

// Per-clip maximum of the mel energies. Energies are >= 0, so their float bits order like
// unsigned integers and atomicMax on the bits is a float max.
__global__ void max_kernel(const float* __restrict__ mel, int total_frames,
                           const ClipDesc* __restrict__ clips, unsigned* __restrict__ maxbits) {
  const ClipDesc c = clips[blockIdx.y];
  const int t = blockIdx.x * kTileT + threadIdx.x;
  float m = 0.0f;
  if (t < c.frames)
    for (int r = threadIdx.y; r < kMels; r += kRowsPerPass)
      m = fmaxf(m, mel[static_cast<long long>(r) * total_frames + c.frame_off + t]);
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  __shared__ float warp_max[kRowsPerPass];
  if (threadIdx.x == 0) warp_max[threadIdx.y] = m;
  __syncthreads();
  if (threadIdx.y == 0 && threadIdx.x == 0) {
    for (int w = 1; w < kRowsPerPass; ++w) m = fmaxf(m, warp_max[w]);
    atomicMax(&maxbits[blockIdx.y], __float_as_uint(m));
  }
}

__device__ __forceinline__ float log10_floor(float x) {
  // log10(max(x, 1e-10)); the floor is exactly -10 so digital silence gives exactly -1.5.
  return x <= 1e-10f ? -10.0f : log10f(x);
}

// log10, max-8 floor, (x+4)/4, scattered from the batch's [128, F] into each clip's [128, T].
__global__ void normalize_kernel(const float* __restrict__ mel, int total_frames,
                                 const ClipDesc* __restrict__ clips,
                                 const unsigned* __restrict__ maxbits) {
  const ClipDesc c = clips[blockIdx.y];
  const int t = blockIdx.x * kTileT + threadIdx.x;
  if (t >= c.frames) return;
  const float lo = log10_floor(__uint_as_float(maxbits[blockIdx.y])) - 8.0f;
  for (int r = threadIdx.y; r < kMels; r += kRowsPerPass) {
    const float v = log10_floor(mel[static_cast<long long>(r) * total_frames + c.frame_off + t]);
    c.out[static_cast<long long>(r) * c.frames + t] = (fmaxf(v, lo) + 4.0f) / 4.0f;
  }
}

int div_up(long long a, int b) { return static_cast<int>((a + b - 1) / b); }

// Frames are padded up to this multiple so that batches of similar size share one cuFFT plan.
constexpr int kPlanQuantum = 64;
constexpr size_t kMaxPlans = 16;
// The host gather into pinned memory (threaded) is split into pieces so that the DMA of one
// piece overlaps the gather of the next (floats: 256 KiB .. 16 MiB).
constexpr size_t kStagePieceMin = size_t{1} << 16;
constexpr size_t kStagePieceMax = size_t{1} << 22;
// Output blocks handed back by dropped result tensors, kept for the next call.
constexpr size_t kMaxSpareBlocks = 8;
}  // namespace

struct MelCuda::Impl {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;
  cublasHandle_t blas = nullptr;
  cudaEvent_t staged = nullptr;  // the last H2D copy out of the pinned buffer finished
  cudaEvent_t entry = nullptr, done = nullptr;  // ordering against the ops' default stream
  float* d_filters = nullptr;                   // [128, 201]
  // Grown on demand, never shrunk.
  char* h_stage = nullptr;  // pinned: clip table, then samples
  size_t h_stage_bytes = 0;
  char* d_input = nullptr;  // same layout on the device
  size_t d_input_bytes = 0;
  float* d_frames = nullptr;       // [F_pad, 400], reused as the mel [128, F] (fits: 400 > 128)
  cufftComplex* d_spec = nullptr;  // [F_pad, 201]
  float* d_power = nullptr;        // [F, 201]
  unsigned* d_max = nullptr;       // per clip
  long long frame_cap = 0;
  int clip_cap = 0;
  std::list<std::pair<int, cufftHandle>> plans;  // most recently used first
  // Result blocks whose tensors are gone. Reusing them skips the pool's alloc/free calls; their
  // last users were ordered on `stream`, as every later use is.
  std::mutex spare_mu;
  std::vector<std::pair<void*, size_t>> spare;

  void* take_block(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(spare_mu);
      for (size_t i = 0; i < spare.size(); ++i)
        if (spare[i].second >= bytes && spare[i].second <= 2 * bytes) {
          void* p = spare[i].first;
          spare.erase(spare.begin() + static_cast<long>(i));
          return p;
        }
    }
    void* p = nullptr;
    CUDA_CHECK(cudaMallocFromPoolAsync(&p, bytes, pool, stream));
    return p;
  }

  void give_block(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(spare_mu);
      if (spare.size() < kMaxSpareBlocks) {
        spare.emplace_back(p, bytes);
        return;
      }
    }
    cudaSetDevice(device);
    cudaFreeAsync(p, stream);
  }

  ~Impl() {
    for (auto& [p, bytes] : spare) cudaFreeAsync(p, stream);
    if (stream) cudaStreamSynchronize(stream);
    for (auto& p : plans) cufftDestroy(p.second);
    cudaFree(d_filters);
    cudaFree(d_input);
    cudaFree(d_frames);
    cudaFree(d_spec);
    cudaFree(d_power);
    cudaFree(d_max);
    if (h_stage) cudaFreeHost(h_stage);
    if (blas) cublasDestroy(blas);
    if (staged) cudaEventDestroy(staged);
    if (entry) cudaEventDestroy(entry);
    if (done) cudaEventDestroy(done);
    if (pool) cudaMemPoolDestroy(pool);
    if (stream) cudaStreamDestroy(stream);
  }

  void init(int dev) {
    device = dev;
    CUDA_CHECK(cudaSetDevice(dev));
    // Its own stream, ordered against the ops' stream by the events of launch().
    CUDA_CHECK(cudaStreamCreate(&stream));
    CUDA_CHECK(cudaEventCreateWithFlags(&staged, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&entry, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = dev;
    CUDA_CHECK(cudaMemPoolCreate(&pool, &props));
    uint64_t keep = ~uint64_t{0};  // keep freed blocks for reuse instead of returning them
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    CUBLAS_CHECK(cublasCreate(&blas));
    CUBLAS_CHECK(cublasSetStream(blas, stream));
    CUBLAS_CHECK(cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH));  // FP32 throughout, no TF32
    const auto& fb = mel_filters_128();
    CUDA_CHECK(cudaMalloc(&d_filters, fb.size() * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(d_filters, fb.data(), fb.size() * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpyToSymbol(c_window, cpu::hann_window_400(), kNFft * sizeof(float)));
  }

  cufftHandle plan_for(int frames_padded) {
    for (auto it = plans.begin(); it != plans.end(); ++it)
      if (it->first == frames_padded) {
        plans.splice(plans.begin(), plans, it);
        return it->second;
      }
    if (plans.size() >= kMaxPlans) {
      CUDA_CHECK(cudaStreamSynchronize(stream));
      cufftDestroy(plans.back().second);
      plans.pop_back();
    }
    cufftHandle h;
    int n[1] = {kNFft};
    CUFFT_CHECK(
        cufftPlanMany(&h, 1, n, nullptr, 1, kNFft, nullptr, 1, kBins, CUFFT_R2C, frames_padded));
    CUFFT_CHECK(cufftSetStream(h, stream));
    plans.emplace_front(frames_padded, h);
    return h;
  }

  void reserve(long long frames_padded, int nclips, size_t input_bytes) {
    if (frames_padded > frame_cap || nclips > clip_cap || input_bytes > d_input_bytes ||
        input_bytes > h_stage_bytes)
      CUDA_CHECK(cudaStreamSynchronize(stream));  // buffers may still be in use
    if (frames_padded > frame_cap) {
      const long long cap = std::max(frames_padded, frame_cap * 3 / 2);
      cudaFree(d_frames);
      cudaFree(d_spec);
      cudaFree(d_power);
      d_frames = nullptr, d_spec = nullptr, d_power = nullptr;
      frame_cap = 0;
      CUDA_CHECK(cudaMalloc(&d_frames, cap * kNFft * sizeof(float)));
      CUDA_CHECK(cudaMalloc(&d_spec, cap * kBins * sizeof(cufftComplex)));
      CUDA_CHECK(cudaMalloc(&d_power, cap * kBins * sizeof(float)));
      // The padding frames past a batch's end go through the FFT; keep them defined.
      CUDA_CHECK(cudaMemset(d_frames, 0, cap * kNFft * sizeof(float)));
      frame_cap = cap;
    }
    if (nclips > clip_cap) {
      cudaFree(d_max);
      d_max = nullptr;
      clip_cap = 0;
      CUDA_CHECK(cudaMalloc(&d_max, std::max(nclips, 64) * sizeof(unsigned)));
      clip_cap = std::max(nclips, 64);
    }
    if (input_bytes > d_input_bytes) {
      const size_t cap = std::max(input_bytes, d_input_bytes * 3 / 2);
      cudaFree(d_input);
      d_input = nullptr;
      d_input_bytes = 0;
      CUDA_CHECK(cudaMalloc(&d_input, cap));
      d_input_bytes = cap;
    }
    if (input_bytes > h_stage_bytes) {
      const size_t cap = std::max(input_bytes, h_stage_bytes * 3 / 2);
      if (h_stage) cudaFreeHost(h_stage);
      h_stage = nullptr;
      h_stage_bytes = 0;
      CUDA_CHECK(cudaMallocHost(&h_stage, cap));
      h_stage_bytes = cap;
    }
  }

  // Issues the whole computation on `stream`; outs[i] receives clip i.
  void launch(std::span<const std::span<const float>> clips, std::span<float* const> outs) {
    const int nclips = static_cast<int>(clips.size());
    if (nclips == 0) return;
    CUDA_CHECK(cudaSetDevice(device));
    // Ordered after everything already queued on the thread's default stream (the ops), as if
    // on one stream: earlier users of the reused buffers and result blocks are done first.
    CUDA_CHECK(cudaEventRecord(entry, cudaStreamPerThread));
    CUDA_CHECK(cudaStreamWaitEvent(stream, entry, 0));
    std::vector<ClipDesc> table(static_cast<size_t>(nclips));
    long long samples = 0, frames = 0;
    for (int i = 0; i < nclips; ++i) {
      const long long n = static_cast<long long>(clips[static_cast<size_t>(i)].size());
      const long long t = mel_frames(n);
      if (n > (1LL << 30) || frames + t > (1LL << 30))
        fail("mel (cuda): batch too large ({} samples in clip {}, {} frames so far)", n, i, frames);
      table[static_cast<size_t>(i)] = {
          samples, static_cast<int>(n),         static_cast<int>(frames), static_cast<int>(t),
          0,       outs[static_cast<size_t>(i)]};
      samples += n;
      frames += t;
    }
    const long long frames_padded = (frames + kPlanQuantum - 1) / kPlanQuantum * kPlanQuantum;
    const size_t table_bytes = (nclips * sizeof(ClipDesc) + 255) / 256 * 256;
    const size_t input_bytes = table_bytes + static_cast<size_t>(samples) * sizeof(float);
    reserve(frames_padded, nclips, input_bytes);
    cufftHandle plan = plan_for(static_cast<int>(frames_padded));

    // The pinned buffer may still feed the previous call's copy.
    CUDA_CHECK(cudaEventSynchronize(staged));
    std::memcpy(h_stage, table.data(), nclips * sizeof(ClipDesc));
    CUDA_CHECK(cudaMemcpyAsync(d_input, h_stage, nclips * sizeof(ClipDesc), cudaMemcpyHostToDevice,
                               stream));
    // Gather the samples piece by piece, each piece's DMA overlapping the next piece's gather.
    // Small inputs use small pieces (overlap); large batches large ones (threaded memcpy).
    float* h_samples = reinterpret_cast<float*>(h_stage + table_bytes);
    float* d_samples = reinterpret_cast<float*>(d_input + table_bytes);
    const size_t total = static_cast<size_t>(samples);
    const size_t piece = std::clamp(total / 2, kStagePieceMin, kStagePieceMax);
    for (size_t at = 0; at < total; at += piece) {
      const size_t end = std::min(total, at + piece);
      cpu::gather_clips(clips, at, end, h_samples + at);
      CUDA_CHECK(cudaMemcpyAsync(d_samples + at, h_samples + at, (end - at) * sizeof(float),
                                 cudaMemcpyHostToDevice, stream));
    }
    CUDA_CHECK(cudaEventRecord(staged, stream));

    const auto* d_table = reinterpret_cast<const ClipDesc*>(d_input);
    frame_kernel<<<static_cast<unsigned>(frames), 128, 0, stream>>>(d_samples, d_table, nclips,
                                                                    d_frames, d_max);
    CUDA_CHECK_LAUNCH();
    CUFFT_CHECK(cufftExecR2C(plan, d_frames, d_spec));
    const long long nbins = frames * kBins;
    power_kernel<<<div_up(nbins, 256), 256, 0, stream>>>(d_spec, d_power, nbins);
    CUDA_CHECK_LAUNCH();
    // mel[128, F] (row-major) = filters[128, 201] . power[F, 201]^T. In cuBLAS's column-major
    // terms: C (F x 128, ld F) = power^T (F x 201) . filters^T (201 x 128).
    float* d_mel = d_frames;  // the frames are consumed by the FFT; reuse their memory
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasSgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(frames), kMels, kBins,
                             &one, d_power, kBins, d_filters, kBins, &zero, d_mel,
                             static_cast<int>(frames)));
    int max_t = 0;
    for (const auto& c : table) max_t = std::max(max_t, c.frames);
    const dim3 grid(static_cast<unsigned>(div_up(max_t, kTileT)), static_cast<unsigned>(nclips));
    const dim3 block(kTileT, kRowsPerPass);
    max_kernel<<<grid, block, 0, stream>>>(d_mel, static_cast<int>(frames), d_table, d_max);
    CUDA_CHECK_LAUNCH();
    normalize_kernel<<<grid, block, 0, stream>>>(d_mel, static_cast<int>(frames), d_table, d_max);
    CUDA_CHECK_LAUNCH();
    // The ops that consume the mel run on the thread's default stream: they wait for it here.
    CUDA_CHECK(cudaEventRecord(done, stream));
    CUDA_CHECK(cudaStreamWaitEvent(cudaStreamPerThread, done, 0));
  }
};

MelCuda::MelCuda(int device) : impl_(std::make_shared<Impl>()) { impl_->init(device); }
MelCuda::~MelCuda() = default;

int MelCuda::device() const { return impl_->device; }

void MelCuda::synchronize() { CUDA_CHECK(cudaStreamSynchronize(impl_->stream)); }

void MelCuda::run_into(std::span<const std::span<const float>> clips,
                       std::span<float* const> outs) {
  if (clips.size() != outs.size())
    fail("mel (cuda): {} clips but {} outputs", clips.size(), outs.size());
  impl_->launch(clips, outs);
}

std::vector<Tensor> MelCuda::run(std::span<const std::span<const float>> clips, bool to_host) {
  std::vector<Tensor> result;
  if (clips.empty()) return result;
  Impl& im = *impl_;
  CUDA_CHECK(cudaSetDevice(im.device));
  std::vector<size_t> offs;
  size_t total = 0;
  for (const auto& c : clips) {
    offs.push_back(total);
    // Each clip's block starts 256-byte aligned.
    total +=
        (static_cast<size_t>(mel_frames(static_cast<int64_t>(c.size()))) * kMels + 63) / 64 * 64;
  }
  const size_t bytes = total * sizeof(float);
  void* block = im.take_block(bytes);
  // The block goes back to the extractor when the last tensor viewing it goes; the deleter holds
  // the Impl, so the stream and pool outlive every result.
  std::shared_ptr<void> owner(block,
                              [keep = impl_, bytes](void* p) { keep->give_block(p, bytes); });
  std::vector<float*> outs;
  for (size_t i = 0; i < clips.size(); ++i) outs.push_back(static_cast<float*>(block) + offs[i]);
  im.launch(clips, std::span<float* const>(outs.data(), outs.size()));
  for (size_t i = 0; i < clips.size(); ++i) {
    const Shape shape = {kMels, mel_frames(static_cast<int64_t>(clips[i].size()))};
    if (to_host) {
      Tensor h = Tensor::empty(shape, DType::F32);
      CUDA_CHECK(cudaMemcpyAsync(h.raw(), outs[i], h.nbytes(), cudaMemcpyDeviceToHost, im.stream));
      result.push_back(std::move(h));
    } else {
      result.push_back(Tensor::borrow(outs[i], shape, DType::F32, Device::cuda(im.device), owner));
    }
  }
  if (to_host) CUDA_CHECK(cudaStreamSynchronize(im.stream));
  return result;
}

}  // namespace stepaudio::cuda
