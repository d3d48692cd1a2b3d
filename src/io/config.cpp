// config.json of a Step-Audio 2 checkpoint, in the StepAudio2ForCausalLM form: top-level
// architectures / model_type, a `text_config` (Qwen2 decoder) and an `audio_encoder_config`.
//
// Fields that decide tensor shapes are required: a default there would silently describe a
// different model than the one in the shards. Everything else may be absent and then takes the
// value of the official config.json (num_attention_groups and max_seq_len follow
// num_key_value_heads and max_position_embeddings, llm_dim follows hidden_size).
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/mapped_file.h"

namespace stepaudio {

namespace {

using json = nlohmann::json;

// A short, non-recursive rendering of a JSON value for error messages (arbitrary input may be
// huge or deeply nested, so never dump() containers).
std::string brief(const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      return fmt::format("an object with {} key{}", v.size(), v.size() == 1 ? "" : "s");
    case json::value_t::array:
      return fmt::format("an array of {} item{}", v.size(), v.size() == 1 ? "" : "s");
    case json::value_t::string: {
      std::string s = v.get<std::string>();
      if (s.size() > 40) s = s.substr(0, 40) + "...";
      return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
    }
    default:
      return v.dump();
  }
}

class Fields {
 public:
  Fields(const json& obj, std::string where, std::string section)
      : obj_(obj), where_(std::move(where)), section_(std::move(section)) {}

  const json* find(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  std::string name(const char* key) const {
    return section_.empty() ? std::string(key) : section_ + "." + key;
  }

  // Positive integer in [1, max]; `dflt` < 0 means required.
  int64_t integer(const char* key, int64_t dflt, int64_t max) const {
    const json* v = find(key);
    if (!v) {
      if (dflt < 0) fail("{}: {}: missing; expected a positive integer", where_, name(key));
      return dflt;
    }
    if (!v->is_number_integer() ||
        (v->is_number_unsigned() ? v->get<uint64_t>() == 0 : v->get<int64_t>() <= 0))
      fail("{}: {}: expected a positive integer, found {}", where_, name(key), brief(*v));
    if (v->is_number_unsigned() ? v->get<uint64_t>() > static_cast<uint64_t>(max)
                                : v->get<int64_t>() > max)
      fail("{}: {}: {} is larger than the supported maximum {}", where_, name(key), brief(*v), max);
    return v->get<int64_t>();
  }

  // Token ids: a non-negative integer or null (keeps the default).
  int64_t token_id(const char* key, int64_t dflt) const {
    const json* v = find(key);
    if (!v || v->is_null()) return dflt;
    if (!v->is_number_integer() || (!v->is_number_unsigned() && v->get<int64_t>() < 0) ||
        (v->is_number_unsigned() && v->get<uint64_t>() > (uint64_t{1} << 40)))
      fail("{}: {}: expected a token id (a non-negative integer), found {}", where_, name(key),
           brief(*v));
    return v->get<int64_t>();
  }

  // Finite number in (0, max].
  double positive(const char* key, double dflt, double max) const {
    const json* v = find(key);
    if (!v) return dflt;
    if (!v->is_number() || !std::isfinite(v->get<double>()) || v->get<double>() <= 0)
      fail("{}: {}: expected a positive number, found {}", where_, name(key), brief(*v));
    if (v->get<double>() > max)
      fail("{}: {}: {} is larger than the supported maximum {}", where_, name(key), brief(*v), max);
    return v->get<double>();
  }

 private:
  const json& obj_;
  std::string where_, section_;
};

constexpr int64_t kMaxWidth = 1 << 16;  // hidden sizes, head counts
constexpr int64_t kMaxInner = 1 << 20;  // MLP widths
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxVocab = 1 << 22;
constexpr int64_t kMaxPositions = 1 << 24;
// The tokenizer (shared by every model size) produces ids up to <audio_6655> = 158351.
constexpr int64_t kMinVocab = 158352;
// One 25 s chunk gives 1251 encoder positions after the stride-2 conv (spec §3).
constexpr int64_t kMinAudioCtx = 1251;

const json& section(const json& root, const char* key, const std::string& where) {
  auto it = root.find(key);
  if (it == root.end()) fail("{}: {}: missing; expected an object", where, key);
  if (!it->is_object()) fail("{}: {}: expected an object, found {}", where, key, brief(*it));
  return *it;
}

}  // namespace

ModelConfig ModelConfig::parse(const std::string& text, const std::string& where) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON ({})", where, e.what());
  }
  if (!root.is_object())
    fail("{}: expected a JSON object at the top level, found {}", where, brief(root));

  if (auto it = root.find("architectures"); it != root.end()) {
    if (!it->is_array() || it->size() != 1 || !(*it)[0].is_string() ||
        (*it)[0].get<std::string>() != "StepAudio2ForCausalLM")
      fail("{}: architectures: expected [\"StepAudio2ForCausalLM\"], found {}{}", where, brief(*it),
           it->is_array() && !it->empty() ? " starting with " + brief((*it)[0]) : std::string());
  }
  if (auto it = root.find("model_type"); it != root.end()) {
    if (!it->is_string() || it->get<std::string>() != "step_audio_2")
      fail("{}: model_type: expected \"step_audio_2\", found {}", where, brief(*it));
  }

  ModelConfig cfg;
  TextConfig& t = cfg.text;
  const Fields tf(section(root, "text_config", where), where, "text_config");
  t.hidden_size = tf.integer("hidden_size", -1, kMaxWidth);
  t.intermediate_size = tf.integer("intermediate_size", -1, kMaxInner);
  t.num_hidden_layers = tf.integer("num_hidden_layers", -1, kMaxLayers);
  t.num_attention_heads = tf.integer("num_attention_heads", -1, kMaxWidth);
  t.num_key_value_heads = tf.integer("num_key_value_heads", -1, kMaxWidth);
  const int64_t groups = tf.integer("num_attention_groups", t.num_key_value_heads, kMaxWidth);
  if (groups != t.num_key_value_heads)
    fail(
        "{}: text_config.num_attention_groups: expected the same value as num_key_value_heads "
        "({}), found {}",
        where, t.num_key_value_heads, groups);
  t.vocab_size = tf.integer("vocab_size", -1, kMaxVocab);
  t.max_position_embeddings =
      tf.integer("max_position_embeddings", t.max_position_embeddings, kMaxPositions);
  t.max_seq_len = tf.integer("max_seq_len", t.max_position_embeddings, kMaxPositions);
  t.rms_norm_eps = tf.positive("rms_norm_eps", t.rms_norm_eps, 1.0);
  t.rope_theta = tf.positive("rope_theta", t.rope_theta, 1e12);
  t.eos_token_id = tf.token_id("eos_token_id", t.eos_token_id);
  t.pad_token_id = tf.token_id("pad_token_id", t.pad_token_id);
  if (const json* v = tf.find("rope_scaling"); v && !v->is_null())
    fail("{}: text_config.rope_scaling: expected null (rope scaling is not supported), found {}",
         where, brief(*v));
  if (const json* v = tf.find("torch_dtype"); v && !v->is_null()) {
    const std::string s = v->is_string() ? v->get<std::string>() : std::string();
    if (s != "bfloat16" && s != "float16" && s != "float32")
      fail(
          "{}: text_config.torch_dtype: expected \"bfloat16\", \"float16\" or \"float32\", "
          "found {}",
          where, brief(*v));
    t.torch_dtype = s;
  }

  AudioEncoderConfig& a = cfg.audio;
  const Fields af(section(root, "audio_encoder_config", where), where, "audio_encoder_config");
  a.n_mels = af.integer("n_mels", a.n_mels, kMaxWidth);
  a.n_audio_ctx = af.integer("n_audio_ctx", a.n_audio_ctx, kMaxPositions);
  a.n_audio_state = af.integer("n_audio_state", -1, kMaxWidth);
  a.n_audio_head = af.integer("n_audio_head", -1, kMaxWidth);
  a.n_audio_layer = af.integer("n_audio_layer", -1, kMaxLayers);
  a.n_codebook_size = af.integer("n_codebook_size", a.n_codebook_size, kMaxVocab);
  a.llm_dim = af.integer("llm_dim", t.hidden_size, kMaxWidth);
  a.kernel_size = af.integer("kernel_size", a.kernel_size, kMaxWidth);
  a.adapter_stride = af.integer("adapter_stride", a.adapter_stride, kMaxWidth);

  cfg.validate(where);
  return cfg;
}

