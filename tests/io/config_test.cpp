#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../test_paths.h"
#include "io/checkpoint.h"

using namespace stepaudio;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

using testing_paths::read_text;

json official() {
  return json::parse(read_text(testing_paths::shared() / "stepaudio2-mini/config.json"));
}

// Parses `j` as config.json and returns the error message ("" when it parses).
std::string error_of(const json& j) {
  try {
    ModelConfig::parse(j.dump(), "config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

json edited(const std::function<void(json&)>& edit) {
  json j = official();
  edit(j);
  return j;
}

#define EXPECT_CONTAINS(hay, needle) \
  EXPECT_NE(std::string(hay).find(needle), std::string::npos) << "message: " << (hay)

}  // namespace

TEST(Config, ParsesTheOfficialConfig) {
  const ModelConfig c = ModelConfig::parse(official().dump(), "config.json");
  EXPECT_EQ(c.text.hidden_size, 3584);
  EXPECT_EQ(c.text.intermediate_size, 18944);
  EXPECT_EQ(c.text.num_hidden_layers, 28);
  EXPECT_EQ(c.text.num_attention_heads, 28);
  EXPECT_EQ(c.text.num_key_value_heads, 4);
  EXPECT_EQ(c.text.head_dim(), 128);
  EXPECT_EQ(c.text.vocab_size, 158720);
  EXPECT_EQ(c.text.max_position_embeddings, 16384);
  EXPECT_EQ(c.text.max_seq_len, 16384);
  EXPECT_DOUBLE_EQ(c.text.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.text.rope_theta, 1e6);
  EXPECT_EQ(c.text.eos_token_id, 151643);
  EXPECT_EQ(c.text.torch_dtype, "bfloat16");
  EXPECT_EQ(c.audio.n_mels, 128);
  EXPECT_EQ(c.audio.n_audio_ctx, 1500);
  EXPECT_EQ(c.audio.n_audio_state, 1280);
  EXPECT_EQ(c.audio.n_audio_head, 20);
  EXPECT_EQ(c.audio.n_audio_layer, 32);
  EXPECT_EQ(c.audio.llm_dim, 3584);
  EXPECT_EQ(c.audio.kernel_size, 3);
  EXPECT_EQ(c.audio.adapter_stride, 2);
  EXPECT_EQ(c.audio.adapter_hidden, 2048);
}

TEST(Config, LoadsTinyA) {
  const ModelConfig c = ModelConfig::load(testing_paths::golden() / "tiny-a/config.json");
  EXPECT_EQ(c.text.hidden_size, 32);
  EXPECT_EQ(c.text.intermediate_size, 64);
  EXPECT_EQ(c.text.num_hidden_layers, 2);
  EXPECT_EQ(c.text.num_attention_heads, 2);
  EXPECT_EQ(c.text.num_key_value_heads, 1);
  EXPECT_EQ(c.text.head_dim(), 16);
  EXPECT_EQ(c.text.max_position_embeddings, 4096);
  EXPECT_EQ(c.audio.n_audio_state, 64);
  EXPECT_EQ(c.audio.n_audio_head, 2);
  EXPECT_EQ(c.audio.n_audio_layer, 2);
  EXPECT_EQ(c.audio.llm_dim, 32);
}

TEST(Config, ExactMessageForAMistypedField) {
  EXPECT_EQ(error_of(edited([](json& j) { j["text_config"]["hidden_size"] = "abc"; })),
            "config.json: text_config.hidden_size: expected a positive integer, found \"abc\"");
}

TEST(Config, FieldTypesAreChecked) {
  struct Case {
    std::function<void(json&)> edit;
    std::string field, found;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j["text_config"]["hidden_size"] = -3584; }, "text_config.hidden_size",
       "-3584"},
      {[](json& j) { j["text_config"]["intermediate_size"] = 0; }, "text_config.intermediate_size",
       "found 0"},
      {[](json& j) { j["text_config"]["num_hidden_layers"] = 2.5; },
       "text_config.num_hidden_layers", "2.5"},
      {[](json& j) { j["text_config"]["num_attention_heads"] = true; },
       "text_config.num_attention_heads", "true"},
      {[](json& j) { j["text_config"]["vocab_size"] = nullptr; }, "text_config.vocab_size", "null"},
      {[](json& j) { j["text_config"]["num_key_value_heads"] = json::array({4}); },
       "text_config.num_key_value_heads", "an array of 1 item"},
      {[](json& j) { j["text_config"]["rms_norm_eps"] = "1e-6"; }, "text_config.rms_norm_eps",
       "\"1e-6\""},
      {[](json& j) { j["text_config"]["rope_theta"] = -1.0; }, "text_config.rope_theta", "-1.0"},
      {[](json& j) { j["text_config"]["eos_token_id"] = "x"; }, "text_config.eos_token_id",
       "\"x\""},
      {[](json& j) { j["text_config"]["torch_dtype"] = "int8"; }, "text_config.torch_dtype",
       "\"int8\""},
      {[](json& j) { j["audio_encoder_config"]["n_audio_state"] = "1280"; },
       "audio_encoder_config.n_audio_state", "\"1280\""},
      {[](json& j) { j["audio_encoder_config"]["n_audio_layer"] = json::object(); },
       "audio_encoder_config.n_audio_layer", "an object"},
      {[](json& j) { j["text_config"]["hidden_size"] = uint64_t{1} << 40; },
       "text_config.hidden_size", "larger than the supported maximum"},
  };
  for (const Case& c : cases) {
    const std::string msg = error_of(edited(c.edit));
    EXPECT_CONTAINS(msg, "config.json: ");
    EXPECT_CONTAINS(msg, c.field);
    EXPECT_CONTAINS(msg, c.found);
  }
}

