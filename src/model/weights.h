// Where model code gets its tensors: a name -> tensor function. A Checkpoint provides one
// (weights_of), and tests or benchmarks can provide tensors built in memory.
#pragma once
#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/checkpoint.h"

namespace stepaudio {

using WeightFn = std::function<Tensor(const std::string& name)>;

// The checkpoint must outlive the returned function (its tensors borrow the checkpoint's maps,
// which they keep alive themselves).
inline WeightFn weights_of(const Checkpoint& ckpt) {
  return [&ckpt](const std::string& name) { return ckpt.get(name); };
}

// Fetches `name` and checks its shape; the error names the tensor, the expected and found shape.
inline Tensor expect_weight(const WeightFn& get, const std::string& name, const Shape& shape) {
  Tensor t = get(name);
  if (!t.defined()) fail("weight '{}' is missing", name);
  if (t.shape() != shape)
    fail("weight '{}': expected shape {}, found {}", name, shape_str(shape), shape_str(t.shape()));
  if (t.dtype() != DType::F32 && t.dtype() != DType::BF16 && t.dtype() != DType::F16)
    fail("weight '{}': expected F32, BF16 or F16, found {}", name, dtype_name(t.dtype()));
  if (!t.device().is_cpu()) fail("weight '{}': expected a CPU tensor, found {}", name, t.desc());
  return t;
}

// Small vectors (biases, norm weights) are kept as F32; matrices stay as stored.
inline Tensor expect_vector_f32(const WeightFn& get, const std::string& name, int64_t n) {
  Tensor t = expect_weight(get, name, {n});
  return t.dtype() == DType::F32 ? t : t.to_dtype(DType::F32);
}

// Host tensors of one dtype stacked along the first axis (fusing projection weights at load).
inline Tensor concat_rows(const std::vector<Tensor>& parts) {
  if (parts.empty()) fail("concat_rows: no tensors");
  Shape shape = parts[0].shape();
  shape[0] = 0;
  for (const Tensor& p : parts) {
    if (!p.device().is_cpu() || p.dtype() != parts[0].dtype() || p.ndim() != parts[0].ndim() ||
        p.numel() / std::max<int64_t>(p.dim(0), 1) !=
            parts[0].numel() / std::max<int64_t>(parts[0].dim(0), 1))
      fail("concat_rows: {} does not stack with {}", p.desc(), parts[0].desc());
    shape[0] += p.dim(0);
  }
  Tensor out = Tensor::empty(shape, parts[0].dtype());
  char* dst = out.data<char>();
  for (const Tensor& p : parts) {
    std::memcpy(dst, p.raw(), p.nbytes());
    dst += p.nbytes();
  }
  return out;
}

}  // namespace stepaudio
