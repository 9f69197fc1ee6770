#include "engine/dist/communicator.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/dtype.h"
#include "kernels/error.h"

namespace cu3d::dist {
namespace {

class DoneRequest : public Request {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string describe() const override { return "single process"; }
  bool accepts(Device) const override { return true; }
  std::unique_ptr<Request> all_reduce_sum_async(void*, std::size_t, WireType) override {
    return std::make_unique<DoneRequest>();
  }
  void all_reduce_sum(double*, std::size_t) override {}
  void broadcast(void*, std::size_t, Device, int root) override {
    CU3D_CHECK(root == 0, "broadcast from rank {} in a world of one", root);
  }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& why) override {
    std::fprintf(stderr, "cu3d: %s\n", why.c_str());
    std::exit(1);
  }
};

}  // namespace

void Communicator::set_timeout(double seconds) {
  CU3D_CHECK(std::isfinite(seconds) && seconds > 0,
             "--dist-timeout {} must be a positive number of seconds", seconds);
  timeout_ = seconds;
}

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}

void add_bf16(const void* in, void* inout, std::size_t count) {
  const auto* a = static_cast<const bf16*>(in);
  auto* b = static_cast<bf16*>(inout);
  for (std::size_t i = 0; i < count; ++i)
    b[i] = float_to_bf16(bf16_to_float(a[i]) + bf16_to_float(b[i]));
}

}  // namespace cu3d::dist
