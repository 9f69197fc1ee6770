// The ucf_name target's entry point (declared in fuzz/parser_inputs.h).
#include "fuzz/parser_inputs.h"

#include "data/ucf_name.h"

namespace cu3d::fuzz {

// data/ucf_name: file names found in a dataset folder (they give the class and the split group).
bool parse_ucf_name_input(Bytes bytes) {
  const auto name = data::parse_ucf_name(as_text(bytes));
  if (!name) return false;
  require(!name->class_name.empty(), "ucf name: empty class");
  require(name->group >= 0 && name->clip >= 0, "ucf name: the g/c numbers are digits only");
  const auto again = data::parse_ucf_name(data::format_ucf_name(*name));
  require(again && again->class_name == name->class_name && again->group == name->group &&
              again->clip == name->clip,
          "ucf name: format_ucf_name does not parse back to the same name");
  return true;
}

}  // namespace cu3d::fuzz
