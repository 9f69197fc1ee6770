#include "engine/profile_scope.h"

#ifdef CU3D_CUDA
#include <nvtx3/nvToolsExt.h>
#endif

namespace cu3d {
namespace {

std::string& current_name() {
  thread_local std::string name;
  return name;
}

void push_range(const std::string& name) {
#ifdef CU3D_CUDA
  nvtxRangePushA(name.c_str());
#else
  (void)name;
#endif
}

void pop_range() {
#ifdef CU3D_CUDA
  nvtxRangePop();
#endif
}

}  // namespace

ProfileScope::ProfileScope(const std::string& name) : previous_(current_name()) {
  current_name() = previous_.empty() ? name : previous_ + "." + name;
  push_range(current_name() + "/fwd");
}

ProfileScope::~ProfileScope() {
  pop_range();
  current_name() = previous_;
}

const std::string& ProfileScope::current() {
  return current_name();
}

ProfileRange::ProfileRange(const std::string& name) {
  push_range(name);
}
ProfileRange::~ProfileRange() {
  pop_range();
}

}  // namespace cu3d
