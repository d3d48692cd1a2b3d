#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include <fmt/ranges.h>
#if STEPAUDIO_CUDA
#include "backend/cuda/runtime.h"
#endif

namespace stepaudio {

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

void split_shape(const Shape& s, int axis, int64_t& outer, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int i = 0; i < axis; ++i) outer *= s[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < s.size(); ++i) inner *= s[i];
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

namespace {
std::shared_ptr<Storage> allocate(size_t bytes, Device device) {
  auto st = std::make_shared<Storage>();
  st->bytes = bytes;
  st->device = device;
  if (device.is_cpu()) {
    // 64-byte alignment for vector loads; at least one byte so data() is never null.
    const size_t n = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, n ? n : 64);
    if (!p) fail("out of host memory allocating {} bytes", bytes);
    st->data = p;
    st->owner = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
    return st;
  }
#if STEPAUDIO_CUDA
  void* p = cuda::device_alloc(bytes, device.index);
  st->data = p;
  st->owner =
      std::shared_ptr<void>(p, [idx = device.index](void* q) { cuda::device_free(q, idx); });
  return st;
#else
  fail("cannot allocate on {}: this build has no CUDA backend", device.str());
#endif
}

void copy_bytes(void* dst, Device dd, const void* src, Device sd, size_t n) {
  if (n == 0) return;
  if (dd.is_cpu() && sd.is_cpu()) {
    std::memcpy(dst, src, n);
    return;
  }
#if STEPAUDIO_CUDA
  cuda::copy(dst, dd.is_cuda(), src, sd.is_cuda(), n);
#else
  fail("cannot copy between {} and {}: this build has no CUDA backend", sd.str(), dd.str());
#endif
}
}  // namespace

int64_t Tensor::dim(int i) const {
  const int n = ndim();
  if (i < 0) i += n;
  SA_CHECK(i >= 0 && i < n, "axis {} out of range for {}", i, desc());
  return shape_[static_cast<size_t>(i)];
}

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  for (int64_t d : shape) SA_CHECK(d >= 0, "negative dimension in {}", shape_str(shape));
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.storage_ = allocate(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor t = empty(std::move(shape), dtype, device);
  if (device.is_cpu()) {
    std::memset(t.raw(), 0, t.nbytes());
  } else {
#if STEPAUDIO_CUDA
    cuda::memset_zero(t.raw(), t.nbytes(), device.index);
#endif
  }
  return t;
}

Tensor Tensor::borrow(void* data, Shape shape, DType dtype, Device device,
                      std::shared_ptr<void> keep_alive) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>();
  t.storage_->data = data;
  t.storage_->bytes = t.nbytes();
  t.storage_->device = device;
  t.storage_->owner = std::move(keep_alive);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& v, Shape shape) {
  SA_CHECK(shape_numel(shape) == static_cast<int64_t>(v.size()), "{} values for shape {}", v.size(),
           shape_str(shape));
  Tensor t = empty(std::move(shape), DType::F32);
  std::memcpy(t.raw(), v.data(), v.size() * sizeof(float));
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  SA_CHECK(shape_numel(shape) == numel(), "cannot reshape {} to {}", desc(), shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  SA_CHECK(ndim() >= 1 && begin >= 0 && begin <= end && end <= shape_[0],
           "bad row slice [{}, {}) of {}", begin, end, desc());
  const int64_t row = shape_[0] ? numel() / shape_[0] : 0;
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.offset_ += static_cast<size_t>(begin * row) * dtype_size(dtype_);
  return t;
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, dtype_, device);
  copy_bytes(t.raw(), device, raw(), this->device(), nbytes());
  return t;
}

void copy_into(Tensor& dst, const Tensor& src) {
  if (!dst.defined() || !src.defined() || dst.shape() != src.shape() || dst.dtype() != src.dtype())
    fail("copy_into: {} into {}: shapes and types must match",
         src.defined() ? src.desc() : "nothing", dst.defined() ? dst.desc() : "nothing");
  copy_bytes(dst.raw(), dst.device(), src.raw(), src.device(), src.nbytes());
}

Tensor Tensor::to_dtype(DType dtype) const {
  SA_CHECK(device().is_cpu(), "to_dtype needs a CPU tensor, got {}", desc());
  if (dtype == dtype_) return clone();
  Tensor out = empty(shape_, dtype);
  const int64_t n = numel();
  auto read = [&](int64_t i) -> double {
    switch (dtype_) {
      case DType::F32:
        return data<float>()[i];
      case DType::F64:
        return data<double>()[i];
      case DType::BF16:
        return bf16_to_f32(data<uint16_t>()[i]);
      case DType::F16:
        return f16_to_f32(data<uint16_t>()[i]);
      case DType::I64:
        return static_cast<double>(data<int64_t>()[i]);
      case DType::I32:
        return data<int32_t>()[i];
      case DType::I16:
        return data<int16_t>()[i];
      case DType::I8:
        return data<int8_t>()[i];
      case DType::U8:
      case DType::BOOL:
        return data<uint8_t>()[i];
    }
    return 0;
  };
  for (int64_t i = 0; i < n; ++i) {
    const double v = read(i);
    switch (dtype) {
      case DType::F32:
        out.data<float>()[i] = static_cast<float>(v);
        break;
      case DType::F64:
        out.data<double>()[i] = v;
        break;
      case DType::BF16:
        out.data<uint16_t>()[i] = f32_to_bf16(static_cast<float>(v));
        break;
      case DType::F16:
        out.data<uint16_t>()[i] = f32_to_f16(static_cast<float>(v));
        break;
      case DType::I64:
        out.data<int64_t>()[i] = static_cast<int64_t>(v);
        break;
      case DType::I32:
        out.data<int32_t>()[i] = static_cast<int32_t>(v);
        break;
      case DType::I16:
        out.data<int16_t>()[i] = static_cast<int16_t>(v);
        break;
      case DType::I8:
        out.data<int8_t>()[i] = static_cast<int8_t>(v);
        break;
      case DType::U8:
      case DType::BOOL:
        out.data<uint8_t>()[i] = static_cast<uint8_t>(v);
        break;
    }
  }
  return out;
}

std::vector<float> Tensor::to_f32_vector() const {
  Tensor c = device().is_cpu() ? *this : to(Device::cpu());
  if (c.dtype_ != DType::F32) c = c.to_dtype(DType::F32);
  const float* p = c.data<float>();
  return std::vector<float>(p, p + c.numel());
}

std::string Tensor::desc() const {
  return fmt::format("{}{} on {}", dtype_name(dtype_), shape_str(shape_), device().str());
}

}  // namespace stepaudio
