#include "io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/progress.h"

namespace stepaudio {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<std::pair<std::string, Shape>> tensor_layout(const ModelConfig& cfg) {
  const TextConfig& t = cfg.text;
  const AudioEncoderConfig& a = cfg.audio;
  const int64_t H = t.hidden_size, I = t.intermediate_size, V = t.vocab_size;
  const int64_t KV = t.num_key_value_heads * t.head_dim();
  const int64_t S = a.n_audio_state, K = a.kernel_size;
  std::vector<std::pair<std::string, Shape>> out;
  auto add = [&out](std::string name, Shape s) { out.emplace_back(std::move(name), std::move(s)); };

  add("model.embed_tokens.weight", {V, H});
  for (int64_t i = 0; i < t.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "self_attn.q_proj.weight", {H, H});
    add(p + "self_attn.q_proj.bias", {H});
    add(p + "self_attn.k_proj.weight", {KV, H});
    add(p + "self_attn.k_proj.bias", {KV});
    add(p + "self_attn.v_proj.weight", {KV, H});
    add(p + "self_attn.v_proj.bias", {KV});
    add(p + "self_attn.o_proj.weight", {H, H});
    add(p + "mlp.gate_proj.weight", {I, H});
    add(p + "mlp.up_proj.weight", {I, H});
    add(p + "mlp.down_proj.weight", {H, I});
    add(p + "input_layernorm.weight", {H});
    add(p + "post_attention_layernorm.weight", {H});
  }
  add("model.norm.weight", {H});

  add("encoder.conv1.weight", {S, a.n_mels, 3});
  add("encoder.conv1.bias", {S});
  add("encoder.conv2.weight", {S, S, 3});
  add("encoder.conv2.bias", {S});
  add("encoder.positional_embedding.weight", {a.n_audio_ctx, S});
  for (int64_t b = 0; b < a.n_audio_layer; ++b) {
    const std::string p = "encoder.blocks." + std::to_string(b) + ".";
    add(p + "attn.query.weight", {S, S});
    add(p + "attn.query.bias", {S});
    add(p + "attn.key.weight", {S, S});
    add(p + "attn.value.weight", {S, S});
    add(p + "attn.value.bias", {S});
    add(p + "attn.out.weight", {S, S});
    add(p + "attn.out.bias", {S});
    add(p + "attn_ln.weight", {S});
    add(p + "attn_ln.bias", {S});
    add(p + "mlp.0.weight", {4 * S, S});
    add(p + "mlp.0.bias", {4 * S});
    add(p + "mlp.2.weight", {S, 4 * S});
    add(p + "mlp.2.bias", {S});
    add(p + "mlp_ln.weight", {S});
    add(p + "mlp_ln.bias", {S});
  }
  add("encoder.after_norm.weight", {S});
  add("encoder.after_norm.bias", {S});

  add("adapter.conv.weight", {S, S, K});
  add("adapter.conv.bias", {S});
  add("adapter.linear1.weight", {a.adapter_hidden, S});
  add("adapter.linear1.bias", {a.adapter_hidden});
  add("adapter.linear2.weight", {a.llm_dim, a.adapter_hidden});
  add("adapter.linear2.bias", {a.llm_dim});

  add("lm_head.weight", {V, H});
  return out;
}

std::map<std::string, Shape> expected_tensors(const ModelConfig& cfg) {
  std::map<std::string, Shape> m;
  for (auto& [name, shape] : tensor_layout(cfg)) m.emplace(std::move(name), std::move(shape));
  return m;
}

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

// Problems are collected so that one run reports every broken tensor, not just the first.
class Problems {
 public:
  void add(std::string p) { list_.push_back(std::move(p)); }
  bool empty() const { return list_.empty(); }
  [[noreturn]] void raise(const std::string& dir) const {
    if (list_.size() == 1) fail("{}", list_[0]);
    std::string msg = fmt::format("{}: the checkpoint has {} problems:", dir, list_.size());
    constexpr size_t kShown = 20;
    for (size_t i = 0; i < list_.size() && i < kShown; ++i) msg += "\n  " + list_[i];
    if (list_.size() > kShown) msg += fmt::format("\n  ... and {} more", list_.size() - kShown);
    fail("{}", msg);
  }
  void raise_if_any(const std::string& dir) const {
    if (!empty()) raise(dir);
  }

 private:
  std::vector<std::string> list_;
};

struct Index {
  std::map<std::string, std::string> weight_map;  // tensor -> shard file name
  bool has_total = false;
  uint64_t total_size = 0;
};

