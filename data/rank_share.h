// Which of an epoch's items a rank of a data-parallel job takes.
//
// Training: the epoch's order is padded by repeating its first items until the count divides by
// the world size (only then; the loader reports how many), and every global batch of
// batch_size x world items is cut into `world` consecutive equal parts, part r for rank r. So the
// ranks' shares are disjoint and cover the epoch, every rank runs the same number of steps (the
// collectives need that), and rank r's batch b holds exactly the clips a single process with
// batch batch_size x world would put in positions [r*B, (r+1)*B) of its batch b: averaging the
// ranks' gradients gives the single process's gradient.
//
// Evaluation: whole videos (all their windows) go to rank video % world, so that each video's
// scores are averaged on one rank; nothing is padded, ranks may get different counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cu3d::data {

// Positions into an epoch order of `items` entries (positions >= items are the padding: they
// stand for position - items). Throws cu3d::Error for a rank outside the world.
std::vector<std::size_t> train_share(std::size_t items, int batch_size, int rank, int world);

// Items a training epoch is padded with for `world` ranks.
std::size_t train_padding(std::size_t items, int world);

}  // namespace cu3d::data
