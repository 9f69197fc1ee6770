#include "engine/device.h"

#include "kernels/error.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace cu3d {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string index = text.substr(5);
    CU3D_CHECK(!index.empty() && index.find_first_not_of("0123456789") == std::string::npos,
               "device '{}': expected cpu, cuda or cuda:N", text);
    return cuda(std::stoi(index));
  }
  throw Error(fmt::format("device '{}': expected cpu, cuda or cuda:N", text));
}

std::string Device::str() const {
  return is_cpu() ? "cpu" : fmt::format("cuda:{}", index);
}

bool cuda_available(std::string* reason) {
#ifdef CU3D_CUDA
  return cuda::device_available(reason);
#else
  if (reason) *reason = "cu3d was built without the CUDA backend (CU3D_CUDA=OFF or no nvcc)";
  return false;
#endif
}

}  // namespace cu3d
