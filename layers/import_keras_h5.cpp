// The HDF5 half of the Keras import (layers/import_keras.h): reads a Keras weight file into named
// f32 tensors with the HDF5 C API, treating the file as hostile.
#include <hdf5.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "layers/import_keras.h"

namespace cu3d {
namespace {

// Keras splits an attribute larger than HDF5's 64 KiB object-header limit into name0, name1, ...
// (keras/src/legacy/saving/legacy_h5_format.py); more chunks than this is not a Keras file.
constexpr int kMaxAttributeChunks = 1024;
// An HDF5 identifier closed by its own close function when it goes out of scope.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

struct Reader {
  std::string file;    // path, for messages
  hsize_t file_bytes;  // bounds every dataset
  std::string prefix;  // "model_weights/" for a full model save
};

bool has_link(hid_t group, const std::string& name) {
  return H5Lexists(group, name.c_str(), H5P_DEFAULT) > 0;
}

bool has_attribute(hid_t object, const std::string& name) {
  return H5Aexists(object, name.c_str()) > 0;
}

// The elements of a 1-D (or scalar) attribute's dataspace, bounded by what an attribute can hold.
hsize_t attribute_elements(hid_t attribute, const std::string& where) {
  const Handle space(H5Aget_space(attribute), H5Sclose);
  const hssize_t n = space.valid() ? H5Sget_simple_extent_npoints(space.get()) : -1;
  const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  CU3D_CHECK(n >= 0 && rank >= 0 && rank <= 1, "{}: is not a list of names", where);
  return hsize_t(n);
}

std::vector<std::string> read_variable_strings(hid_t attribute, hsize_t n) {
  const Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  std::vector<char*> pointers(n, nullptr);
  if (H5Aread(attribute, type.get(), pointers.data()) < 0) return {};
  std::vector<std::string> names;
  for (char* p : pointers)
    names.emplace_back(p ? p : "");
  const Handle space(H5Aget_space(attribute), H5Sclose);
#if H5_VERSION_GE(1, 12, 0)
  H5Treclaim(type.get(), space.get(), H5P_DEFAULT, pointers.data());
#else
  H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, pointers.data());
#endif
  return names;
}

// Keras 2 writes numpy's fixed-length byte strings, padded with NULs.
std::vector<std::string> read_fixed_strings(hid_t attribute, hid_t file_type, hsize_t n) {
  const size_t width = H5Tget_size(file_type);
  std::vector<char> bytes(n * width);
  const Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), width);
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  if (H5Aread(attribute, type.get(), bytes.data()) < 0) return {};
  std::vector<std::string> names;
  for (hsize_t i = 0; i < n; ++i) {
    const char* begin = bytes.data() + i * width;
    names.emplace_back(begin, std::find(begin, begin + width, '\0'));
  }
  return names;
}

// A list of names stored as one attribute; an empty list may be stored with any element type
// (numpy writes `[]` as float64).
std::vector<std::string> read_names(hid_t object, const std::string& name,
                                    const std::string& where) {
  const Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  CU3D_CHECK(attribute.valid(), "{}: cannot open the attribute", where);
  const hsize_t n = attribute_elements(attribute.get(), where);
  if (n == 0) return {};
  const Handle type(H5Aget_type(attribute.get()), H5Tclose);
  CU3D_CHECK(type.valid() && H5Tget_class(type.get()) == H5T_STRING,
             "{}: holds {} values that are not names", where, n);
  const size_t width = H5Tget_size(type.get());
  const bool variable = H5Tis_variable_str(type.get()) > 0;
  // An attribute lives in a 64 KiB object header, so this only refuses corrupt sizes.
  CU3D_CHECK(variable || (width > 0 && n * width <= 1u << 20), "{}: {} names of {} bytes", where, n,
             width);
  std::vector<std::string> names = variable ? read_variable_strings(attribute.get(), n)
                                            : read_fixed_strings(attribute.get(), type.get(), n);
  CU3D_CHECK(names.size() == n, "{}: cannot read its {} names", where, n);
  return names;
}

