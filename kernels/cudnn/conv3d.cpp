#include "kernels/cudnn/conv3d.h"

#include <map>
#include <mutex>
#include <string>

#include <fmt/format.h>

#include "kernels/cuda/cast.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cudnn/activation.h"
#include "kernels/cudnn/common.h"

namespace cu3d::cudnn {
namespace {

std::string describe(const char* pass, const Conv3dShape& s, Precision p) {
  return fmt::format(
      "cudnn conv3d_{} (x {}x{}x{}x{}x{}, k {}, kernel {}x{}x{}, stride {}x{}x{}, "
      "pad {}x{}x{}, {})",
      pass, s.n, s.in.d, s.in.h, s.in.w, s.c, s.k, s.kernel.d, s.kernel.h, s.kernel.w, s.stride.d,
      s.stride.h, s.stride.w, s.pad_before.d, s.pad_before.h, s.pad_before.w, to_string(p));
}

// The descriptors of one conv in one data type.
struct ConvDescriptors {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  std::string what;

  ConvDescriptors(const char* pass, const Conv3dShape& s, Precision p)
      : what(describe(pass, s, p)) {
    CU3D_CHECK(s.pad_before == s.pad_after,
               "{}: cuDNN needs the same padding before and after each axis (got {}x{}x{} and "
               "{}x{}x{}); use the cu3d backend for this shape",
               what, s.pad_before.d, s.pad_before.h, s.pad_before.w, s.pad_after.d, s.pad_after.h,
               s.pad_after.w);
    const cudnnDataType_t type = p == Precision::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    set_ndhwc(x, type, s.n, s.in, s.c, what);
    set_ndhwc(y, type, s.n, s.out, s.k, what);
    const int filter[5] = {s.k, s.c, s.kernel.d, s.kernel.h, s.kernel.w};
    CU3D_CUDNN_CHECK(cudnnSetFilterNdDescriptor(w.get(), type, CUDNN_TENSOR_NHWC, 5, filter), what);
    const int pad[3] = {s.pad_before.d, s.pad_before.h, s.pad_before.w};
    const int stride[3] = {s.stride.d, s.stride.h, s.stride.w};
    const int dilation[3] = {1, 1, 1};
    CU3D_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(conv.get(), 3, pad, stride, dilation,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                     what);
    set_math(p == Precision::fp32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH);
  }

  void set_math(cudnnMathType_t math) const {
    CU3D_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.get(), math), what);
  }
};

// The algorithm chosen for each (pass, shape, precision), with the math type it was timed in.
struct Choice {
  int algo;
  cudnnMathType_t math;
};
std::mutex choices_mutex;
std::map<std::string, Choice> choices;

// Runs cudnnFind* through `find` the first time a key is seen; `find` fills perf results
// sorted by time, of which the fastest that succeeded is kept.
template <class Perf, class Find>
Choice choose(const std::string& key, const std::string& what, Find find) {
  {
    std::lock_guard<std::mutex> lock(choices_mutex);
    if (auto it = choices.find(key); it != choices.end()) return it->second;
  }
  Perf perf[16];
  int returned = 0;
  CU3D_CUDNN_CHECK(find(16, &returned, perf), what);
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    const Choice choice{int(perf[i].algo), perf[i].mathType};
    std::lock_guard<std::mutex> lock(choices_mutex);
    choices[key] = choice;
    return choice;
  }
  throw Error(
      fmt::format("{}: cuDNN has no algorithm for this shape and precision; use the "
                  "cu3d backend",
                  what));
}

// An fp32 tensor as cuDNN sees it: itself, or for bf16 a converted copy in scratch memory.
class Operand {
 public:
  Operand(const float* data, int64_t count, Precision p, bool copy_in, cudaStream_t stream)
      : fp32_(const_cast<float*>(data)),
        count_(count),
        bf16_(p == Precision::bf16),
        scratch_(bf16_ ? sizeof(__nv_bfloat16) * count : 0, stream),
        stream_(stream) {
    if (bf16_ && copy_in) cuda::fp32_to_bf16(data, scratch_.as<__nv_bfloat16>(), count, stream);
  }
  void* get() const { return bf16_ ? scratch_.get() : fp32_; }
  // Writes a bf16 result back to the caller's fp32 tensor.
  void copy_out() const {
    if (bf16_) cuda::bf16_to_fp32(scratch_.as<__nv_bfloat16>(), fp32_, count_, stream_);
  }

