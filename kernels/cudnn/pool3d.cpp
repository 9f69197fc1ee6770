#include "kernels/cudnn/pool3d.h"

#include <string>

#include <fmt/format.h>

#include "kernels/cudnn/common.h"

namespace cu3d::cudnn {
namespace {

int floor_output(int in, int window, int stride, int pad) {
  return (in + 2 * pad - window) / stride + 1;
}

std::string describe(const char* op, const Pool3dShape& s) {
  return fmt::format("cudnn {} (x {}x{}x{}x{}x{}, window {}x{}x{}, stride {}x{}x{}, pad {}x{}x{})",
                     op, s.n, s.in.d, s.in.h, s.in.w, s.c, s.window.d, s.window.h, s.window.w,
                     s.stride.d, s.stride.h, s.stride.w, s.pad_before.d, s.pad_before.h,
                     s.pad_before.w);
}

// The pooling and the x, y descriptors of one shape.
struct PoolDescriptors {
  PoolDesc pool;
  TensorDesc x, y;
  std::string what;

  PoolDescriptors(const char* op, const Pool3dShape& s) : what(describe(op, s)) {
    CU3D_CHECK(maxpool3d_supported(s),
               "{}: cuDNN needs the same padding before and after each axis and floor rounding "
               "(output {}x{}x{}); use the cu3d backend for this shape",
               what, s.out.d, s.out.h, s.out.w);
    const int window[3] = {s.window.d, s.window.h, s.window.w};
    const int pad[3] = {s.pad_before.d, s.pad_before.h, s.pad_before.w};
    const int stride[3] = {s.stride.d, s.stride.h, s.stride.w};
    CU3D_CUDNN_CHECK(cudnnSetPoolingNdDescriptor(pool.get(), CUDNN_POOLING_MAX_DETERMINISTIC,
                                                 CUDNN_PROPAGATE_NAN, 3, window, pad, stride),
                     what);
    set_ndhwc(x, CUDNN_DATA_FLOAT, s.n, s.in, s.c, what);
    set_ndhwc(y, CUDNN_DATA_FLOAT, s.n, s.out, s.c, what);
  }
};

}  // namespace

bool maxpool3d_supported(const Pool3dShape& s) {
  return s.pad_before == s.pad_after &&
         s.out.d == floor_output(s.in.d, s.window.d, s.stride.d, s.pad_before.d) &&
         s.out.h == floor_output(s.in.h, s.window.h, s.stride.h, s.pad_before.h) &&
         s.out.w == floor_output(s.in.w, s.window.w, s.stride.w, s.pad_before.w);
}

void maxpool3d_fwd(const Pool3dShape& s, const float* x, float* y, cudaStream_t stream) {
  const PoolDescriptors d("maxpool3d_fwd", s);
  const float one = 1.f, zero = 0.f;
  CU3D_CUDNN_CHECK(
      cudnnPoolingForward(handle_on(stream), d.pool.get(), &one, d.x.get(), x, &zero, d.y.get(), y),
      d.what);
}

void maxpool3d_bwd(const Pool3dShape& s, const float* x, const float* y, const float* dy, float* dx,
                   cudaStream_t stream) {
  const PoolDescriptors d("maxpool3d_bwd", s);
  const float one = 1.f, zero = 0.f;
  CU3D_CUDNN_CHECK(cudnnPoolingBackward(handle_on(stream), d.pool.get(), &one, d.y.get(), y,
                                        d.y.get(), dy, d.x.get(), x, &zero, d.x.get(), dx),
                   d.what);
}

}  // namespace cu3d::cudnn
