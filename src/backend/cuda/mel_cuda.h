// CUDA log-mel for a batch of clips: one pinned staging copy (pipelined with the host-side
// gather), framing + window in one kernel, one batched cuFFT R2C over every frame of every clip
// (plans cached by padded frame count), a power kernel, the mel bank as one cuBLAS GEMM (FP32,
// no TF32), then per-clip max and log/floor/scale kernels. Nothing goes back to the host unless
// asked. The header is plain C++ so that g++-compiled dispatch code can include it.
#pragma once
#include <memory>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace stepaudio::cuda {

class MelCuda {
 public:
  // Sets up the stream, memory pool, cuBLAS handle and the filterbank on `device`. Throws Error.
  explicit MelCuda(int device);
  ~MelCuda();
  MelCuda(const MelCuda&) = delete;
  MelCuda& operator=(const MelCuda&) = delete;

  int device() const;

  // Results as device tensors [128, T_i] sharing one pool allocation, or host tensors when
  // `to_host`. Device results are ordered on a blocking stream, so the default-stream copies
  // elsewhere in the library (Tensor::to) see them complete.
  std::vector<Tensor> run(std::span<const std::span<const float>> clips, bool to_host);
  // Writes into device memory the caller owns: outs[i] holds 128 * T_i floats.
  void run_into(std::span<const std::span<const float>> clips, std::span<float* const> outs);
  // Waits for all work issued so far.
  void synchronize();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with the deleters of the tensors it hands out
};

}  // namespace stepaudio::cuda
