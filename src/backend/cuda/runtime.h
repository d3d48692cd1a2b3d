// The CUDA runtime seen from C++ code that is not compiled by nvcc (core, dispatch files).
// Everything here is safe to call when no GPU is present: init_problem() says why it is unusable.
#pragma once
#include <cstddef>
#include <string>

namespace stepaudio::cuda {

// Empty when a GPU can be used; otherwise a short reason ("no CUDA device", driver error, ...).
std::string init_problem();

void* device_alloc(size_t bytes, int device);
void device_free(void* p, int device);
void memset_zero(void* p, size_t bytes, int device);
// Synchronous copy; the flags say which side is device memory.
void copy(void* dst, bool dst_device, const void* src, bool src_device, size_t bytes);

// Hand-over between host threads that drive the GPU (each on its own default stream): waits for
// the work the calling thread has queued, then lets other threads reuse the blocks it freed.
// Does nothing without a usable GPU.
void finish_thread_work();

}  // namespace stepaudio::cuda
