// A CUDA graph of the work a function queues on the thread's default stream: captured once,
// replayed many times with one launch (the C++ counterpart of mlx.compile for a decode step).
// The blocks that the captured work freed stay reserved for the graph (allocator.h) until it is
// destroyed; tensors the caller keeps (inputs, outputs) must outlive it too.
#pragma once
#include <functional>
#include <memory>

namespace stepaudio::cuda {

class Graph {
 public:
  explicit Graph(int device);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Runs fn under stream capture (relaxed mode: the allocator may still cudaMalloc) and
  // instantiates the graph. Throws Error, leaving no capture open, if fn or CUDA fails.
  void capture(const std::function<void()>& fn);
  bool captured() const;
  // Queues one replay on the thread's default stream.
  void replay();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stepaudio::cuda
