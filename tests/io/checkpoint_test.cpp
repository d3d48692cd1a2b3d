#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <pty.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "../test_paths.h"
#include "io/checkpoint.h"
#include "io/progress.h"

using namespace stepaudio;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kShard1 = "model-00001-of-00002.safetensors";
const char* kShard2 = "model-00002-of-00002.safetensors";
const char* kIndex = "model.safetensors.index.json";

fs::path tiny_a() { return testing_paths::golden() / "tiny-a"; }

using testing_paths::read_text;
void write_text(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

// A writable copy of tiny-a's config, index and shards in a fresh temp folder.
class TinyCopy {
 public:
  TinyCopy() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        fs::temp_directory_path() / ("sa_ckpt_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const char* f : {"config.json", kIndex, kShard1, kShard2}) {
      fs::copy_file(tiny_a() / f, dir_ / f);
      fs::permissions(dir_ / f, fs::perms::owner_read | fs::perms::owner_write);
    }
  }
  ~TinyCopy() { fs::remove_all(dir_); }
  const fs::path& dir() const { return dir_; }
  std::string path(const std::string& f) const { return (dir_ / f).string(); }

  // Rewrites a shard through save_safetensors after `edit` changed its tensor list.
  void rewrite_shard(
      const std::string& shard,
      const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    {
      const SafetensorsFile f = SafetensorsFile::open(path(shard));
      for (auto& [name, info] : f.tensors()) tensors.emplace_back(name, f.get(name).clone());
    }
    edit(tensors);
    save_safetensors(path(shard), tensors, {{"format", "pt"}});
  }
  json index() const { return json::parse(read_text(dir_ / kIndex)); }
  void set_index(const json& j) const { write_text(dir_ / kIndex, j.dump(2)); }
  // Makes metadata.total_size agree with the shards again after a deliberate edit.
  void fix_total_size() const {
    uint64_t total = 0;
    for (const char* s : {kShard1, kShard2}) {
      const SafetensorsFile f = SafetensorsFile::open(path(s));
      for (auto& [n, info] : f.tensors()) total += info.end - info.begin;
    }
    json j = index();
    j["metadata"]["total_size"] = total;
    set_index(j);
  }

 private:
  fs::path dir_;
};

