// UCF101 file names, v_<Class>_g<GG>_c<CC>.<ext>: the class, the group (clips cut from one long
// recording share it, so a leak-free split keeps a group on one side) and the clip number.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cu3d::data {

struct UcfName {
  std::string class_name;
  int group = 0;
  int clip = 0;
};

// Parses a file name (no directory) such as "v_ApplyEyeMakeup_g08_c01.avi"; nothing when the name
// does not follow the pattern. Class names may contain underscores (HMDB-style names do).
std::optional<UcfName> parse_ucf_name(std::string_view file_name);

// "v_<Class>_g<GG>_c<CC>.avi" with two-digit group and clip numbers, as UCF101 writes them.
std::string format_ucf_name(const UcfName& name);

}  // namespace cu3d::data
