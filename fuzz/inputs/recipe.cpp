// The recipe target's entry point (declared in fuzz/parser_inputs.h).
#include "fuzz/parser_inputs.h"

#include <nlohmann/json.hpp>

#include "data/recipe.h"

namespace cu3d::fuzz {

// data/recipe: recipes inside shard manifests and checkpoints. What is accepted must survive the
// JSON round trip unchanged, or prediction would cut clips differently from training.
bool parse_recipe_input(Bytes bytes) {
  const nlohmann::json json = nlohmann::json::parse(as_text(bytes), nullptr, false);
  if (json.is_discarded()) return false;
  return accepted([&] {
    const data::Recipe recipe = data::recipe_from_json(json, "fuzz-recipe.json");
    const nlohmann::json written = data::recipe_to_json(recipe);
    require(data::recipe_to_json(data::recipe_from_json(written, "round trip")) == written,
            "recipe: does not survive recipe_to_json -> recipe_from_json");
  });
}

}  // namespace cu3d::fuzz
