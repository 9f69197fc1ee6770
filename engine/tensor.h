// Tensor: a shape, a dtype and a view into shared, contiguous Storage on one device, plus the
// autograd state (requires_grad, accumulated grad). Tensors are cheap handles: copying one
// shares the data; `clone()` copies it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/storage.h"
#include "kernels/error.h"

namespace cu3d {

using Shape = std::vector<int64_t>;
constexpr int kMaxDims = 6;

std::string shape_str(const Shape& shape);  // "[2,3,4]"
int64_t shape_numel(const Shape& shape);

class Generator;
struct TensorImpl;
class Tensor;

// Tensors by name, in a meaningful order (parameters, buffers, optimizer state, checkpoints).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Tensor {
 public:
  Tensor() = default;  // undefined: holds nothing

  // ---- creation ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu(),
                      bool pinned = false);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  static Tensor empty_like(const Tensor& other);
  static Tensor zeros_like(const Tensor& other);
  // Copies `values` (whose element type must match `dtype_of<T>`) into a new CPU tensor.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  // Random CPU tensors drawn from `gen` (f32 or f64).
  static Tensor uniform(const Shape& shape, double low, double high, Generator& gen,
                        DType dtype = DType::f32);
  static Tensor normal(const Shape& shape, double mean, double stddev, Generator& gen,
                       DType dtype = DType::f32);

  // ---- description ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int dim() const { return int(shape().size()); }
  int64_t size(int axis) const;  // negative axes count from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  std::size_t nbytes() const { return std::size_t(numel()) * dtype_size(dtype()); }
  std::string str() const;  // "f32[2,8,28,28,64] cpu"

  // ---- data access ----
  // Typed pointer to the first element; throws if T does not match the dtype.
  template <typename T>
  T* data() const;
  void* raw_data() const;
  template <typename T>
  std::vector<T> to_vector() const;  // copies to the host
  double item() const;               // the value of a one-element tensor, as double
  void fill_(double value);

  // ---- views and copies ----
  // A view with the same elements in another shape (one axis may be -1). Recorded on the tape,
  // so gradients flow back through it.
  Tensor reshape(const Shape& shape) const;
  Tensor flatten(int start_axis = 1) const;  // (n, ...) -> (n, prod(rest))
  Tensor to(Device device) const;            // copy (or this tensor if already there)
  Tensor to(DType dtype) const;              // converted copy (or this tensor if same dtype)
  Tensor clone() const;                      // deep copy, not recorded on the tape
  void copy_from(const Tensor& src);         // same shape and dtype, any devices
  // Moves this tensor's data to `device` in place: every handle to it (a layer's weight and the
  // module's parameter list alike) sees the moved data. For leaves; drops any gradient.
  void move_to_(Device device);
  bool shares_storage_with(const Tensor& other) const;

  // ---- autograd ----
  bool requires_grad() const;
  // Marks a leaf tensor (a parameter or an input) to receive gradients in `grad()`.
  Tensor& set_requires_grad(bool requires_grad);
  Tensor grad() const;  // undefined until backward reaches this tensor
  void set_grad(const Tensor& grad);
  void zero_grad();  // drops the accumulated gradient
  bool is_leaf() const;

  // Identity of the underlying tensor (views are distinct tensors).
  const TensorImpl* impl() const { return impl_.get(); }
  std::shared_ptr<TensorImpl> impl_ptr() const { return impl_; }
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::size_t byte_offset = 0;
  Shape shape;
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  // Non-zero when an op on the tape produced this tensor: the tape generation it belongs to.
  uint64_t tape_generation = 0;
};

template <typename T>
T* Tensor::data() const {
  const TensorImpl& t = checked();
  CU3D_CHECK(t.dtype == dtype_of<T>(), "tensor {} accessed as {}: dtypes differ", str(),
             dtype_name(dtype_of<T>()));
  return reinterpret_cast<T*>(static_cast<char*>(t.storage->data()) + t.byte_offset);
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  CU3D_CHECK(int64_t(values.size()) == shape_numel(shape),
             "from_vector: {} values do not fill shape {}", values.size(), shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>());
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  const Tensor host = to(Device::cpu());
  const T* p = host.data<T>();
  return std::vector<T>(p, p + numel());
}

}  // namespace cu3d
