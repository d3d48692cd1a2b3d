#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../test_paths.h"
#include "io/checkpoint.h"
#include "io/model_writer.h"

using namespace stepaudio;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

using testing_paths::read_text;

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("sa_mw_" + std::to_string(::getpid()) + "_" + info->name() + "_" + tag);
    fs::remove_all(dir_);
  }
  ~TempDir() { fs::remove_all(dir_); }
  const fs::path& path() const { return dir_; }

 private:
  fs::path dir_;
};

fs::path bundled_tokenizer() { return testing_paths::source() / "assets" / "tokenizer"; }

ModelWriteOptions options(uint64_t shard_bytes, uint64_t seed = 7) {
  ModelWriteOptions o;
  o.seed = seed;
  o.shard_bytes = shard_bytes;
  o.tokenizer_dir = bundled_tokenizer().string();
  return o;
}

// The key structure (names and nesting, not values) of a JSON object.
json key_skeleton(const json& j) {
  if (!j.is_object()) return nullptr;
  json out = json::object();
  for (auto& [k, v] : j.items()) out[k] = key_skeleton(v);
  return out;
}

// Every tensor of the checkpoint matches expected_tensors() exactly: names, shapes, BF16.
void expect_matches_layout(const Checkpoint& ck) {
  const auto want = expected_tensors(ck.config());
  EXPECT_EQ(ck.names().size(), want.size());
  for (auto& [name, shape] : want) {
    ASSERT_TRUE(ck.has(name)) << name;
    const Tensor t = ck.get(name);
    EXPECT_EQ(t.shape(), shape) << name;
    EXPECT_EQ(t.dtype(), DType::BF16) << name;
  }
}

struct Stats {
  double mean = 0, std = 0;
  bool finite = true;
};
Stats stats(const Tensor& t) {
  const std::vector<float> v = t.to_dtype(DType::F32).to_f32_vector();
  Stats s;
  double sum = 0, sq = 0;
  for (float x : v) {
    s.finite = s.finite && std::isfinite(x);
    sum += x;
    sq += static_cast<double>(x) * x;
  }
  s.mean = sum / v.size();
  s.std = std::sqrt(std::max(0.0, sq / v.size() - s.mean * s.mean));
  return s;
}

}  // namespace

TEST(ModelWriter, TinyMatchesTheGoldenLayout) {
  TempDir out("tiny");
  // tiny-a was packed with every shard < 15 MiB.
  const ModelWriteSummary s =
      write_random_model(out.path().string(), preset_config("tiny"), options(15u << 20));
  EXPECT_EQ(s.params, 10620800u);
  EXPECT_EQ(s.bytes, 21241600u);
  EXPECT_EQ(s.shards, 2u);

  const fs::path golden = testing_paths::golden() / "tiny-a";
  // Same config.json values, same key set as the official file.
  const json cfg = json::parse(read_text(out.path() / "config.json"));
  EXPECT_EQ(cfg, json::parse(read_text(golden / "config.json")));
  EXPECT_EQ(key_skeleton(cfg), key_skeleton(json::parse(read_text(testing_paths::shared() /
                                                                  "stepaudio2-mini/config.json"))));
  // Same shard file names, same weight_map, same total_size as the official-layout tiny-a.
  const json index = json::parse(read_text(out.path() / "model.safetensors.index.json"));
  const json gindex = json::parse(read_text(golden / "model.safetensors.index.json"));
  EXPECT_EQ(index["weight_map"], gindex["weight_map"]);
  EXPECT_EQ(index["metadata"]["total_size"], gindex["metadata"]["total_size"]);

  const Checkpoint ck = Checkpoint::open(out.path().string());
  expect_matches_layout(ck);
  EXPECT_EQ(SafetensorsFile::open((out.path() / "model-00001-of-00002.safetensors").string())
                .metadata()
                .at("format"),
            "pt");

  // Tokenizer files are byte copies.
  for (const std::string& f : tokenizer_files())
    EXPECT_EQ(read_text(out.path() / f), read_text(bundled_tokenizer() / f)) << f;
  // Nothing else is left behind (no temporary files).
  std::set<std::string> files;
  for (auto& e : fs::directory_iterator(out.path())) files.insert(e.path().filename().string());
  std::set<std::string> want(s.files.begin(), s.files.end());
  EXPECT_EQ(files, want);
  EXPECT_EQ(files.size(), 2u + 2u + tokenizer_files().size());
}

