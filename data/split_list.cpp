#include "data/split_list.h"

#include <charconv>
#include <set>

#include "kernels/error.h"

namespace cu3d::data {
namespace {

// Longer lines are not split lists (UCF101's longest is under 80 characters).
constexpr size_t kMaxLineLength = 4096;

// Calls visit(line_number, line) for each non-blank line, without the CR of CRLF endings.
template <class Visit>
void for_each_line(std::string_view text, const std::string& source, Visit visit) {
  int number = 0;
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    CU3D_CHECK(line.size() <= kMaxLineLength, "{}:{}: line longer than {} characters", source,
               number, kMaxLineLength);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    visit(number, line);
  }
}

// Splits "a b" at the first space; the second part is empty when there is none.
std::pair<std::string_view, std::string_view> split_at_space(std::string_view line) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos) return {line, {}};
  return {line.substr(0, space), line.substr(space + 1)};
}

int parse_positive(std::string_view text, const std::string& source, int line) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  CU3D_CHECK(error == std::errc() && end == text.data() + text.size() && value > 0,
             "{}:{}: '{}' is not a positive integer", source, line, text);
  return value;
}

// A class name becomes a folder name: nothing that could leave the dataset folder.
bool is_safe_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of("/\\ \t") == std::string_view::npos;
}

}  // namespace

std::vector<std::string> parse_class_index(std::string_view text, const std::string& source) {
  std::vector<std::string> classes;
  std::set<std::string, std::less<>> seen;
  for_each_line(text, source, [&](int line, std::string_view content) {
    const auto [index, name] = split_at_space(content);
    CU3D_CHECK(parse_positive(index, source, line) == int(classes.size()) + 1,
               "{}:{}: class index {} out of order; expected {}", source, line, index,
               classes.size() + 1);
    CU3D_CHECK(is_safe_name(name), "{}:{}: '{}' is not a valid class name", source, line, name);
    CU3D_CHECK(seen.insert(std::string(name)).second, "{}:{}: class '{}' listed twice", source,
               line, name);
    classes.emplace_back(name);
  });
  CU3D_CHECK(!classes.empty(), "{}: no classes listed", source);
  return classes;
}

std::vector<ListEntry> parse_split_list(std::string_view text, const std::string& source) {
  std::vector<ListEntry> entries;
  for_each_line(text, source, [&](int line, std::string_view content) {
    const auto [path, label] = split_at_space(content);
    const size_t slash = path.find('/');
    CU3D_CHECK(
        slash != std::string_view::npos && path.find('/', slash + 1) == std::string_view::npos,
        "{}:{}: '{}' is not '<Class>/<file>'", source, line, path);
    const std::string_view class_name = path.substr(0, slash), file = path.substr(slash + 1);
    CU3D_CHECK(is_safe_name(class_name) && is_safe_name(file), "{}:{}: unsafe path '{}'", source,
               line, path);
    ListEntry entry{std::string(class_name), std::string(path), 0, line};
    if (!label.empty()) entry.label = parse_positive(label, source, line);
    entries.push_back(std::move(entry));
  });
  CU3D_CHECK(!entries.empty(), "{}: no videos listed", source);
  return entries;
}

}  // namespace cu3d::data
