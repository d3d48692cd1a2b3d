// What every op file shares (internal to src/ops): argument checks whose errors name the op and
// the argument, and the device rule: all defined inputs on one device, and true when that is a
// GPU (then the op calls its CUDA kernel, `if (on_cuda(...)) CUDA_OP(f(...));`).
#pragma once
#include <initializer_list>
#include <string>

#include "core/error.h"
#include "core/tensor.h"

#if STEPAUDIO_CUDA
#define CUDA_OP(...) return cuda::__VA_ARGS__
#else
#define CUDA_OP(...) ::stepaudio::fail("this build has no CUDA backend")
#endif

namespace stepaudio::ops::detail {

inline bool is_float(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }

inline void need(bool ok, const char* op, const std::string& what) {
  if (!ok) fail("{}: {}", op, what);
}

inline void need_type(const Tensor& t, DType dt, const char* op, const char* arg) {
  need(t.defined(), op, fmt::format("{} is undefined", arg));
  need(t.dtype() == dt, op, fmt::format("{} must be {}, got {}", arg, dtype_name(dt), t.desc()));
}

inline void need_f32(const Tensor& t, const char* op, const char* arg) {
  need_type(t, DType::F32, op, arg);
}

inline void need_float(const Tensor& t, const char* op, const char* arg) {
  need(t.defined(), op, fmt::format("{} is undefined", arg));
  need(is_float(t.dtype()), op, fmt::format("{} must be F32, BF16 or F16, got {}", arg, t.desc()));
}

inline bool on_cuda(const char* op, std::initializer_list<const Tensor*> ts) {
  bool cuda = false, cpu = false;
  for (const Tensor* t : ts) {
    if (!t->defined()) continue;
    (t->device().is_cuda() ? cuda : cpu) = true;
  }
  if (cuda && cpu) fail("{}: inputs are on different devices (CPU and CUDA)", op);
#if !STEPAUDIO_CUDA
  if (cuda) fail("{}: this build has no CUDA backend", op);
#endif
  return cuda;
}

inline int64_t rows_of(const Tensor& x) { return x.ndim() ? x.numel() / x.dim(-1) : 1; }

}  // namespace stepaudio::ops::detail
