// The clip size of the end-to-end learning tests (CPU and GPU) for the toy 3D CNN of
// layers/toy_cnn.h: 6 frames of 12x12.
#pragma once

namespace cu3d::testing {

constexpr int kToyFrames = 6, kToySize = 12;

}  // namespace cu3d::testing
