// Named scopes for profiling: a layer's forward runs inside ProfileScope("conv3a"), which opens
// the NVTX range "conv3a/fwd" (visible in Nsight Systems) and labels every tape entry recorded
// within, so the backward pass opens "conv3a/bwd" for the same ops. Scopes nest with dots
// ("ensemble.0.conv1a"). In a build without CUDA they only label the tape.
#pragma once

#include <string>

namespace cu3d {

class ProfileScope {
 public:
  explicit ProfileScope(const std::string& name);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

  // The innermost scope's full dotted name; empty outside any scope.
  static const std::string& current();

 private:
  std::string previous_;
};

// An NVTX range on its own (step phases such as "step/forward", "data/wait"); no-op without CUDA.
class ProfileRange {
 public:
  explicit ProfileRange(const std::string& name);
  ~ProfileRange();
  ProfileRange(const ProfileRange&) = delete;
  ProfileRange& operator=(const ProfileRange&) = delete;
};

}  // namespace cu3d