void ModelConfig::validate(const std::string& where) const {
  const TextConfig& t = text;
  const AudioEncoderConfig& a = audio;
  if (t.hidden_size % t.num_attention_heads != 0)
    fail("{}: text_config.hidden_size {} is not divisible by num_attention_heads {}", where,
         t.hidden_size, t.num_attention_heads);
  if (t.num_attention_heads % t.num_key_value_heads != 0)
    fail("{}: text_config.num_attention_heads {} is not divisible by num_key_value_heads {}", where,
         t.num_attention_heads, t.num_key_value_heads);
  if (t.head_dim() % 2 != 0)
    fail(
        "{}: text_config: head_dim = hidden_size / num_attention_heads = {} is odd; rotary "
        "embeddings need an even head_dim",
        where, t.head_dim());
  if (t.vocab_size < kMinVocab)
    fail(
        "{}: text_config.vocab_size {} is too small: the Step-Audio 2 tokenizer uses ids up to "
        "{}, so at least {} rows are needed",
        where, t.vocab_size, kMinVocab - 1, kMinVocab);
  if (t.eos_token_id >= t.vocab_size || t.pad_token_id >= t.vocab_size)
    fail("{}: text_config: eos_token_id {} / pad_token_id {} must be below vocab_size {}", where,
         t.eos_token_id, t.pad_token_id, t.vocab_size);
  if (a.n_mels != 128)
    fail(
        "{}: audio_encoder_config.n_mels: expected 128 (the front end computes 128 mel bins), "
        "found {}",
        where, a.n_mels);
  if (a.n_audio_ctx < kMinAudioCtx)
    fail(
        "{}: audio_encoder_config.n_audio_ctx {} is too small: a 25 s audio chunk needs {} "
        "positions",
        where, a.n_audio_ctx, kMinAudioCtx);
  if (a.n_audio_state % a.n_audio_head != 0)
    fail("{}: audio_encoder_config.n_audio_state {} is not divisible by n_audio_head {}", where,
         a.n_audio_state, a.n_audio_head);
  if (a.llm_dim != t.hidden_size)
    fail("{}: audio_encoder_config.llm_dim: expected text_config.hidden_size ({}), found {}", where,
         t.hidden_size, a.llm_dim);
  if (a.kernel_size != 3)
    fail(
        "{}: audio_encoder_config.kernel_size: expected 3 (the only adaptor kernel supported), "
        "found {}",
        where, a.kernel_size);
  if (a.adapter_stride != 2)
    fail(
        "{}: audio_encoder_config.adapter_stride: expected 2 (the only adaptor stride "
        "supported), found {}",
        where, a.adapter_stride);
  if (a.adapter_hidden <= 0) fail("{}: adaptor hidden size must be positive", where);
}

ModelConfig ModelConfig::load(const std::string& path) {
  const MappedFile f(path);  // errors name the path (missing, a directory, unreadable)
  return parse(std::string(f.data() ? f.data() : "", f.size()), path);
}

}  // namespace stepaudio
