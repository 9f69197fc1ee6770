// The shard target's entry point (declared in fuzz/parser_inputs.h).
#include "fuzz/parser_inputs.h"

#include <cstddef>
#include <filesystem>

#include "data/shard.h"

namespace cu3d::fuzz {

// data/shard: the manifest and shard index written by `prep`, read back by training. A missing
// separator leaves the later files empty, which the reader must reject like any other damage.
bool parse_shard_input(Bytes bytes) {
  std::string_view text = as_text(bytes);
  auto cut = [&](std::string_view separator) {
    const size_t at = text.find(separator);
    const std::string_view before = text.substr(0, at);
    text = at == std::string_view::npos ? std::string_view() : text.substr(at + separator.size());
    return before;
  };
  const std::filesystem::path& folder = scratch_folder();
  write_file(folder / "manifest.json", cut(kShardIndexSeparator));
  write_file(folder / "shard-00000.json", cut(kShardBinSeparator));
  const size_t bin_bytes = text.size();
  write_file(folder / "shard-00000.bin", text);
  return accepted([&] {
    const data::ShardSet shards(folder);
    data::Clip clip;
    for (size_t i = 0; i < shards.size(); ++i) {
      require(shards.video(i).bytes <= bin_bytes, "shard: a video is larger than its shard");
      shards.verify(i);  // reads every byte the index claims
      // Every frame: a copy from a raw shard, a decode of hostile bytes from a JPEG one, which may
      // refuse a corrupt frame (cu3d::Error) but must never read or write out of bounds.
      shards.read_video(i, clip);
    }
  });
}

}  // namespace cu3d::fuzz