TEST(Config, RequiredFieldsMustBePresent) {
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "num_key_value_heads", "vocab_size"}) {
    const std::string msg = error_of(edited([&](json& j) { j["text_config"].erase(key); }));
    EXPECT_CONTAINS(msg, std::string("config.json: text_config.") + key + ": missing");
  }
  for (const char* key : {"n_audio_state", "n_audio_head", "n_audio_layer"}) {
    const std::string msg =
        error_of(edited([&](json& j) { j["audio_encoder_config"].erase(key); }));
    EXPECT_CONTAINS(msg, std::string("config.json: audio_encoder_config.") + key + ": missing");
  }
  EXPECT_CONTAINS(error_of(edited([](json& j) { j.erase("text_config"); })),
                  "config.json: text_config: missing");
  EXPECT_CONTAINS(error_of(edited([](json& j) { j["audio_encoder_config"] = 3; })),
                  "config.json: audio_encoder_config: expected an object, found 3");
}

TEST(Config, UnsupportedValuesAreRejected) {
  struct Case {
    std::function<void(json&)> edit;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j["text_config"]["num_attention_groups"] = 2; },
       {"text_config.num_attention_groups", "num_key_value_heads (4)", "found 2"}},
      {[](json& j) { j["text_config"]["num_attention_heads"] = 27; },
       {"text_config.hidden_size 3584", "not divisible by num_attention_heads 27"}},
      {[](json& j) {
         j["text_config"]["num_key_value_heads"] = 3;
         j["text_config"]["num_attention_groups"] = 3;
       },
       {"num_attention_heads 28", "not divisible by num_key_value_heads 3"}},
      {[](json& j) {
         j["text_config"]["hidden_size"] = 30;
         j["text_config"]["num_attention_heads"] = 2;
         j["text_config"]["num_key_value_heads"] = 1;
         j["text_config"]["num_attention_groups"] = 1;
         j["audio_encoder_config"]["llm_dim"] = 30;
       },
       {"head_dim", "15", "odd"}},
      {[](json& j) { j["audio_encoder_config"]["llm_dim"] = 4096; },
       {"audio_encoder_config.llm_dim", "hidden_size (3584)", "found 4096"}},
      {[](json& j) {
         j["text_config"]["rope_scaling"] = {{"type", "yarn"}, {"factor", 4}};
       },
       {"text_config.rope_scaling", "expected null", "an object with 2 keys"}},
      {[](json& j) { j["audio_encoder_config"]["kernel_size"] = 5; },
       {"audio_encoder_config.kernel_size", "expected 3", "found 5"}},
      {[](json& j) { j["audio_encoder_config"]["adapter_stride"] = 4; },
       {"audio_encoder_config.adapter_stride", "expected 2", "found 4"}},
      {[](json& j) { j["audio_encoder_config"]["n_mels"] = 80; },
       {"audio_encoder_config.n_mels", "expected 128", "found 80"}},
      {[](json& j) { j["audio_encoder_config"]["n_audio_head"] = 3; },
       {"audio_encoder_config.n_audio_state 1280", "not divisible by n_audio_head 3"}},
      {[](json& j) { j["audio_encoder_config"]["n_audio_ctx"] = 1000; },
       {"audio_encoder_config.n_audio_ctx 1000", "1251"}},
      {[](json& j) { j["text_config"]["vocab_size"] = 152064; },
       {"text_config.vocab_size 152064", "158351"}},
      {[](json& j) { j["architectures"] = {"Qwen2ForCausalLM"}; },
       {"architectures", "StepAudio2ForCausalLM", "\"Qwen2ForCausalLM\""}},
      {[](json& j) { j["architectures"] = "StepAudio2ForCausalLM"; },
       {"architectures: expected [\"StepAudio2ForCausalLM\"]"}},
      {[](json& j) { j["model_type"] = "qwen2"; },
       {"model_type", "\"step_audio_2\"", "found \"qwen2\""}},
  };
  for (const Case& c : cases) {
    const std::string msg = error_of(edited(c.edit));
    EXPECT_CONTAINS(msg, "config.json: ");
    for (const std::string& n : c.needles) EXPECT_CONTAINS(msg, n);
  }
}