std::string open_error(const fs::path& dir) {
  try {
    Checkpoint::open(dir.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_CONTAINS(hay, needle) \
  EXPECT_NE(std::string(hay).find(needle), std::string::npos) << "message: " << (hay)

Tensor filled(Shape shape, DType dtype) {
  Tensor t = Tensor::zeros(std::move(shape), dtype);
  return t;
}

}  // namespace

TEST(Checkpoint, OpensTinyA) {
  const Checkpoint ck = Checkpoint::open(tiny_a().string());
  const ModelConfig& c = ck.config();
  // golden/README.md §1
  EXPECT_EQ(c.text.hidden_size, 32);
  EXPECT_EQ(c.text.intermediate_size, 64);
  EXPECT_EQ(c.text.num_hidden_layers, 2);
  EXPECT_EQ(c.text.num_attention_heads, 2);
  EXPECT_EQ(c.text.num_key_value_heads, 1);
  EXPECT_EQ(c.text.head_dim(), 16);
  EXPECT_EQ(c.text.vocab_size, 158720);
  EXPECT_DOUBLE_EQ(c.text.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.text.rope_theta, 1e6);
  EXPECT_EQ(c.text.max_position_embeddings, 4096);
  EXPECT_EQ(c.audio.n_mels, 128);
  EXPECT_EQ(c.audio.n_audio_ctx, 1500);
  EXPECT_EQ(c.audio.n_audio_state, 64);
  EXPECT_EQ(c.audio.n_audio_head, 2);
  EXPECT_EQ(c.audio.n_audio_layer, 2);
  EXPECT_EQ(c.audio.llm_dim, 32);
  EXPECT_EQ(c.audio.kernel_size, 3);
  EXPECT_EQ(c.audio.adapter_stride, 2);

  EXPECT_EQ(ck.names().size(), 70u);
  EXPECT_EQ(ck.num_shards(), 2u);
  EXPECT_EQ(ck.total_bytes(), 21241600u);
  const auto want = expected_tensors(c);
  EXPECT_EQ(want.size(), 70u);
  int64_t params = 0;
  for (auto& [name, shape] : want) {
    ASSERT_TRUE(ck.has(name)) << name;
    const Tensor t = ck.get(name);
    EXPECT_EQ(t.shape(), shape) << name;
    EXPECT_EQ(t.dtype(), DType::BF16) << name;
    params += t.numel();
  }
  EXPECT_EQ(params, 10620800);
  EXPECT_EQ(ck.get("adapter.linear1.weight").shape(), (Shape{2048, 64}));
  EXPECT_EQ(ck.get("encoder.positional_embedding.weight").shape(), (Shape{1500, 64}));
  EXPECT_EQ(ck.get("model.layers.1.self_attn.k_proj.weight").shape(), (Shape{16, 32}));
  EXPECT_EQ(fs::path(ck.file_of("lm_head.weight")).filename(), kShard2);
  EXPECT_EQ(fs::path(ck.file_of("model.embed_tokens.weight")).filename(), kShard1);

  // RMSNorm weights were drawn as 1 + 0.1 N(0,1): the mapped bytes are the real values.
  const std::vector<float> norm = ck.get("model.norm.weight").to_dtype(DType::F32).to_f32_vector();
  double mean = 0;
  for (float v : norm) mean += v / norm.size();
  EXPECT_GT(mean, 0.9);
  EXPECT_LT(mean, 1.1);

  try {
    ck.get("model.layers.2.input_layernorm.weight");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "model.layers.2.input_layernorm.weight");
  }
}

TEST(Checkpoint, ExpectedTensorsOfTheFullModel) {
  const ModelConfig c = ModelConfig::load(testing_paths::shared() / "stepaudio2-mini/config.json");
  const auto want = expected_tensors(c);
  EXPECT_EQ(want.size(), 832u);
  int64_t params = 0;
  for (auto& [n, s] : want) params += shape_numel(s);
  EXPECT_EQ(params, 8315179264);  // spec §0: total_size 16,630,358,528 bytes of bf16
  const json index = json::parse(read_text(testing_paths::shared() / "stepaudio2-mini" / kIndex));
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), params * 2);
  std::set<std::string> official;
  for (auto& [name, shard] : index["weight_map"].items()) official.insert(name);
  std::set<std::string> ours;
  for (auto& [name, s] : want) ours.insert(name);
  EXPECT_EQ(ours, official);
  EXPECT_EQ(want.at("model.layers.27.self_attn.k_proj.weight"), (Shape{512, 3584}));
  EXPECT_EQ(want.at("model.layers.0.mlp.down_proj.weight"), (Shape{3584, 18944}));
  EXPECT_EQ(want.at("encoder.conv1.weight"), (Shape{1280, 128, 3}));
  EXPECT_EQ(want.at("encoder.blocks.31.mlp.0.weight"), (Shape{5120, 1280}));
  EXPECT_EQ(want.at("adapter.conv.weight"), (Shape{1280, 1280, 3}));
  EXPECT_EQ(want.at("adapter.linear2.weight"), (Shape{3584, 2048}));
  EXPECT_EQ(want.at("lm_head.weight"), (Shape{158720, 3584}));
}

TEST(Checkpoint, MissingShard) {
  TinyCopy t;
  fs::remove(t.dir() / kShard2);
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.path(kIndex));
  EXPECT_CONTAINS(msg, kShard2);
  EXPECT_CONTAINS(msg, "lm_head.weight");
  EXPECT_CONTAINS(msg, "missing");
}

TEST(Checkpoint, TensorRemovedFromShardButStillInIndex) {
  TinyCopy t;
  t.rewrite_shard(kShard1, [](auto& ts) {
    std::erase_if(ts, [](auto& p) { return p.first == "model.norm.weight"; });
  });
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.path(kShard1));
  EXPECT_CONTAINS(msg, "does not contain tensor 'model.norm.weight'");
  EXPECT_CONTAINS(msg, kIndex);
}

