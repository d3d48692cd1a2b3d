// An official Step-Audio 2 checkpoint folder, loaded as published: config.json plus
// model.safetensors.index.json + shards (or a single model.safetensors), memory-mapped.
// open() validates everything the engine needs before any compute: every expected tensor present
// with the expected shape and a supported dtype (BF16, F16, F32), no unexpected tensors, shards
// present and intact, config values supported. Errors name the file, the tensor or the field, and
// say what was expected and what was found.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"

namespace stepaudio {

struct TextConfig {
  int64_t hidden_size = 3584;
  int64_t intermediate_size = 18944;
  int64_t num_hidden_layers = 28;
  int64_t num_attention_heads = 28;
  int64_t num_key_value_heads = 4;
  int64_t vocab_size = 158720;
  int64_t max_position_embeddings = 16384;
  double rms_norm_eps = 1e-6;
  double rope_theta = 1e6;
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

struct AudioEncoderConfig {
  int64_t n_mels = 128;
  int64_t n_audio_ctx = 1500;
  int64_t n_audio_state = 1280;
  int64_t n_audio_head = 20;
  int64_t n_audio_layer = 32;
  int64_t llm_dim = 3584;
  int64_t kernel_size = 3;
  int64_t adapter_stride = 2;
  int64_t adapter_hidden = 2048;  // hard-coded in the official Adaptor
};

struct ModelConfig {
  TextConfig text;
  AudioEncoderConfig audio;
  // Parses config.json text; `where` names the file in errors. Throws Error on bad JSON, missing
  // or mistyped fields and values the engine does not support.
  static ModelConfig parse(const std::string& json_text, const std::string& where);
  static ModelConfig load(const std::string& path);
};

// Name -> expected shape of every tensor the model needs, for this config.
std::map<std::string, Shape> expected_tensors(const ModelConfig& cfg);

class Checkpoint {
 public:
  // `dir` holds config.json and the weights. Throws Error (see the file comment).
  static Checkpoint open(const std::string& dir, bool show_progress = false);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  // A CPU tensor borrowing the memory-mapped shard (BF16, F16 or F32 as stored).
  Tensor get(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::string dir_;
  ModelConfig config_;
  std::vector<std::shared_ptr<SafetensorsFile>> shards_;
  std::map<std::string, size_t> where_;  // tensor name -> index into shards_
};

}  // namespace stepaudio
