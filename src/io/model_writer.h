// Writes a Step-Audio 2 checkpoint with random weights in the official layout: config.json (the
// official keys and nesting), model-0000K-of-0000N.safetensors shards packed in registration
// order under a byte limit, model.safetensors.index.json, and the tokenizer files. Used to make
// test models of any size, up to the full 8.3 B-parameter one, without the real weights.
// Weights are BF16 draws from a seeded counter-based RNG, so the same seed gives the same bytes
// whatever the thread count or shard size. Shards are streamed (the model is never held in
// memory) and each file is written to a temporary name and renamed into place.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"

namespace stepaudio {

struct ModelWriteOptions {
  uint64_t seed = 1234;
  // Most tensor bytes per shard (a larger single tensor gets a shard of its own), as in the
  // official checkpoint, which was saved with 5 GB shards.
  uint64_t shard_bytes = 5'000'000'000;
  std::string tokenizer_dir;  // empty: default_tokenizer_dir(); copied files are validated
  bool copy_tokenizer = true;
  bool show_progress = false;  // progress bar on stderr (only when it is a terminal)
};

struct ModelWriteSummary {
  uint64_t params = 0;
  uint64_t bytes = 0;  // tensor bytes, = metadata.total_size
  size_t shards = 0;
  std::vector<std::string> files;  // every file written, relative to the folder
};

// "tiny" (the sizes of golden/tiny-a), "mid" (~0.6 B params, Qwen2.5-0.5B-like decoder) or
// "full" (the official Step-Audio-2-mini sizes). Throws Error for other names.
ModelConfig preset_config(const std::string& name);

// config.json text with exactly the keys and nesting of the official file.
std::string config_json(const ModelConfig& cfg);

// Splits `layout` (in order) into shards: tensors are added to the current shard until the next
// one would take it past `shard_bytes`. Returns the layout indices of each shard.
std::vector<std::vector<size_t>> plan_shards(
    const std::vector<std::pair<std::string, Shape>>& layout, DType dtype, uint64_t shard_bytes);
std::string shard_file_name(size_t k, size_t n);  // k is 1-based: model-00001-of-00004.safetensors

// <prefix>/share/stepaudio/tokenizer beside the running executable's prefix, else the source
// tree's assets/tokenizer compiled in as STEPAUDIO_ASSETS_DIR. Throws Error when neither exists.
std::string default_tokenizer_dir();

// The files a model folder needs from the tokenizer (tokenizer.json is copied too when present).
const std::vector<std::string>& tokenizer_files();

// Writes the model into `dir` (created if needed). Throws Error naming the file on any failure;
// files already complete stay, no partial file is left.
ModelWriteSummary write_random_model(const std::string& dir, const ModelConfig& cfg,
                                     const ModelWriteOptions& opt = {});

// The initial distribution of each tensor: N(mean, std) (norm weights ~1, everything else small).
std::pair<float, float> init_mean_std(const std::string& tensor_name);

// Fills out[0, n) with BF16 values of tensor `stream` at element offset `first`; the value at an
// element index depends only on (seed, stream, index).
void fill_random_bf16(uint16_t* out, uint64_t first, uint64_t n, uint64_t seed, uint64_t stream,
                      float mean, float std);

}  // namespace stepaudio
