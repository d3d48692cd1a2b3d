// A Tensor is a shape, an element type, a device and a reference-counted storage. Views
// (reshape, row slices) share storage. Storage can be owned memory (host or device) or borrowed
// memory kept alive by a handle (a memory-mapped checkpoint, for example), so weights are never
// copied unless they are transformed.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace stepaudio {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[128, 301]"
int64_t shape_numel(const Shape& s);
// The products of the dims before `axis` (outer) and after it (inner).
void split_shape(const Shape& s, int axis, int64_t& outer, int64_t& inner);

struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  std::shared_ptr<void> owner;  // frees or keeps alive the memory
};

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(Shape shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(Shape shape, DType dtype, Device device = Device::cpu());
  // Borrowed memory; `keep_alive` owns it (may be null for memory that outlives the tensor).
  static Tensor borrow(void* data, Shape shape, DType dtype, Device device,
                       std::shared_ptr<void> keep_alive);
  static Tensor from_vector(const std::vector<float>& v, Shape shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::cpu(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* raw() const { return static_cast<char*>(storage_->data) + offset_; }
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw());
  }

  // Same storage, new shape (numel must match).
  Tensor reshape(Shape shape) const;
  // Rows [begin, end) of the first axis, sharing storage.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // A contiguous copy on `device`.
  Tensor to(Device device) const;
  // A CPU copy converted to `dtype` (F32 <-> F16/BF16, integers <-> I64).
  Tensor to_dtype(DType dtype) const;
  Tensor clone() const { return to(device()); }

  // Host-side element access for tests and small reads (CPU F32 only).
  std::vector<float> to_f32_vector() const;

  std::string desc() const;  // "F32[128, 301] on cpu"

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
  Shape shape_;
  DType dtype_ = DType::F32;
};

// Copies src's bytes into dst (same shape and dtype, any devices; dst keeps its storage, so
// device buffers that a CUDA graph has captured can be refilled).
void copy_into(Tensor& dst, const Tensor& src);

}  // namespace stepaudio
