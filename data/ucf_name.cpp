#include "data/ucf_name.h"

#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace cu3d::data {
namespace {

// Parses "<letter><digits>" such as "g08"; nothing for anything else or numbers above 9999.
std::optional<int> parse_tagged_number(std::string_view text, char tag) {
  // from_chars alone would take a sign, so "g-2" would give a negative group.
  if (text.size() < 2 || text.size() > 5 || text[0] != tag || !std::isdigit(uint8_t(text[1])))
    return std::nullopt;
  int value = 0;
  const auto [end, error] = std::from_chars(text.data() + 1, text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<UcfName> parse_ucf_name(std::string_view file_name) {
  const size_t dot = file_name.rfind('.');
  const std::string_view stem = file_name.substr(0, dot);
  if (!stem.starts_with("v_")) return std::nullopt;
  const size_t clip_sep = stem.rfind('_');
  if (clip_sep == std::string_view::npos || clip_sep < 2) return std::nullopt;
  const size_t group_sep = stem.rfind('_', clip_sep - 1);
  if (group_sep == std::string_view::npos || group_sep <= 2) return std::nullopt;
  const auto group = parse_tagged_number(stem.substr(group_sep + 1, clip_sep - group_sep - 1), 'g');
  const auto clip = parse_tagged_number(stem.substr(clip_sep + 1), 'c');
  if (!group || !clip) return std::nullopt;
  return UcfName{std::string(stem.substr(2, group_sep - 2)), *group, *clip};
}

std::string format_ucf_name(const UcfName& name) {
  return fmt::format("v_{}_g{:02d}_c{:02d}.avi", name.class_name, name.group, name.clip);
}

}  // namespace cu3d::data