Index read_index(const std::string& path) {
  const MappedFile f(path);
  json j;
  try {
    j = json::parse(f.data() ? f.data() : "", f.data() ? f.data() + f.size() : nullptr);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON ({})", path, e.what());
  }
  if (!j.is_object()) fail("{}: expected a JSON object with a weight_map", path);
  Index idx;
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object())
    fail("{}: weight_map: missing or not an object (expected tensor name -> shard file name)",
         path);
  for (auto& [name, v] : wm->items()) {
    if (!v.is_string())
      fail("{}: weight_map entry for tensor '{}': expected a shard file name, found {}", path, name,
           v.is_structured() ? std::string(v.type_name()) : v.dump());
    const std::string shard = v.get<std::string>();
    // Shards must live in the checkpoint folder; a path here would let an index read any file.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
      fail(
          "{}: weight_map entry for tensor '{}': expected a file name in the checkpoint folder, "
          "found \"{}\"",
          path, name, shard);
    idx.weight_map.emplace(name, shard);
  }
  if (auto md = j.find("metadata"); md != j.end() && !md->is_null()) {
    if (!md->is_object()) fail("{}: metadata: expected an object", path);
    if (auto ts = md->find("total_size"); ts != md->end()) {
      if (!ts->is_number_unsigned())
        fail("{}: metadata.total_size: expected a non-negative integer (bytes), found {}", path,
             ts->is_structured() ? std::string(ts->type_name()) : ts->dump());
      idx.has_total = true;
      idx.total_size = ts->get<uint64_t>();
    }
  }
  return idx;
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& dir_in, bool show_progress) {
  const fs::path dir(dir_in);
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail("{}: checkpoint folder does not exist", dir_in);
  if (!fs::is_directory(dir, ec))
    fail("{}: expected a checkpoint folder (config.json + safetensors), found a file", dir_in);

  Checkpoint ck;
  ck.dir_ = dir_in;
  ck.config_ = ModelConfig::load((dir / "config.json").string());

  const std::string index_path = (dir / kIndexName).string();
  const bool sharded = fs::exists(index_path, ec);
  Index idx;
  std::vector<std::string> shard_names;
  if (sharded) {
    idx = read_index(index_path);
    std::set<std::string> names;
    for (auto& [t, s] : idx.weight_map) names.insert(s);
    shard_names.assign(names.begin(), names.end());
    for (const std::string& s : shard_names) {
      if (fs::exists(dir / s, ec)) continue;
      std::string first;
      size_t count = 0;
      for (auto& [t, sh] : idx.weight_map)
        if (sh == s && count++ == 0) first = t;
      fail("{}: maps {} tensors (first '{}') to shard {}, which is missing: {} does not exist",
           index_path, count, first, s, (dir / s).string());
    }
  } else if (fs::exists(dir / kSingleName, ec)) {
    shard_names.push_back(kSingleName);
  } else {
    fail("{}: no weights: expected {} (with its shards) or {}", dir_in, kIndexName, kSingleName);
  }

  uint64_t file_bytes = 0;
  for (const std::string& s : shard_names) file_bytes += fs::file_size(dir / s, ec);
  Progress progress("checking " + dir.filename().string(), file_bytes, show_progress);
  for (const std::string& s : shard_names) {
    const std::string path = (dir / s).string();
    ck.shards_.push_back(std::make_shared<SafetensorsFile>(SafetensorsFile::open(path)));
    progress.add(fs::file_size(path, ec));
  }

  // Consistency of the index with what the shards hold.
  Problems problems;
  uint64_t held = 0;
  for (size_t i = 0; i < ck.shards_.size(); ++i) {
    const SafetensorsFile& f = *ck.shards_[i];
    for (auto& [name, info] : f.tensors()) {
      held += info.end - info.begin;
      if (sharded) {
        auto it = idx.weight_map.find(name);
        if (it == idx.weight_map.end()) {
          problems.add(fmt::format("{}: contains tensor '{}', which {} does not list", f.path(),
                                   name, kIndexName));
          continue;
        }
        if (it->second != shard_names[i]) {
          problems.add(fmt::format("{}: contains tensor '{}', which {} maps to {}", f.path(), name,
                                   kIndexName, it->second));
          continue;
        }
      }
      ck.where_.emplace(name, i);
    }
  }
  if (sharded) {
    for (auto& [name, s] : idx.weight_map) {
      const size_t i = static_cast<size_t>(
          std::lower_bound(shard_names.begin(), shard_names.end(), s) - shard_names.begin());
      if (!ck.shards_[i]->has(name))
        problems.add(fmt::format("{}: does not contain tensor '{}', which {} maps to it",
                                 ck.shards_[i]->path(), name, kIndexName));
    }
    if (problems.empty() && idx.has_total && idx.total_size != held)
      problems.add(
          fmt::format("{}: metadata.total_size is {} bytes, but the shards hold {} bytes "
                      "of tensors",
                      index_path, idx.total_size, held));
  }
  problems.raise_if_any(dir_in);
  ck.total_bytes_ = held;

  // The tensors against what this config needs.
  const std::map<std::string, Shape> want = expected_tensors(ck.config_);
  const std::string listed_in = (dir / (sharded ? kIndexName : kSingleName)).string();
  for (auto& [name, shape] : want) {
    auto it = ck.where_.find(name);
    if (it == ck.where_.end()) {
      problems.add(fmt::format("{}: tensor '{}' {} is missing: {} does not list it", dir_in, name,
                               shape_str(shape), listed_in));
      continue;
    }
    const SafetensorsFile& f = *ck.shards_[it->second];
    const TensorInfo& info = f.tensors().at(name);
    if (info.shape != shape)
      problems.add(fmt::format("{}: tensor '{}': expected shape {}, found {}", f.path(), name,
                               shape_str(shape), shape_str(info.shape)));
    if (info.dtype != DType::BF16 && info.dtype != DType::F16 && info.dtype != DType::F32)
      problems.add(fmt::format("{}: tensor '{}': expected dtype BF16, F16 or F32, found {}",
                               f.path(), name, dtype_name(info.dtype)));
  }
  for (auto& [name, i] : ck.where_)
    if (!want.count(name))
      problems.add(
          fmt::format("{}: unexpected tensor '{}': the model described by config.json "
                      "has no such parameter",
                      ck.shards_[i]->path(), name));
  problems.raise_if_any(dir_in);
  progress.finish();
  return ck;
}

Tensor Checkpoint::get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail("{}: the checkpoint has no tensor named '{}'", dir_, name);
  return shards_[it->second]->get(name);
}

const std::string& Checkpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail("{}: the checkpoint has no tensor named '{}'", dir_, name);
  return shards_[it->second]->path();
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> n;
  n.reserve(where_.size());
  for (auto& [name, i] : where_) n.push_back(name);
  return n;
}

}  // namespace stepaudio
