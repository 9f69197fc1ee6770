// JPEG frames for shards, through libjpeg-turbo's TurboJPEG API. Each thread keeps its own
// compressor and decompressor (a handle is not thread-safe, and creating one per frame costs more
// than decoding a small frame), so loader workers decode in parallel without locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cu3d::data {

// One (H,W,C) uint8 frame, C = 1 (gray) or 3 (RGB or BGR: JPEG stores YCbCr, so the order only
// has to be the same when encoding and decoding).
struct JpegFrameShape {
  int height = 0;
  int width = 0;
  int channels = 0;
  bool bgr = false;
};

// Encodes at `quality` (1..100) with 4:2:0 chroma subsampling for colour. Throws cu3d::Error.
std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, const JpegFrameShape& shape, int quality);

// Decodes `size` bytes into `out` (H*W*C bytes). The data is untrusted: its header must declare
// exactly `shape` (so it cannot write past `out`), and any corruption, warnings included, fails.
// Returns "" on success, else what is wrong (the caller names the file and frame).
std::string decode_jpeg(const uint8_t* data, size_t size, const JpegFrameShape& shape,
                        uint8_t* out);

}  // namespace cu3d::data
