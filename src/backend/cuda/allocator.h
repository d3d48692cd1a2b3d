// A caching allocator for device memory. cudaFree synchronises the whole device and cudaMalloc
// costs microseconds, so the many short-lived activations of a forward pass would stall the
// decode loop; freed blocks are kept per device in size classes and handed out again. All
// kernels run on the calling thread's default stream, and a freed block is handed out again only
// to the thread that freed it (until it shares its blocks), so a block freed by the host while a
// kernel still reads it is only reused by work queued after that kernel on the same stream. Two
// host threads (the LLM decode and a speech stream, say) can so drive one GPU at once.
#pragma once
#include <cstddef>
#include <vector>

namespace stepaudio::cuda {

void* cached_alloc(size_t bytes, int device);
// A freed block stays with the freeing thread (its default stream may still use it) until
// share_thread_blocks: call that (all devices) after synchronising the thread's stream, e.g.
// before the thread ends, so that other threads can reuse its blocks.
void cached_free(void* p, int device);
void share_thread_blocks();
// Returns every cached (unused) block to the driver, e.g. before a large one-off allocation.
void release_cached(int device);

struct AllocatorStats {
  size_t in_use = 0, cached = 0, peak_in_use = 0;
};
AllocatorStats allocator_stats(int device);

// CUDA graph capture: between begin and end, blocks freed on this thread are not handed out
// again but collected, because the captured graph keeps reading and writing them on every
// replay; end returns them, and the graph's owner gives them back with release_captured once the
// graph is destroyed.
void begin_capture_allocations();
std::vector<void*> end_capture_allocations();
void release_captured(const std::vector<void*>& blocks, int device);

// Tests: when on, every block handed out is first filled with 0xFF bytes (a NaN in F32, BF16 and
// F16), so an output element a kernel forgets to write shows up as NaN.
void set_poison_allocations(bool on);

}  // namespace stepaudio::cuda
