#include "engine/tensor.h"

#include <algorithm>
#include <cstring>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/rng.h"

namespace cu3d {

std::string shape_str(const Shape& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t extent : shape)
    n *= extent;
  return n;
}

namespace {

void check_shape_valid(const Shape& shape) {
  CU3D_CHECK(shape.size() <= kMaxDims, "shape {} has {} axes; at most {} are supported",
             shape_str(shape), shape.size(), kMaxDims);
  for (int64_t extent : shape)
    CU3D_CHECK(extent >= 0, "shape {} has a negative extent", shape_str(shape));
}

template <typename T>
double to_double(T value) {
  if constexpr (std::is_same_v<T, bf16>)
    return bf16_to_float(value);
  else if constexpr (std::is_same_v<T, f16>)
    return f16_to_float(value);
  else
    return double(value);
}

template <typename T>
T from_double(double value) {
  if constexpr (std::is_same_v<T, bf16>)
    return float_to_bf16(float(value));
  else if constexpr (std::is_same_v<T, f16>)
    return float_to_f16(float(value));
  else
    return static_cast<T>(value);
}

// Element-wise conversion between any two dtypes on the host.
void convert_host(const Tensor& src, Tensor& dst) {
  dispatch_any(src.dtype(), [&]<typename S>() {
    dispatch_any(dst.dtype(), [&]<typename D>() {
      const S* in = src.data<S>();
      D* out = dst.data<D>();
      for (int64_t i = 0, n = src.numel(); i < n; ++i)
        out[i] = from_double<D>(to_double(in[i]));
    });
  });
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device, bool pinned) {
  check_shape_valid(shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(std::size_t(shape_numel(shape)) * dtype_size(dtype),
                                            device, pinned);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor host = empty(shape, dtype);
  host.fill_(value);
  return host.to(device);
}

Tensor Tensor::empty_like(const Tensor& other) {
  return empty(other.shape(), other.dtype(), other.device());
}

Tensor Tensor::zeros_like(const Tensor& other) {
  return zeros(other.shape(), other.dtype(), other.device());
}

Tensor Tensor::uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype) {
  Tensor t = empty(shape, dtype);
  dispatch_float(dtype, "Tensor::uniform", [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i)
      p[i] = T(gen.uniform(low, high));
  });
  return t;
}

Tensor Tensor::normal(const Shape& shape, double mean, double stddev, Generator& gen, DType dtype) {
  Tensor t = empty(shape, dtype);
  dispatch_float(dtype, "Tensor::normal", [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i)
      p[i] = T(gen.normal(mean, stddev));
  });
  return t;
}

const TensorImpl& Tensor::checked() const {
  CU3D_CHECK(impl_, "use of an undefined tensor");
  return *impl_;
}

const Shape& Tensor::shape() const {
  return checked().shape;
}

int64_t Tensor::size(int axis) const {
  const int dims = dim();
  const int resolved = axis < 0 ? axis + dims : axis;
  CU3D_CHECK(resolved >= 0 && resolved < dims, "axis {} out of range for {}", axis, str());
  return shape()[resolved];
}

int64_t Tensor::numel() const {
  return shape_numel(shape());
}
DType Tensor::dtype() const {
  return checked().dtype;
}
Device Tensor::device() const {
  return checked().storage->device();
}

std::string Tensor::str() const {
  if (!impl_) return "undefined";
  return fmt::format("{}{} {}", dtype_name(dtype()), shape_str(shape()), device().str());
}

void* Tensor::raw_data() const {
  const TensorImpl& t = checked();
  return static_cast<char*>(t.storage->data()) + t.byte_offset;
}

double Tensor::item() const {
  CU3D_CHECK(numel() == 1, "item() needs a one-element tensor, got {}", str());
  const Tensor host = to(Device::cpu());
  double value = 0;
  dispatch_any(dtype(), [&]<typename T>() { value = to_double(*host.data<T>()); });
  return value;
}