 private:
  float* fp32_;
  int64_t count_;
  bool bf16_;
  Scratch scratch_;
  cudaStream_t stream_;
};

std::string key_of(const char* pass, const Conv3dShape& s, Precision p) {
  return describe(pass, s, p);
}

// The bias (or its gradient) as cuDNN broadcasts it over an NDHWC output: (1, k, 1, 1, 1).
void set_bias(const TensorDesc& desc, int k, const std::string& what) {
  const int dims[5] = {1, k, 1, 1, 1};
  const int strides[5] = {k, 1, k, k, k};
  CU3D_CUDNN_CHECK(cudnnSetTensorNdDescriptor(desc.get(), CUDNN_DATA_FLOAT, 5, dims, strides),
                   what);
}

void add_bias(cudnnHandle_t h, const Conv3dShape& s, const float* bias, float* y,
              const std::string& what) {
  TensorDesc b, out;
  set_bias(b, s.k, what);
  set_ndhwc(out, CUDNN_DATA_FLOAT, s.n, s.out, s.k, what);
  const float one = 1.f;
  CU3D_CUDNN_CHECK(cudnnAddTensor(h, &one, b.get(), bias, &one, out.get(), y), what);
}

// The forward's descriptors, the algorithm cudnnFindConvolutionForwardAlgorithm chose for the
// shape and precision (its math type set), and the workspace it needs.
struct ForwardPlan {
  ConvDescriptors d;
  cudnnConvolutionFwdAlgo_t algo;
  size_t bytes = 0;

  ForwardPlan(cudnnHandle_t h, const Conv3dShape& s, Precision p) : d("fwd", s, p) {
    const Choice c = choose<cudnnConvolutionFwdAlgoPerf_t>(
        key_of("fwd", s, p), d.what, [&](int n, int* got, cudnnConvolutionFwdAlgoPerf_t* perf) {
          return cudnnFindConvolutionForwardAlgorithm(h, d.x.get(), d.w.get(), d.conv.get(),
                                                      d.y.get(), n, got, perf);
        });
    d.set_math(c.math);
    algo = cudnnConvolutionFwdAlgo_t(c.algo);
    CU3D_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, d.x.get(), d.w.get(), d.conv.get(),
                                                             d.y.get(), algo, &bytes),
                     d.what);
  }
};

}  // namespace

void conv3d_fwd_prepared(const Conv3dShape& s, const void* x, const void* w, void* y,
                         Precision precision, cudaStream_t stream) {
  const cudnnHandle_t h = handle_on(stream);
  const ForwardPlan plan(h, s, precision);
  const ConvDescriptors& d = plan.d;
  const Scratch workspace(plan.bytes, stream);
  const float one = 1.f, zero = 0.f;
  CU3D_CUDNN_CHECK(
      cudnnConvolutionForward(h, &one, d.x.get(), x, d.w.get(), w, d.conv.get(), plan.algo,
                              workspace.get(), plan.bytes, &zero, d.y.get(), y),
      d.what);
}

void conv3d_fwd(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y,
                Precision precision, cudaStream_t stream) {
  const Operand xo(x, s.input_size(), precision, true, stream);
  const Operand wo(w, s.filter_size(), precision, true, stream);
  const Operand yo(y, s.output_size(), precision, false, stream);
  conv3d_fwd_prepared(s, xo.get(), wo.get(), yo.get(), precision, stream);
  yo.copy_out();
  if (bias) add_bias(handle_on(stream), s, bias, y, describe("fwd", s, precision));
}

void conv3d_fwd_bias_relu(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                          float* y, Precision precision, cudaStream_t stream) {
  const auto separately = [&] {
    conv3d_fwd(s, x, w, bias, y, precision, stream);
    relu_fwd(s.output_size(), y, y, stream);
  };
  if (precision == Precision::bf16 || !bias) return separately();
  const cudnnHandle_t h = handle_on(stream);
  const ForwardPlan plan(h, s, precision);
  const ConvDescriptors& d = plan.d;
  TensorDesc b;
  set_bias(b, s.k, d.what);
  ActivationDesc relu;
  CU3D_CUDNN_CHECK(
      cudnnSetActivationDescriptor(relu.get(), CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0),
      d.what);
  const Scratch workspace(plan.bytes, stream);
  const float one = 1.f, zero = 0.f;  // alpha2 = 0: z (y itself) does not enter
  const cudnnStatus_t status = cudnnConvolutionBiasActivationForward(
      h, &one, d.x.get(), x, d.w.get(), w, d.conv.get(), plan.algo, workspace.get(), plan.bytes,
      &zero, d.y.get(), y, b.get(), bias, relu.get(), d.y.get(), y);
  // The fused call takes fewer algorithms and layouts than the plain forward that cudnnFind
  // timed: where it refuses this one, cuDNN's separate calls compute the same.
  if (status == CUDNN_STATUS_NOT_SUPPORTED) return separately();
  check(status, "cudnnConvolutionBiasActivationForward", d.what);
}

