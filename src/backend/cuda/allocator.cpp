#include "backend/cuda/allocator.h"

#include <cuda_runtime.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend/cuda/check.h"
#include "core/error.h"

namespace stepaudio::cuda {

namespace {

// Sizes are rounded up so that slightly different requests share blocks: 512-byte steps below
// 1 MiB, then 1/8 steps of the power of two, at most 12.5% waste.
size_t round_size(size_t n) {
  if (n <= (1u << 20)) return (n + 511) / 512 * 512;
  size_t p = 1;
  while (p < n) p <<= 1;
  const size_t step = p / 16;
  return (n + step - 1) / step * step;
}

// Free blocks are kept per thread: the work of each thread runs on its own default stream and
// may still use a block the thread has freed (the free is not stream-ordered), so only that
// thread, whose later work is ordered after it, takes the block again. A thread that has
// synchronised its stream hands its blocks to every thread (share_thread_blocks), under the key
// of no thread.
using FreeList = std::multimap<size_t, void*>;  // size -> block

struct Pool {
  std::mutex mu;
  std::map<std::thread::id, FreeList> free;
  std::unordered_map<void*, size_t> blocks;  // every live block -> its size
  AllocatorStats stats;

  void release_free_locked() {
    for (auto& [thread, list] : free) {
      for (auto& [size, p] : list) {
        cudaFree(p);  // synchronises the device: no stream still uses the block after this
        blocks.erase(p);
        stats.cached -= size;
      }
    }
    free.clear();
  }

  // A cached block of at least `size` bytes (at most a quarter more) from `list`, or null.
  void* take_locked(FreeList& list, size_t size) {
    auto it = list.lower_bound(size);
    if (it == list.end() || it->first > size + size / 4) return nullptr;
    void* p = it->second;
    const size_t got = it->first;
    list.erase(it);
    stats.cached -= got;
    stats.in_use += got;
    if (stats.in_use > stats.peak_in_use) stats.peak_in_use = stats.in_use;
    return p;
  }
};

// One pool per device, created on first use and never destroyed: the blocks it holds belong to
// CUDA contexts that are torn down at exit anyway, and freeing them from a static destructor
// after the runtime is gone would fail.
std::mutex g_pools_mu;
std::map<int, Pool*>& pools() {
  static auto* all = new std::map<int, Pool*>();
  return *all;
}

Pool& pool(int device) {
  std::lock_guard<std::mutex> lock(g_pools_mu);
  Pool*& p = pools()[device];
  if (!p) p = new Pool();
  return *p;
}

std::atomic<bool> g_poison{false};
thread_local bool t_capturing = false;
thread_local std::vector<void*> t_captured;

// Stream-ordered (and so also recorded into a graph being captured).
void* poisoned(void* p, size_t size) {
  if (g_poison.load(std::memory_order_relaxed))
    CUDA_CHECK(cudaMemsetAsync(p, 0xFF, size, cudaStreamPerThread));
  return p;
}

}  // namespace

void set_poison_allocations(bool on) { g_poison.store(on); }

void* cached_alloc(size_t bytes, int device) {
  const size_t size = round_size(bytes ? bytes : 1);
  Pool& pl = pool(device);
  std::lock_guard<std::mutex> lock(pl.mu);
  // Reuse a cached block of this size, or one at most a quarter bigger: this thread's, else one
  // that every thread may take.
  void* p = pl.take_locked(pl.free[std::this_thread::get_id()], size);
  if (!p) p = pl.take_locked(pl.free[std::thread::id()], size);
  if (p) {
    CUDA_CHECK(cudaSetDevice(device));
    return poisoned(p, pl.blocks.at(p));
  }
  CUDA_CHECK(cudaSetDevice(device));
  cudaError_t e = cudaMalloc(&p, size);
  if (e != cudaSuccess) {
    // Out of memory with blocks cached: give them back and try once more.
    cudaGetLastError();
    pl.release_free_locked();
    e = cudaMalloc(&p, size);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    fail("out of GPU memory on cuda:{} allocating {} bytes ({}; {} bytes in use)", device, bytes,
         cudaGetErrorString(e), pl.stats.in_use);
  }
  pl.blocks[p] = size;
  pl.stats.in_use += size;
  if (pl.stats.in_use > pl.stats.peak_in_use) pl.stats.peak_in_use = pl.stats.in_use;
  return poisoned(p, size);
}

void cached_free(void* p, int device) {
  if (!p) return;
  if (t_capturing) {
    t_captured.push_back(p);
    return;
  }
  Pool& pl = pool(device);
  std::lock_guard<std::mutex> lock(pl.mu);
  auto it = pl.blocks.find(p);
  if (it == pl.blocks.end()) return;  // not ours; nothing sensible to do from a deleter
  pl.stats.in_use -= it->second;
  pl.stats.cached += it->second;
  pl.free[std::this_thread::get_id()].emplace(it->second, p);
}

void share_thread_blocks() {
  std::vector<Pool*> all;
  {
    std::lock_guard<std::mutex> lock(g_pools_mu);
    for (auto& [device, p] : pools()) all.push_back(p);
  }
  for (Pool* pl : all) {
    std::lock_guard<std::mutex> lock(pl->mu);
    auto it = pl->free.find(std::this_thread::get_id());
    if (it == pl->free.end()) continue;
    pl->free[std::thread::id()].merge(it->second);
    pl->free.erase(it);
  }
}

void begin_capture_allocations() {
  t_capturing = true;
  t_captured.clear();
}

std::vector<void*> end_capture_allocations() {
  t_capturing = false;
  return std::exchange(t_captured, {});
}

void release_captured(const std::vector<void*>& blocks, int device) {
  for (void* p : blocks) cached_free(p, device);
}

void release_cached(int device) {
  Pool& pl = pool(device);
  std::lock_guard<std::mutex> lock(pl.mu);
  cudaSetDevice(device);
  pl.release_free_locked();
}

AllocatorStats allocator_stats(int device) {
  Pool& pl = pool(device);
  std::lock_guard<std::mutex> lock(pl.mu);
  return pl.stats;
}

}  // namespace stepaudio::cuda