// `name`, or Keras's chunks name0, name1, ...; nullopt when neither is there.
std::optional<std::vector<std::string>> read_chunked_names(hid_t object, const std::string& name,
                                                           const std::string& where) {
  if (has_attribute(object, name)) return read_names(object, name, where + " '" + name + "'");
  if (!has_attribute(object, name + "0")) return std::nullopt;
  std::vector<std::string> names;
  for (int chunk = 0; has_attribute(object, name + std::to_string(chunk)); ++chunk) {
    CU3D_CHECK(chunk < kMaxAttributeChunks, "{}: more than {} chunks of '{}'", where,
               kMaxAttributeChunks, name);
    const std::string part = name + std::to_string(chunk);
    for (std::string& n : read_names(object, part, where + " '" + part + "'"))
      names.push_back(std::move(n));
  }
  return names;
}

// One float dataset as an f32 tensor, its declared size checked against the file first.
Tensor read_dataset(hid_t group, const std::string& name, const std::string& path,
                    const Reader& reader) {
  const std::string where = fmt::format("{}: dataset '{}'", reader.file, path);
  CU3D_CHECK(has_link(group, name), "{} is listed but missing", where);
  const Handle dataset(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose);
  CU3D_CHECK(dataset.valid(), "{} cannot be opened as a dataset", where);
  const Handle type(H5Dget_type(dataset.get()), H5Tclose);
  const size_t element = type.valid() ? H5Tget_size(type.get()) : 0;
  CU3D_CHECK(H5Tget_class(type.get()) == H5T_FLOAT && (element == 4 || element == 8),
             "{} is not float32 or float64; save the weights as floats", where);
  const Handle space(H5Dget_space(dataset.get()), H5Sclose);
  const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  // Keras weights have at most 5 axes (Conv3D kernels); our tensors hold up to kMaxDims.
  CU3D_CHECK(rank >= 0 && rank <= kMaxDims, "{} has {} axes; Keras weights have at most 5", where,
             rank);
  hsize_t dims[kMaxDims] = {};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  Shape shape;
  hsize_t bytes = element;
  for (int i = 0; i < rank; ++i) {
    // Checked one axis at a time so the product cannot overflow before it is compared.
    CU3D_CHECK(dims[i] <= reader.file_bytes && bytes * dims[i] <= reader.file_bytes,
               "{} declares more data than the {}-byte file holds", where, reader.file_bytes);
    bytes *= dims[i];
    shape.push_back(int64_t(dims[i]));
  }
  Tensor tensor = Tensor::empty(shape);
  CU3D_CHECK(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                     tensor.data<float>()) >= 0,
             "{} cannot be read (damaged file?)", where);
  return tensor;
}

std::vector<KerasLayer> read_keras2_layers(hid_t root, const std::vector<std::string>& layer_names,
                                           const Reader& reader) {
  std::vector<KerasLayer> layers;
  for (const std::string& name : layer_names) {
    const std::string where = fmt::format("{}: layer '{}{}'", reader.file, reader.prefix, name);
    CU3D_CHECK(!name.empty() && has_link(root, name), "{} is listed in layer_names but missing",
               where);
    const Handle group(H5Gopen2(root, name.c_str(), H5P_DEFAULT), H5Gclose);
    CU3D_CHECK(group.valid(), "{} is not a group", where);
    const auto weight_names = read_chunked_names(group.get(), "weight_names", where);
    CU3D_CHECK(weight_names.has_value(), "{} has no weight_names attribute", where);
    KerasLayer layer{name, {}};
    for (const std::string& weight : *weight_names) {
      const std::string path = reader.prefix + name + "/" + weight;
      layer.weights.emplace_back(path, read_dataset(group.get(), weight, path, reader));
    }
    if (!layer.weights.empty()) layers.push_back(std::move(layer));
  }
  return layers;
}

// Keras 3 stores a model's layers as conv3d, conv3d_1, ..., conv3d_10 in model order: ordered by
// the stem, then the number, they come back in that order.
std::pair<std::string, long> keras_name_order(const std::string& name) {
  const size_t underscore = name.rfind('_');
  if (underscore == std::string::npos || underscore + 1 == name.size() ||
      underscore + 10 < name.size() ||
      !std::all_of(name.begin() + long(underscore) + 1, name.end(),
                   [](unsigned char c) { return std::isdigit(c); }))
    return {name, 0};
  return {name.substr(0, underscore), std::stol(name.substr(underscore + 1)) + 1};
}