void Tensor::fill_(double value) {
  if (device().is_cuda()) {
    copy_from(full(shape(), value, dtype()));
    return;
  }
  dispatch_any(dtype(),
               [&]<typename T>() { std::fill_n(data<T>(), numel(), from_double<T>(value)); });
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  Shape resolved = new_shape;
  int inferred = -1;
  int64_t known = 1;
  for (int i = 0; i < int(resolved.size()); ++i) {
    if (resolved[i] == -1) {
      CU3D_CHECK(inferred < 0, "reshape of {} to {}: at most one axis may be -1", str(),
                 shape_str(new_shape));
      inferred = i;
    } else {
      known *= resolved[i];
    }
  }
  if (inferred >= 0) {
    CU3D_CHECK(known > 0 && numel() % known == 0, "reshape of {} to {}: sizes do not divide", str(),
               shape_str(new_shape));
    resolved[inferred] = numel() / known;
  }
  check_shape_valid(resolved);
  CU3D_CHECK(shape_numel(resolved) == numel(), "reshape of {} to {}: element counts differ", str(),
             shape_str(new_shape));
  auto view = std::make_shared<TensorImpl>();
  view->storage = impl_->storage;
  view->byte_offset = impl_->byte_offset;
  view->shape = resolved;
  view->dtype = impl_->dtype;
  Tensor out(std::move(view));
  if (autograd::needs_grad({*this})) {
    const Shape original = shape();
    autograd::record("reshape", {*this}, {out}, [original](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{g[0].reshape(original)};
    });
  }
  return out;
}

Tensor Tensor::flatten(int start_axis) const {
  CU3D_CHECK(start_axis >= 0 && start_axis <= dim(), "flatten({}) of {}: axis out of range",
             start_axis, str());
  Shape flat(shape().begin(), shape().begin() + start_axis);
  flat.push_back(shape_numel(Shape(shape().begin() + start_axis, shape().end())));
  return reshape(flat);
}

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  Tensor out = empty(shape(), dtype(), target);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::to(DType target) const {
  if (dtype() == target) return *this;
  Tensor out = empty(shape(), target);
  convert_host(to(Device::cpu()), out);
  return out.to(device());
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_from(*this);
  return out;
}

void Tensor::copy_from(const Tensor& src) {
  CU3D_CHECK(src.shape() == shape() && src.dtype() == dtype(),
             "copy_from: source {} does not match destination {}", src.str(), str());
  copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
}

void Tensor::move_to_(Device target) {
  CU3D_CHECK(is_leaf(), "move_to_ on {}: only leaf tensors can move in place", str());
  if (device() == target) return;
  const Tensor moved = to(target);
  impl_->storage = moved.impl_->storage;
  impl_->byte_offset = moved.impl_->byte_offset;
  impl_->grad.reset();
}

bool Tensor::shares_storage_with(const Tensor& other) const {
  return impl_ && other.impl_ && impl_->storage == other.impl_->storage;
}

bool Tensor::requires_grad() const {
  return checked().requires_grad;
}

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  CU3D_CHECK(is_leaf(),
             "set_requires_grad on {}: only leaf tensors (not outputs of recorded ops) "
             "can be marked",
             str());
  CU3D_CHECK(!requires_grad || is_floating(dtype()),
             "set_requires_grad on {}: only floating-point tensors can have gradients", str());
  impl_->requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  return checked().grad ? Tensor(checked().grad) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  CU3D_CHECK(!grad.defined() || grad.shape() == shape(),
             "set_grad: gradient {} does not match tensor {}", grad.str(), str());
  checked();
  impl_->grad = grad.impl_ptr();
}

void Tensor::zero_grad() {
  checked();
  impl_->grad.reset();
}

bool Tensor::is_leaf() const {
  return checked().tape_generation == 0;
}

}  // namespace cu3d
