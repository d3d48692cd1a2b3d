#include "backend/cuda/graph.h"

#include <cuda_runtime.h>

#include <vector>

#include "backend/cuda/allocator.h"
#include "backend/cuda/check.h"

namespace stepaudio::cuda {

struct Graph::Impl {
  int device = 0;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  std::vector<void*> held;
};

Graph::Graph(int device) : impl_(std::make_unique<Impl>()) { impl_->device = device; }

Graph::~Graph() {
  if (impl_->exec) cudaGraphExecDestroy(impl_->exec);
  if (impl_->graph) cudaGraphDestroy(impl_->graph);
  // Replays already queued may still use the blocks; wait before handing them out again.
  if (!impl_->held.empty()) {
    cudaStreamSynchronize(cudaStreamPerThread);
    release_captured(impl_->held, impl_->device);
  }
}

bool Graph::captured() const { return impl_->exec != nullptr; }

void Graph::capture(const std::function<void()>& fn) {
  if (captured()) fail("cuda graph: already captured");
  CUDA_CHECK(cudaSetDevice(impl_->device));
  CUDA_CHECK(cudaStreamBeginCapture(cudaStreamPerThread, cudaStreamCaptureModeRelaxed));
  begin_capture_allocations();
  try {
    fn();
  } catch (...) {
    impl_->held = end_capture_allocations();
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(cudaStreamPerThread, &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    throw;
  }
  impl_->held = end_capture_allocations();
  CUDA_CHECK(cudaStreamEndCapture(cudaStreamPerThread, &impl_->graph));
  CUDA_CHECK(cudaGraphInstantiate(&impl_->exec, impl_->graph, 0));
}

void Graph::replay() {
  if (!captured()) fail("cuda graph: replay before capture");
  CUDA_CHECK(cudaGraphLaunch(impl_->exec, cudaStreamPerThread));
}

}  // namespace stepaudio::cuda