TEST(Checkpoint, TensorRemovedFromShardAndIndex) {
  TinyCopy t;
  t.rewrite_shard(kShard1, [](auto& ts) {
    std::erase_if(ts, [](auto& p) { return p.first == "encoder.blocks.1.attn.key.weight"; });
  });
  json j = t.index();
  j["weight_map"].erase("encoder.blocks.1.attn.key.weight");
  t.set_index(j);
  t.fix_total_size();
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.dir().string());
  EXPECT_CONTAINS(msg, "tensor 'encoder.blocks.1.attn.key.weight' [64, 64] is missing");
}

TEST(Checkpoint, RenamedTensor) {
  TinyCopy t;
  t.rewrite_shard(kShard1, [](auto& ts) {
    for (auto& p : ts)
      if (p.first == "model.layers.0.mlp.up_proj.weight") p.first = "model.layers.0.mlp.up.weight";
  });
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, "2 problems");
  EXPECT_CONTAINS(msg, t.path(kShard1) +
                           ": contains tensor 'model.layers.0.mlp.up.weight', "
                           "which model.safetensors.index.json does not list");
  EXPECT_CONTAINS(msg, t.path(kShard1) +
                           ": does not contain tensor "
                           "'model.layers.0.mlp.up_proj.weight'");
}

TEST(Checkpoint, UnexpectedTensor) {
  TinyCopy t;
  const std::string extra = "model.layers.2.input_layernorm.weight";
  t.rewrite_shard(kShard2, [&](auto& ts) { ts.emplace_back(extra, filled({32}, DType::BF16)); });
  json j = t.index();
  j["weight_map"][extra] = kShard2;
  t.set_index(j);
  t.fix_total_size();
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.path(kShard2) + ": unexpected tensor '" + extra + "'");
}

TEST(Checkpoint, ShardHoldsATensorTheIndexMapsElsewhere) {
  TinyCopy t;
  json j = t.index();
  j["weight_map"]["model.norm.weight"] = kShard2;
  t.set_index(j);
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.path(kShard1) + ": contains tensor 'model.norm.weight', which " + kIndex +
                           " maps to " + kShard2);
  EXPECT_CONTAINS(msg, t.path(kShard2) + ": does not contain tensor 'model.norm.weight'");
}

TEST(Checkpoint, WrongShape) {
  TinyCopy t;
  t.rewrite_shard(kShard1, [](auto& ts) {
    for (auto& p : ts)
      if (p.first == "model.layers.1.self_attn.q_proj.weight")
        p.second = p.second.reshape({16, 64});
  });
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.path(kShard1) +
                           ": tensor 'model.layers.1.self_attn.q_proj.weight': "
                           "expected shape [32, 32], found [16, 64]");
}

TEST(Checkpoint, WrongShapeWithOtherSize) {
  TinyCopy t;
  t.rewrite_shard(kShard1, [](auto& ts) {
    for (auto& p : ts)
      if (p.first == "adapter.linear2.bias") p.second = filled({33}, DType::BF16);
  });
  t.fix_total_size();
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.path(kShard1) +
                           ": tensor 'adapter.linear2.bias': expected shape [32], "
                           "found [33]");
}

TEST(Checkpoint, UnsupportedDtype) {
  TinyCopy t;
  t.rewrite_shard(kShard1, [](auto& ts) {
    for (auto& p : ts)
      if (p.first == "encoder.after_norm.bias") p.second = filled({64}, DType::I32);
  });
  t.fix_total_size();
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.path(kShard1) +
                           ": tensor 'encoder.after_norm.bias': expected dtype "
                           "BF16, F16 or F32, found I32");
}

TEST(Checkpoint, OtherFloatDtypesAreAccepted) {
  TinyCopy t;
  t.rewrite_shard(kShard1, [](auto& ts) {
    for (auto& p : ts) {
      if (p.first == "encoder.after_norm.bias") p.second = p.second.to_dtype(DType::F32);
      if (p.first == "encoder.after_norm.weight") p.second = p.second.to_dtype(DType::F16);
    }
  });
  t.fix_total_size();
  const Checkpoint ck = Checkpoint::open(t.dir().string());
  EXPECT_EQ(ck.get("encoder.after_norm.bias").dtype(), DType::F32);
  EXPECT_EQ(ck.get("encoder.after_norm.weight").dtype(), DType::F16);
}

