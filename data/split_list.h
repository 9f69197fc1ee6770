// The UCF101 split files, parsed as hostile input: a malformed line is a cu3d::Error naming the
// file and line, never a silent skip or a path outside the dataset.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cu3d::data {

// classInd.txt: lines "<index> <ClassName>" with indices 1, 2, 3... in order; blank lines and
// CRLF endings (as UCF101 ships them) are accepted. `source` names the file in error messages.
std::vector<std::string> parse_class_index(std::string_view text, const std::string& source);

// A trainlist/testlist line: "<Class>/<file> [<1-based label>]"; label 0 when absent (testlists).
struct ListEntry {
  std::string class_name;
  std::string relative_path;
  int label = 0;
  int line = 0;
};
std::vector<ListEntry> parse_split_list(std::string_view text, const std::string& source);

}  // namespace cu3d::data