void conv3d_bwd_data(const Conv3dShape& s, const float* dy, const float* w, float* dx,
                     Precision precision, cudaStream_t stream) {
  const cudnnHandle_t h = handle_on(stream);
  const ConvDescriptors d("bwd_data", s, precision);
  const Choice c = choose<cudnnConvolutionBwdDataAlgoPerf_t>(
      key_of("bwd_data", s, precision), d.what,
      [&](int n, int* got, cudnnConvolutionBwdDataAlgoPerf_t* p) {
        return cudnnFindConvolutionBackwardDataAlgorithm(h, d.w.get(), d.y.get(), d.conv.get(),
                                                         d.x.get(), n, got, p);
      });
  d.set_math(c.math);
  const auto algo = cudnnConvolutionBwdDataAlgo_t(c.algo);
  size_t bytes = 0;
  CU3D_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
                       h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), algo, &bytes),
                   d.what);
  const Scratch workspace(bytes, stream);
  const Operand dyo(dy, s.output_size(), precision, true, stream);
  const Operand wo(w, s.filter_size(), precision, true, stream);
  const Operand dxo(dx, s.input_size(), precision, false, stream);
  const float one = 1.f, zero = 0.f;
  CU3D_CUDNN_CHECK(
      cudnnConvolutionBackwardData(h, &one, d.w.get(), wo.get(), d.y.get(), dyo.get(), d.conv.get(),
                                   algo, workspace.get(), bytes, &zero, d.x.get(), dxo.get()),
      d.what);
  dxo.copy_out();
}

void conv3d_bwd_filter(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                       float* dbias, Precision precision, cudaStream_t stream) {
  const cudnnHandle_t h = handle_on(stream);
  const ConvDescriptors d("bwd_filter", s, precision);
  const Choice c = choose<cudnnConvolutionBwdFilterAlgoPerf_t>(
      key_of("bwd_filter", s, precision), d.what,
      [&](int n, int* got, cudnnConvolutionBwdFilterAlgoPerf_t* p) {
        return cudnnFindConvolutionBackwardFilterAlgorithm(h, d.x.get(), d.y.get(), d.conv.get(),
                                                           d.w.get(), n, got, p);
      });
  d.set_math(c.math);
  const auto algo = cudnnConvolutionBwdFilterAlgo_t(c.algo);
  size_t bytes = 0;
  CU3D_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
                       h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), algo, &bytes),
                   d.what);
  const Scratch workspace(bytes, stream);
  const Operand xo(x, s.input_size(), precision, true, stream);
  const Operand dyo(dy, s.output_size(), precision, true, stream);
  const Operand dwo(dw, s.filter_size(), precision, false, stream);
  const float one = 1.f, zero = 0.f;
  CU3D_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, d.x.get(), xo.get(), d.y.get(),
                                                  dyo.get(), d.conv.get(), algo, workspace.get(),
                                                  bytes, &zero, d.w.get(), dwo.get()),
                   d.what);
  dwo.copy_out();
  if (!dbias) return;
  TensorDesc dyf, db;
  set_ndhwc(dyf, CUDNN_DATA_FLOAT, s.n, s.out, s.k, d.what);
  set_bias(db, s.k, d.what);
  CU3D_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, dyf.get(), dy, &zero, db.get(), dbias),
                   d.what);
}

int conv3d_algorithm(const char* pass, const Conv3dShape& s, Precision precision) {
  std::lock_guard<std::mutex> lock(choices_mutex);
  const auto it = choices.find(key_of(pass, s, precision));
  return it == choices.end() ? -1 : it->second.algo;
}

}  // namespace cu3d::cudnn
