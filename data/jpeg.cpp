#include "data/jpeg.h"

#include <limits>
#include <memory>

#include <turbojpeg.h>

#include "kernels/error.h"

namespace cu3d::data {
namespace {

struct HandleDeleter {
  void operator()(void* handle) const { tjDestroy(handle); }
};
using Handle = std::unique_ptr<void, HandleDeleter>;

tjhandle thread_compressor() {
  thread_local const Handle handle(tjInitCompress());
  CU3D_CHECK(handle != nullptr, "cannot create a JPEG compressor: {}", tjGetErrorStr2(nullptr));
  return handle.get();
}

// The thread's decompressor; `fresh` replaces it. TurboJPEG 2.1 can leave a decompressor that
// stopped on a damaged frame unable to decode the next good one (seen with a frame cut short), so
// a failed decode starts the thread over with a new handle.
tjhandle thread_decompressor(bool fresh = false) {
  thread_local Handle handle;
  if (fresh || !handle) handle.reset(tjInitDecompress());
  CU3D_CHECK(handle != nullptr, "cannot create a JPEG decompressor: {}", tjGetErrorStr2(nullptr));
  return handle.get();
}

// The decompressor's message for a failure, after which the thread gets a new decompressor.
std::string decode_failure(tjhandle decompressor, const char* what) {
  std::string message = fmt::format("{} ({})", what, tjGetErrorStr2(decompressor));
  thread_decompressor(true);
  return message;
}

int pixel_format(const JpegFrameShape& shape) {
  if (shape.channels == 1) return TJPF_GRAY;
  return shape.bgr ? TJPF_BGR : TJPF_RGB;
}

void check_shape(const JpegFrameShape& shape) {
  CU3D_CHECK(shape.height >= 1 && shape.width >= 1 && shape.height <= 65500 &&
                 shape.width <= 65500 && (shape.channels == 1 || shape.channels == 3),
             "JPEG frame {}x{}x{}: sides must be in 1..65500 and channels 1 or 3", shape.height,
             shape.width, shape.channels);
}

}  // namespace

std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, const JpegFrameShape& shape, int quality) {
  check_shape(shape);
  CU3D_CHECK(quality >= 1 && quality <= 100, "JPEG quality {} must be in 1..100", quality);
  tjhandle compressor = thread_compressor();
  // 4:2:0 halves the chroma resolution: a third fewer samples to decode than 4:4:4, for an error
  // hidden under the luma's (docs/DATA.md gives the measured sizes and speeds).
  const int subsampling = shape.channels == 1 ? TJSAMP_GRAY : TJSAMP_420;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const int status = tjCompress2(compressor, pixels, shape.width, 0, shape.height,
                                 pixel_format(shape), &buffer, &size, subsampling, quality, 0);
  const std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(buffer, tjFree);
  CU3D_CHECK(status == 0, "cannot JPEG-encode a {}x{} frame: {}", shape.width, shape.height,
             tjGetErrorStr2(compressor));
  return {buffer, buffer + size};
}

std::string decode_jpeg(const uint8_t* data, size_t size, const JpegFrameShape& shape,
                        uint8_t* out) {
  check_shape(shape);
  if (size > std::numeric_limits<unsigned long>::max())
    return fmt::format("{} bytes is too large a JPEG", size);
  tjhandle decompressor = thread_decompressor();
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(decompressor, data, size, &width, &height, &subsampling, &colorspace))
    return decode_failure(decompressor, "not a JPEG frame");
  if (width != shape.width || height != shape.height)
    return fmt::format("the JPEG frame is {}x{}, not the recipe's {}x{}", width, height,
                       shape.width, shape.height);
  // FASTDCT: at q95, 5-25% faster than the accurate IDCT for +0.1 levels of error (docs/DATA.md).
  const int flags = TJFLAG_FASTDCT | TJFLAG_STOPONWARNING;
  if (tjDecompress2(decompressor, data, size, out, shape.width, 0, shape.height,
                    pixel_format(shape), flags))
    return decode_failure(decompressor, "corrupt JPEG frame");
  return {};
}

}  // namespace cu3d::data