// Debian 12 ships HDF5 1.10, whose link iteration predates 1.12's H5Literate2.
#if H5_VERSION_GE(1, 12, 0)
using LinkInfo = H5L_info2_t;
#define CU3D_H5_ITERATE_LINKS H5Literate2
#else
using LinkInfo = H5L_info_t;
#define CU3D_H5_ITERATE_LINKS H5Literate
#endif

herr_t collect_link(hid_t, const char* name, const LinkInfo*, void* names) {
  static_cast<std::vector<std::string>*>(names)->emplace_back(name);
  return 0;
}

std::vector<KerasLayer> read_keras3_layers(hid_t root, const Reader& reader) {
  const Handle group(H5Gopen2(root, "layers", H5P_DEFAULT), H5Gclose);
  CU3D_CHECK(group.valid(), "{}: 'layers' is not a group", reader.file);
  std::vector<std::string> names;
  hsize_t index = 0;
  CU3D_H5_ITERATE_LINKS(group.get(), H5_INDEX_NAME, H5_ITER_INC, &index, collect_link, &names);
  std::stable_sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return keras_name_order(a) < keras_name_order(b);
  });
  std::vector<KerasLayer> layers;
  for (const std::string& name : names) {
    const std::string vars_path = "layers/" + name + "/vars";
    if (!has_link(group.get(), name + "/vars")) continue;
    const Handle vars(H5Gopen2(group.get(), (name + "/vars").c_str(), H5P_DEFAULT), H5Gclose);
    CU3D_CHECK(vars.valid(), "{}: '{}' is not a group", reader.file, vars_path);
    KerasLayer layer{name, {}};
    for (int i = 0; has_link(vars.get(), std::to_string(i)); ++i) {
      const std::string path = vars_path + "/" + std::to_string(i);
      layer.weights.emplace_back(path, read_dataset(vars.get(), std::to_string(i), path, reader));
    }
    if (!layer.weights.empty()) layers.push_back(std::move(layer));
  }
  return layers;
}

// HDF5 prints its own error stack to stderr by default; our errors say what went wrong instead.
void silence_hdf5_errors() {
  static const bool silenced = H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) >= 0;
  (void)silenced;
}

}  // namespace

KerasWeights read_keras_h5(const std::filesystem::path& path) {
  silence_hdf5_errors();
  const std::string file = path.string();
  std::error_code error;
  CU3D_CHECK(std::filesystem::is_regular_file(path, error), "Keras weights {}: no such file", file);
  const Handle h5(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  CU3D_CHECK(h5.valid(),
             "Keras weights {}: not a readable HDF5 file; give the .h5 that Keras's save_weights "
             "or save wrote",
             file);
  Reader reader{file, 0, ""};
  CU3D_CHECK(H5Fget_filesize(h5.get(), &reader.file_bytes) >= 0, "Keras weights {}: no size", file);

  if (auto names = read_chunked_names(h5.get(), "layer_names", file))
    return {"Keras 2 weights " + file, read_keras2_layers(h5.get(), *names, reader)};
  if (has_link(h5.get(), "model_weights")) {
    const Handle group(H5Gopen2(h5.get(), "model_weights", H5P_DEFAULT), H5Gclose);
    CU3D_CHECK(group.valid(), "Keras model {}: 'model_weights' is not a group", file);
    const auto names = read_chunked_names(group.get(), "layer_names", file + " model_weights");
    CU3D_CHECK(names.has_value(), "Keras model {}: model_weights has no layer_names attribute",
               file);
    reader.prefix = "model_weights/";
    return {"Keras model " + file, read_keras2_layers(group.get(), *names, reader)};
  }
  if (has_link(h5.get(), "layers"))
    return {"Keras 3 weights " + file, read_keras3_layers(h5.get(), reader)};
  throw Error(fmt::format(
      "{}: an HDF5 file with neither Keras 2's 'layer_names' nor Keras 3's 'layers' group; give "
      "the file Keras's save_weights (or save) wrote",
      file));
}

}  // namespace cu3d