TEST(Checkpoint, TotalSizeMismatch) {
  TinyCopy t;
  json j = t.index();
  j["metadata"]["total_size"] = 21241602;
  t.set_index(j);
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.path(kIndex) +
                           ": metadata.total_size is 21241602 bytes, but the shards "
                           "hold 21241600");
  j["metadata"]["total_size"] = "big";
  t.set_index(j);
  EXPECT_CONTAINS(open_error(t.dir()), "metadata.total_size: expected a non-negative integer");
}

TEST(Checkpoint, TruncatedShard) {
  TinyCopy t;
  const auto size = fs::file_size(t.dir() / kShard2);
  fs::resize_file(t.dir() / kShard2, size - 1000);
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.path(kShard2));
  EXPECT_CONTAINS(msg, "'lm_head.weight'");
  EXPECT_CONTAINS(msg, "truncated");
  // Cut inside the header.
  fs::resize_file(t.dir() / kShard2, 40);
  const std::string msg2 = open_error(t.dir());
  EXPECT_CONTAINS(msg2, t.path(kShard2));
  EXPECT_CONTAINS(msg2, "truncated");
}

TEST(Checkpoint, GarbledHeader) {
  TinyCopy t;
  {
    std::fstream f(t.dir() / kShard1, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12);
    f.write("\x01\xff garbage \"", 11);
  }
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.path(kShard1));
  EXPECT_CONTAINS(msg, "corrupt safetensors header");

  // A header that is valid JSON but wrong for one tensor names that tensor.
  TinyCopy t2;
  std::string bytes = read_text(t2.dir() / kShard2);
  const size_t at = bytes.find("\"BF16\"");
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 6, "\"BX16\"");
  write_text(t2.dir() / kShard2, bytes);
  const std::string msg2 = open_error(t2.dir());
  EXPECT_CONTAINS(msg2, t2.path(kShard2) + ": tensor 'lm_head.weight': unsupported dtype");

  // A header length pointing past the end of the file.
  TinyCopy t3;
  {
    std::fstream f(t3.dir() / kShard1, std::ios::in | std::ios::out | std::ios::binary);
    const uint64_t huge = uint64_t{1} << 40;
    f.write(reinterpret_cast<const char*>(&huge), 8);
  }
  const std::string msg3 = open_error(t3.dir());
  EXPECT_CONTAINS(msg3, t3.path(kShard1));
  EXPECT_CONTAINS(msg3, "header length");
}

TEST(Checkpoint, BadJsonInConfig) {
  TinyCopy t;
  write_text(t.dir() / "config.json", "{\"text_config\": {\"hidden_size\": 32,");
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, t.path("config.json") + ": not valid JSON");
  fs::remove(t.dir() / "config.json");
  EXPECT_CONTAINS(open_error(t.dir()), t.path("config.json") + ": cannot open");
}

TEST(Checkpoint, ConfigThatDisagreesWithTheShards) {
  TinyCopy t;
  json c = json::parse(read_text(t.dir() / "config.json"));
  c["text_config"]["num_hidden_layers"] = 3;
  write_text(t.dir() / "config.json", c.dump());
  const std::string msg = open_error(t.dir());
  EXPECT_CONTAINS(msg, "12 problems");
  EXPECT_CONTAINS(msg, "tensor 'model.layers.2.mlp.down_proj.weight' [32, 64] is missing");
  c["text_config"]["num_hidden_layers"] = 1;
  write_text(t.dir() / "config.json", c.dump());
  EXPECT_CONTAINS(open_error(t.dir()),
                  t.path(kShard1) + ": unexpected tensor 'model.layers.1.mlp.down_proj.weight'");
  c["text_config"]["num_hidden_layers"] = "two";
  write_text(t.dir() / "config.json", c.dump());
  EXPECT_CONTAINS(open_error(t.dir()), t.path("config.json") +
                                           ": text_config.num_hidden_layers: expected a positive "
                                           "integer, found \"two\"");
}

