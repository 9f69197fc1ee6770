// The split_list target's entry point (declared in fuzz/parser_inputs.h).
#include "fuzz/parser_inputs.h"

#include <string>
#include <string_view>

#include "data/split_list.h"

namespace cu3d::fuzz {

namespace {

// A path component the split list lets through becomes a folder or file name under the dataset.
bool is_confined(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\\') == std::string_view::npos;
}

}  // namespace

// data/split_list: UCF101's classInd.txt and train/test lists. Every input goes to both parsers;
// accepted when either takes it.
bool parse_split_list_input(Bytes bytes) {
  const std::string_view text = as_text(bytes);
  const bool classes_ok = accepted([&] {
    for (const std::string& name : data::parse_class_index(text, "classInd.txt"))
      require(is_confined(name), "split list: class name leaves the dataset folder");
  });
  const bool list_ok = accepted([&] {
    for (const data::ListEntry& entry : data::parse_split_list(text, "trainlist01.txt")) {
      const size_t slash = entry.relative_path.find('/');
      require(slash != std::string::npos &&
                  is_confined(std::string_view(entry.relative_path).substr(0, slash)) &&
                  is_confined(std::string_view(entry.relative_path).substr(slash + 1)),
              "split list: path is not <Class>/<file> inside the dataset");
      require(entry.relative_path.starts_with(entry.class_name + "/"),
              "split list: class name differs from the path's folder");
      require(entry.label >= 0, "split list: negative label");
    }
  });
  return classes_ok || list_ok;
}

}  // namespace cu3d::fuzz
