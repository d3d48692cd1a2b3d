// An official Step-Audio 2 checkpoint folder, loaded as published: config.json plus
// model.safetensors.index.json + shards (or a single model.safetensors), memory-mapped.
// open() validates everything the engine needs before any compute: every expected tensor present
// with the expected shape and a supported dtype (BF16, F16, F32), no unexpected tensors, shards
// present and intact, config values supported. Errors name the file, the tensor or the field, and
// say what was expected and what was found.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"

namespace stepaudio {

// Defaults are the values of the official Step-Audio-2-mini config.json; parse() uses them for
// optional fields that are absent (see config.cpp for which fields are required).
struct TextConfig {
  int64_t hidden_size = 3584;
  int64_t intermediate_size = 18944;
  int64_t num_hidden_layers = 28;
  int64_t num_attention_heads = 28;
  int64_t num_key_value_heads = 4;  // == num_attention_groups in the file
  int64_t vocab_size = 158720;
  int64_t max_position_embeddings = 16384;
  int64_t max_seq_len = 16384;
  double rms_norm_eps = 1e-6;
  double rope_theta = 1e6;
  int64_t eos_token_id = 151643;
  int64_t pad_token_id = 151643;
  std::string torch_dtype = "bfloat16";
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

struct AudioEncoderConfig {
  int64_t n_mels = 128;
  int64_t n_audio_ctx = 1500;
  int64_t n_audio_state = 1280;
  int64_t n_audio_head = 20;
  int64_t n_audio_layer = 32;
  int64_t n_codebook_size = 4096;  // stored in the file, unused by the model
  int64_t llm_dim = 3584;
  int64_t kernel_size = 3;
  int64_t adapter_stride = 2;
  int64_t adapter_hidden = 2048;  // hard-coded in the official Adaptor, not in config.json
};

struct ModelConfig {
  TextConfig text;
  AudioEncoderConfig audio;
  // Parses config.json text; `where` names the file in errors. Throws Error on bad JSON, missing
  // or mistyped fields and values the engine does not support.
  static ModelConfig parse(const std::string& json_text, const std::string& where);
  static ModelConfig load(const std::string& path);
  // Throws Error (prefixed with `where`) when a value is out of what the engine supports.
  void validate(const std::string& where) const;
};

// Every tensor of the model with its shape, in the official registration order (embed_tokens,
// decoder layers, norm, encoder, adapter, lm_head), which is also the order the official shards
// are packed in.
std::vector<std::pair<std::string, Shape>> tensor_layout(const ModelConfig& cfg);
// Name -> expected shape of every tensor the model needs, for this config.
std::map<std::string, Shape> expected_tensors(const ModelConfig& cfg);

class Checkpoint {
 public:
  // `dir` holds config.json and the weights. Throws Error (see the file comment). With
  // show_progress, a progress bar is drawn on stderr when it is a terminal and opening is slow.
  static Checkpoint open(const std::string& dir, bool show_progress = false);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  // A CPU tensor borrowing the memory-mapped shard (BF16, F16 or F32 as stored).
  Tensor get(const std::string& name) const;
  // The file that holds `name` (throws Error when absent).
  const std::string& file_of(const std::string& name) const;
  std::vector<std::string> names() const;
  size_t num_shards() const { return shards_.size(); }
  uint64_t total_bytes() const { return total_bytes_; }  // sum of all tensor bytes

 private:
  std::string dir_;
  ModelConfig config_;
  std::vector<std::shared_ptr<SafetensorsFile>> shards_;
  std::map<std::string, size_t> where_;  // tensor name -> index into shards_
  uint64_t total_bytes_ = 0;
};

}  // namespace stepaudio