TEST(ModelWriter, ValuesHaveTheIntendedDistribution) {
  TempDir out("dist");
  write_random_model(out.path().string(), preset_config("tiny"), options(5'000'000'000));
  const Checkpoint ck = Checkpoint::open(out.path().string());
  for (const std::string& name : ck.names()) {
    const Stats st = stats(ck.get(name));
    EXPECT_TRUE(st.finite) << name;
    const auto [mean, sd] = init_mean_std(name);
    const double n = static_cast<double>(ck.get(name).numel());
    // Loose bounds for small tensors; the big ones must be close.
    const double tol_mean = 5 * sd / std::sqrt(n) + 1e-2 * std::max(1.0f, mean);
    EXPECT_NEAR(st.mean, mean, tol_mean) << name;
    EXPECT_NEAR(st.std, sd, sd * (n >= 10000 ? 0.03 : 0.5)) << name;
  }
  // The kinds: norm weights ~1, linear weights 0.02, positional table small.
  EXPECT_EQ(init_mean_std("model.layers.3.input_layernorm.weight"), std::make_pair(1.0f, 0.02f));
  EXPECT_EQ(init_mean_std("encoder.blocks.0.mlp_ln.weight").first, 1.0f);
  EXPECT_EQ(init_mean_std("encoder.after_norm.weight").first, 1.0f);
  EXPECT_EQ(init_mean_std("encoder.after_norm.bias").first, 0.0f);
  EXPECT_EQ(init_mean_std("model.layers.0.mlp.up_proj.weight"), std::make_pair(0.0f, 0.02f));
  EXPECT_LT(init_mean_std("encoder.positional_embedding.weight").second, 0.02f);
}

TEST(ModelWriter, DeterministicAndIndependentOfSharding) {
  TempDir a("a"), b("b"), c("c");
  const ModelConfig cfg = preset_config("tiny");
  write_random_model(a.path().string(), cfg, options(5'000'000'000, 42));
  write_random_model(b.path().string(), cfg, options(200'000, 42));
  write_random_model(c.path().string(), cfg, options(5'000'000'000, 43));
  const Checkpoint ca = Checkpoint::open(a.path().string());
  const Checkpoint cb = Checkpoint::open(b.path().string());
  const Checkpoint cc = Checkpoint::open(c.path().string());
  EXPECT_EQ(ca.num_shards(), 1u);
  EXPECT_GT(cb.num_shards(), 3u);
  size_t differ = 0;
  for (const std::string& n : ca.names()) {
    const Tensor x = ca.get(n), y = cb.get(n), z = cc.get(n);
    EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0) << n;
    differ += std::memcmp(x.raw(), z.raw(), x.nbytes()) != 0;
  }
  EXPECT_EQ(differ, ca.names().size());  // another seed changes every tensor
  // Writing again with the same seed gives the same bytes.
  TempDir d("d");
  write_random_model(d.path().string(), cfg, options(5'000'000'000, 42));
  EXPECT_EQ(read_text(a.path() / "model-00001-of-00001.safetensors"),
            read_text(d.path() / "model-00001-of-00001.safetensors"));
}

TEST(ModelWriter, MidShapedSmallModelWithLayersSplitAcrossShards) {
  // The mid preset's proportions (GQA 7:1 heads, 4 MLP ratio) at a size a unit test can write.
  ModelConfig cfg = preset_config("mid");
  cfg.text.hidden_size = 112;
  cfg.text.intermediate_size = 608;
  cfg.text.num_hidden_layers = 5;
  cfg.text.num_attention_heads = 7;
  cfg.text.num_key_value_heads = 1;
  cfg.audio.n_audio_state = 96;
  cfg.audio.n_audio_head = 3;
  cfg.audio.n_audio_layer = 3;
  cfg.audio.llm_dim = 112;
  TempDir out("mid");
  const ModelWriteSummary s = write_random_model(out.path().string(), cfg, options(1'000'000));
  EXPECT_GE(s.shards, 5u);
  const Checkpoint ck = Checkpoint::open(out.path().string());
  expect_matches_layout(ck);
  EXPECT_EQ(ck.config().text.hidden_size, 112);
  EXPECT_EQ(ck.config().text.num_key_value_heads, 1);
  EXPECT_EQ(ck.get("model.layers.4.self_attn.k_proj.weight").shape(), (Shape{16, 112}));
  for (size_t k = 1; k <= s.shards; ++k)
    EXPECT_TRUE(fs::exists(out.path() / shard_file_name(k, s.shards))) << k;
  // Every shard stays under the limit unless it holds one tensor that alone exceeds it.
  std::map<std::string, std::set<std::string>> per_shard;
  for (const std::string& n : ck.names()) per_shard[ck.file_of(n)].insert(n);
  for (auto& [file, names] : per_shard) {
    uint64_t bytes = 0;
    for (const std::string& n : names) bytes += ck.get(n).nbytes();
    if (names.size() > 1) {
      EXPECT_LE(bytes, 1'000'000u) << file;
    }
  }
  // As in the official checkpoint, some decoder layer spans two shards.
  size_t split_layers = 0;
  for (int64_t i = 0; i < cfg.text.num_hidden_layers; ++i) {
    std::set<std::string> files;
    for (const std::string& n : ck.names())
      if (n.rfind("model.layers." + std::to_string(i) + ".", 0) == 0) files.insert(ck.file_of(n));
    split_layers += files.size() > 1;
  }
  EXPECT_GT(split_layers, 0u);
  // Registration order: the embedding opens the first shard, lm_head closes the last.
  EXPECT_EQ(fs::path(ck.file_of("model.embed_tokens.weight")).filename(),
            shard_file_name(1, s.shards));
  EXPECT_EQ(fs::path(ck.file_of("lm_head.weight")).filename(), shard_file_name(s.shards, s.shards));
}

TEST(ModelWriter, PlanReproducesTheOfficialShardMap) {
  // The official checkpoint is 4 shards of at most 5 GB, packed in registration order.
  const ModelConfig cfg = preset_config("full");
  const auto layout = tensor_layout(cfg);
  const auto plan = plan_shards(layout, DType::BF16, 5'000'000'000);
  ASSERT_EQ(plan.size(), 4u);
  const json index = json::parse(
      read_text(testing_paths::shared() / "stepaudio2-mini/model.safetensors.index.json"));
  const json& wm = index["weight_map"];
  ASSERT_EQ(wm.size(), layout.size());
  for (size_t k = 0; k < plan.size(); ++k)
    for (size_t i : plan[k])
      EXPECT_EQ(wm.at(layout[i].first).get<std::string>(), shard_file_name(k + 1, 4))
          << layout[i].first;
}

TEST(ModelWriter, PlanEdgeCases) {
  const std::vector<std::pair<std::string, Shape>> layout = {
      {"a", {10}}, {"b", {100}}, {"c", {5}}, {"d", {5}}, {"e", {1}}};
  // 2 bytes per element; limit 40 bytes: b (200 bytes) gets a shard of its own.
  const auto plan = plan_shards(layout, DType::BF16, 40);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0], (std::vector<size_t>{0}));
  EXPECT_EQ(plan[1], (std::vector<size_t>{1}));
  EXPECT_EQ(plan[2], (std::vector<size_t>{2, 3, 4}));
  EXPECT_EQ(shard_file_name(3, 12), "model-00003-of-00012.safetensors");
}

TEST(ModelWriter, RandomFillIsIndependentOfChunking) {
  std::vector<uint16_t> whole(1001), parts(1001);
  fill_random_bf16(whole.data(), 0, whole.size(), 5, 9, 0.0f, 1.0f);
  fill_random_bf16(parts.data(), 0, 333, 5, 9, 0.0f, 1.0f);
  fill_random_bf16(parts.data() + 333, 333, 1, 5, 9, 0.0f, 1.0f);
  fill_random_bf16(parts.data() + 334, 334, 667, 5, 9, 0.0f, 1.0f);
  EXPECT_EQ(whole, parts);
  // Standard normal: mean 0, variance 1, and some values beyond 3 sigma in 2^20 draws.
  std::vector<uint16_t> big(1 << 20);
  fill_random_bf16(big.data(), 0, big.size(), 1, 2, 0.0f, 1.0f);
  double sum = 0, sq = 0;
  size_t tail = 0;
  for (uint16_t h : big) {
    const double x = bf16_to_f32(h);
    sum += x;
    sq += x * x;
    tail += std::fabs(x) > 3;
  }
  EXPECT_NEAR(sum / big.size(), 0.0, 0.01);
  EXPECT_NEAR(sq / big.size(), 1.0, 0.01);
  EXPECT_NEAR(static_cast<double>(tail) / big.size(), 0.0027, 0.0008);
}

TEST(ModelWriter, ConfigJsonRoundTrips) {
  for (const char* preset : {"tiny", "mid", "full"}) {
    const ModelConfig c = preset_config(preset);
    const ModelConfig back = ModelConfig::parse(config_json(c), preset);
    EXPECT_EQ(config_json(back), config_json(c)) << preset;
    EXPECT_EQ(expected_tensors(back), expected_tensors(c)) << preset;
  }
  EXPECT_EQ(json::parse(config_json(preset_config("full"))),
            json::parse(read_text(testing_paths::shared() / "stepaudio2-mini/config.json")));
  int64_t mid = 0;
  for (auto& [n, s] : tensor_layout(preset_config("mid"))) mid += shape_numel(s);
  EXPECT_GT(mid, 400'000'000);
  EXPECT_LT(mid, 800'000'000);
  EXPECT_THROW(preset_config("huge"), Error);
}

TEST(ModelWriter, RejectsLostSymlinkTokenizerFolders) {
  TempDir out("lost");
  ModelWriteOptions o = options(5'000'000'000);
  o.tokenizer_dir = (testing_paths::golden() / "tiny-a").string();  // holds lost symlinks
  try {
    write_random_model(out.path().string(), preset_config("tiny"), o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lost symbolic link"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tiny-a/vocab.json"), std::string::npos) << e.what();
  }
  // Nothing was written.
  EXPECT_TRUE(!fs::exists(out.path()) || fs::is_empty(out.path()));
  o.tokenizer_dir = (out.path() / "nowhere").string();
  EXPECT_THROW(write_random_model(out.path().string(), preset_config("tiny"), o), Error);
}

TEST(ModelWriter, DefaultTokenizerIsTheBundledOne) {
  EXPECT_EQ(fs::canonical(default_tokenizer_dir()), fs::canonical(bundled_tokenizer()));
}

TEST(ModelWriter, OutputErrorsLeaveNoPartialFiles) {
  TempDir out("err");
  fs::create_directories(out.path());
  { std::ofstream(out.path() / "file") << "x"; }
  EXPECT_THROW(write_random_model((out.path() / "file").string(), preset_config("tiny"),
                                  options(5'000'000'000)),
               Error);
  // A shard name that is a directory cannot be replaced: the error names it, no temp file stays.
  fs::create_directories(out.path() / "m" / "model-00001-of-00001.safetensors");
  try {
    write_random_model((out.path() / "m").string(), preset_config("tiny"), options(5'000'000'000));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model-00001-of-00001.safetensors"), std::string::npos)
        << e.what();
  }
  for (auto& e : fs::directory_iterator(out.path() / "m"))
    EXPECT_EQ(e.path().filename(), "model-00001-of-00001.safetensors");
  ModelConfig bad = preset_config("tiny");
  bad.audio.llm_dim = 64;
  EXPECT_THROW(write_random_model((out.path() / "bad").string(), bad, options(1000)), Error);
}