TEST(Checkpoint, BadIndex) {
  TinyCopy t;
  write_text(t.dir() / kIndex, "{\"weight_map\": {\"a\": ");
  EXPECT_CONTAINS(open_error(t.dir()), t.path(kIndex) + ": not valid JSON");
  write_text(t.dir() / kIndex, "{\"metadata\": {}}");
  EXPECT_CONTAINS(open_error(t.dir()), t.path(kIndex) + ": weight_map: missing");
  write_text(t.dir() / kIndex, "{\"weight_map\": {\"lm_head.weight\": 3}}");
  EXPECT_CONTAINS(open_error(t.dir()),
                  t.path(kIndex) + ": weight_map entry for tensor 'lm_head.weight'");
  // Shard names must stay inside the checkpoint folder.
  write_text(t.dir() / kIndex,
             "{\"weight_map\": {\"lm_head.weight\": \"../tiny-a/model-00002-of-00002."
             "safetensors\"}}");
  EXPECT_CONTAINS(open_error(t.dir()), "expected a file name in the checkpoint folder");
}

TEST(Checkpoint, SingleFileCheckpoint) {
  TinyCopy t;
  std::vector<std::pair<std::string, Tensor>> all;
  for (const char* s : {kShard1, kShard2}) {
    const SafetensorsFile f = SafetensorsFile::open(t.path(s));
    for (auto& [name, info] : f.tensors()) all.emplace_back(name, f.get(name).clone());
  }
  fs::remove(t.dir() / kIndex);
  fs::remove(t.dir() / kShard1);
  fs::remove(t.dir() / kShard2);
  EXPECT_CONTAINS(open_error(t.dir()), "no weights");
  save_safetensors(t.path("model.safetensors"), all);
  const Checkpoint ck = Checkpoint::open(t.dir().string());
  EXPECT_EQ(ck.names().size(), 70u);
  EXPECT_EQ(ck.num_shards(), 1u);
  // Without an index, a missing tensor is reported against model.safetensors.
  all.pop_back();
  save_safetensors(t.path("model.safetensors"), all);
  EXPECT_CONTAINS(open_error(t.dir()),
                  "is missing: " + t.path("model.safetensors") + " does not list it");
}

TEST(Checkpoint, FolderErrors) {
  EXPECT_CONTAINS(open_error("/nonexistent/sa_ckpt"),
                  "/nonexistent/sa_ckpt: checkpoint folder "
                  "does not exist");
  EXPECT_CONTAINS(open_error(tiny_a() / "config.json"), "found a file");
}

TEST(Checkpoint, NoProgressOutputWhenStderrIsNotATerminal) {
  ::testing::internal::CaptureStderr();
  const Checkpoint ck = Checkpoint::open(tiny_a().string(), true);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(Progress, DrawsOnATerminalAndErasesItself) {
  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  std::FILE* out = ::fdopen(slave, "w");
  ASSERT_NE(out, nullptr);
  {
    Progress p("writing", 1000, true, out, 0);
    EXPECT_TRUE(p.active());
    p.set(500);
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    p.set(1000);
  }
  std::fclose(out);
  std::string got;
  char buf[4096];
  ::fcntl(master, F_SETFL, O_NONBLOCK);
  for (ssize_t n; (n = ::read(master, buf, sizeof buf)) > 0;) got.append(buf, n);
  ::close(master);
  EXPECT_CONTAINS(got, "writing");
  EXPECT_CONTAINS(got, " 50%");
  EXPECT_CONTAINS(got, "100%");
  EXPECT_EQ(got.substr(got.size() - 4), "\r\033[K");  // the bar is erased at the end
}

TEST(Progress, SilentWhenNotATerminalOrQuick) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress p("x", 10, true, f, 0);
    EXPECT_FALSE(p.active());
    p.set(5);
  }
  EXPECT_EQ(std::ftell(f), 0);
  std::fclose(f);

  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  std::FILE* out = ::fdopen(slave, "w");
  {
    Progress p("quick", 10, true, out, 10000);  // finishes before the delay: never drawn
    p.set(10);
  }
  std::fclose(out);
  char buf[256];
  ::fcntl(master, F_SETFL, O_NONBLOCK);
  EXPECT_LE(::read(master, buf, sizeof buf), 0);
  ::close(master);
}
