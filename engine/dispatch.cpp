#include "engine/dispatch.h"

namespace cu3d {

void check_defined(const char* op, const char* what, const Tensor& t) {
  CU3D_CHECK(t.defined(), "{}: {} is an undefined tensor", op, what);
}

void check_dims(const char* op, const char* what, const Tensor& t, int dims) {
  check_defined(op, what, t);
  CU3D_CHECK(t.dim() == dims, "{}: {} must have {} axes, got {}", op, what, dims, t.str());
}

void check_shape(const char* op, const char* what, const Tensor& t, const Shape& expected) {
  check_defined(op, what, t);
  CU3D_CHECK(t.shape() == expected, "{}: {} must have shape {}, got {}", op, what,
             shape_str(expected), t.str());
}

void check_same_dtype_device(const char* op, std::initializer_list<Tensor> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (!first) {
      first = &t;
      continue;
    }
    CU3D_CHECK(t.dtype() == first->dtype() && t.device() == first->device(),
               "{}: all tensors must share dtype and device, got {} and {}", op, first->str(),
               t.str());
  }
}

void check_cpu(const char* op, const Tensor& t) {
  CU3D_CHECK(
      !t.defined() || t.device().is_cpu(),
      "{}: got {}, but this op has no CUDA path yet; move the tensor with .to(Device::cpu())", op,
      t.str());
}

void check_compute_dtype(const char* op, const Tensor& t) {
  if (!t.defined()) return;
  if (t.device().is_cuda()) {
    CU3D_CHECK(t.dtype() == DType::f32,
               "{}: got {}; on CUDA this op computes in f32 (the "
               "precision of matrix ops is set by --precision)",
               op, t.str());
    return;
  }
  CU3D_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64,
             "{}: got {}; on the CPU this op computes in f32 or f64", op, t.str());
}

void throw_no_cuda(const char* op) {
  throw Error(
      fmt::format("{}: this cu3d was built without the CUDA backend; use --device cpu", op));
}

}  // namespace cu3d