TEST(Config, BadJsonIsReported) {
  for (const std::string text : {"{\"text_config\": {", "", "not json", "[1,2]", "42"}) {
    try {
      ModelConfig::parse(text, "some/dir/config.json");
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& e) {
      EXPECT_CONTAINS(e.what(), "some/dir/config.json: ");
    }
  }
  try {
    ModelConfig::parse("{\"a\": ", "x/config.json");
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "not valid JSON");
  }
}

TEST(Config, OptionalFieldsTakeTheOfficialDefaults) {
  json j = official();
  for (const char* k :
       {"num_attention_groups", "max_seq_len", "rms_norm_eps", "eos_token_id", "pad_token_id",
        "rope_theta", "max_position_embeddings", "rope_scaling", "torch_dtype"})
    j["text_config"].erase(k);
  for (const char* k :
       {"n_mels", "n_audio_ctx", "n_codebook_size", "llm_dim", "kernel_size", "adapter_stride"})
    j["audio_encoder_config"].erase(k);
  j.erase("architectures");
  j.erase("auto_map");
  j.erase("model_type");
  j["text_config"]["hidden_size"] = 896;
  j["text_config"]["num_attention_heads"] = 14;
  j["text_config"]["num_key_value_heads"] = 2;
  const ModelConfig c = ModelConfig::parse(j.dump(), "config.json");
  EXPECT_EQ(c.text.max_position_embeddings, 16384);
  EXPECT_EQ(c.text.max_seq_len, 16384);
  EXPECT_DOUBLE_EQ(c.text.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.text.rope_theta, 1e6);
  EXPECT_EQ(c.text.eos_token_id, 151643);
  EXPECT_EQ(c.text.pad_token_id, 151643);
  EXPECT_EQ(c.text.torch_dtype, "bfloat16");
  EXPECT_EQ(c.audio.n_mels, 128);
  EXPECT_EQ(c.audio.n_audio_ctx, 1500);
  EXPECT_EQ(c.audio.n_codebook_size, 4096);
  EXPECT_EQ(c.audio.llm_dim, 896);  // follows hidden_size
  EXPECT_EQ(c.audio.kernel_size, 3);
  EXPECT_EQ(c.audio.adapter_stride, 2);
  // Explicit nulls are as good as absent where the official file uses null.
  j["text_config"]["rope_scaling"] = nullptr;
  j["text_config"]["eos_token_id"] = nullptr;
  EXPECT_NO_THROW(ModelConfig::parse(j.dump(), "config.json"));
}

TEST(Config, LoadNamesThePath) {
  const fs::path dir = fs::temp_directory_path() / ("sa_cfg_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  try {
    ModelConfig::load((dir / "config.json").string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), (dir / "config.json").string());
    EXPECT_CONTAINS(e.what(), "cannot open");
  }
  try {
    ModelConfig::load(dir.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "is a directory");
  }
  { std::ofstream(dir / "config.json") << "{\"text_config\": 1"; }
  try {
    ModelConfig::load((dir / "config.json").string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), (dir / "config.json").string() + ": not valid JSON");
  }
  fs::remove_all(dir);
}
