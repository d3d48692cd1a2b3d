#include "io/model_writer.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/parallel.h"
#include "io/mapped_file.h"
#include "io/progress.h"

#ifndef STEPAUDIO_ASSETS_DIR
#define STEPAUDIO_ASSETS_DIR ""
#endif

namespace stepaudio {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

ModelConfig preset_config(const std::string& name) {
  ModelConfig c;  // the struct defaults are the official sizes
  if (name == "full") return c;
  if (name == "tiny") {
    c.text.hidden_size = 32;
    c.text.intermediate_size = 64;
    c.text.num_hidden_layers = 2;
    c.text.num_attention_heads = 2;
    c.text.num_key_value_heads = 1;
    c.text.max_position_embeddings = c.text.max_seq_len = 4096;
    c.audio.n_audio_state = 64;
    c.audio.n_audio_head = 2;
    c.audio.n_audio_layer = 2;
    c.audio.llm_dim = 32;
    return c;
  }
  if (name == "mid") {
    c.text.hidden_size = 896;
    c.text.intermediate_size = 4864;
    c.text.num_hidden_layers = 24;
    c.text.num_attention_heads = 14;
    c.text.num_key_value_heads = 2;
    c.audio.n_audio_state = 512;
    c.audio.n_audio_head = 8;
    c.audio.n_audio_layer = 6;
    c.audio.llm_dim = 896;
    return c;
  }
  fail("unknown model preset \"{}\"; expected tiny, mid or full", name);
}

std::string config_json(const ModelConfig& cfg) {
  const TextConfig& t = cfg.text;
  const AudioEncoderConfig& a = cfg.audio;
  ojson j;
  j["architectures"] = {"StepAudio2ForCausalLM"};
  j["auto_map"] = {{"AutoConfig", "configuration_step_audio_2.StepAudio2Config"},
                   {"AutoModelForCausalLM", "modeling_step_audio_2.StepAudio2ForCausalLM"}};
  j["model_type"] = "step_audio_2";
  ojson tc;
  tc["hidden_size"] = t.hidden_size;
  tc["intermediate_size"] = t.intermediate_size;
  tc["num_attention_heads"] = t.num_attention_heads;
  tc["num_attention_groups"] = t.num_key_value_heads;
  tc["num_key_value_heads"] = t.num_key_value_heads;
  tc["num_hidden_layers"] = t.num_hidden_layers;
  tc["max_seq_len"] = t.max_seq_len;
  tc["vocab_size"] = t.vocab_size;
  tc["rms_norm_eps"] = t.rms_norm_eps;
  tc["eos_token_id"] = t.eos_token_id;
  tc["pad_token_id"] = t.pad_token_id;
  tc["rope_theta"] = t.rope_theta;
  tc["max_position_embeddings"] = t.max_position_embeddings;
  tc["rope_scaling"] = nullptr;
  tc["torch_dtype"] = t.torch_dtype;
  j["text_config"] = std::move(tc);
  ojson ac;
  ac["n_mels"] = a.n_mels;
  ac["n_audio_ctx"] = a.n_audio_ctx;
  ac["n_audio_state"] = a.n_audio_state;
  ac["n_audio_head"] = a.n_audio_head;
  ac["n_audio_layer"] = a.n_audio_layer;
  ac["n_codebook_size"] = a.n_codebook_size;
  ac["llm_dim"] = a.llm_dim;
  ac["kernel_size"] = a.kernel_size;
  ac["adapter_stride"] = a.adapter_stride;
  j["audio_encoder_config"] = std::move(ac);
  return j.dump(2) + "\n";
}

std::vector<std::vector<size_t>> plan_shards(
    const std::vector<std::pair<std::string, Shape>>& layout, DType dtype, uint64_t shard_bytes) {
  std::vector<std::vector<size_t>> shards;
  uint64_t cur = 0;
  for (size_t i = 0; i < layout.size(); ++i) {
    const uint64_t b = static_cast<uint64_t>(shape_numel(layout[i].second)) * dtype_size(dtype);
    if (shards.empty() || (!shards.back().empty() && cur + b > shard_bytes)) {
      shards.emplace_back();
      cur = 0;
    }
    shards.back().push_back(i);
    cur += b;
  }
  return shards;
}

std::string shard_file_name(size_t k, size_t n) {
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", k, n);
}

const std::vector<std::string>& tokenizer_files() {
  static const std::vector<std::string> files = {"vocab.json", "merges.txt",
                                                 "tokenizer_config.json", "added_tokens.json",
                                                 "special_tokens_map.json"};
  return files;
}

std::string default_tokenizer_dir() {
  std::vector<fs::path> tried;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) tried.push_back(exe.parent_path().parent_path() / "share" / "stepaudio" / "tokenizer");
  if (std::strlen(STEPAUDIO_ASSETS_DIR) > 0)
    tried.push_back(fs::path(STEPAUDIO_ASSETS_DIR) / "tokenizer");
  std::string list;
  for (const fs::path& p : tried) {
    if (fs::is_regular_file(p / "vocab.json", ec)) return p.string();
    list += (list.empty() ? "" : ", ") + p.string();
  }
  fail("no tokenizer folder found (looked in: {}); pass one with --tokenizer DIR",
       list.empty() ? "nowhere" : list);
}

std::pair<float, float> init_mean_std(const std::string& n) {
  auto ends = [&n](std::string_view s) {
    return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
  };
  const bool norm = ends("layernorm.weight") || ends("_ln.weight") || ends("model.norm.weight") ||
                    ends("after_norm.weight");
  if (norm) return {1.0f, 0.02f};
  if (ends("positional_embedding.weight")) return {0.0f, 0.01f};
  if (ends(".bias")) return {0.0f, 0.01f};
  return {0.0f, 0.02f};  // Linear, Conv1d and embedding weights
}

namespace {

inline uint64_t mix64(uint64_t z) {  // the splitmix64 finaliser: a bijection with good avalanche
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t name_hash(const std::string& s) {  // FNV-1a: the stream of a tensor is its name
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

namespace {

// Inverse normal CDF, piecewise linear over 4096 equal-probability segments: a 32-bit draw picks a
// segment and a point inside it. About 5x faster than Box-Muller (no log/sqrt/sin per value),
// which matters when writing 8.3 B values. Tails end at the conditional tail mean reflected
// around the last quantile (|z| <= ~3.9), and the table is scaled to unit variance exactly.
constexpr int kSegments = 4096;

struct NormalTable {
  float v[kSegments + 1];
};

double normal_quantile(double p) {
  double lo = -10, hi = 10;
  for (int it = 0; it < 100; ++it) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

NormalTable make_normal_table() {
  std::vector<double> q(kSegments + 1);
  for (int k = 1; k < kSegments; ++k) q[k] = normal_quantile(static_cast<double>(k) / kSegments);
  // E[z | z < q1] = -pdf(q1) / cdf(q1): the first segment's midpoint lands on it.
  const double q1 = q[1];
  const double pdf = std::exp(-0.5 * q1 * q1) / std::sqrt(2 * M_PI);
  const double tail_mean = -pdf / (1.0 / kSegments);
  q[0] = 2 * tail_mean - q1;
  q[kSegments] = -q[0];
  double var = 0;  // each segment is uniform on [q_k, q_k+1] with probability 1/kSegments
  for (int k = 0; k < kSegments; ++k)
    var += (q[k] * q[k] + q[k] * q[k + 1] + q[k + 1] * q[k + 1]) / 3.0 / kSegments;
  NormalTable t;
  for (int k = 0; k <= kSegments; ++k) t.v[k] = static_cast<float>(q[k] / std::sqrt(var));
  return t;
}

const NormalTable& normal_table() {
  static const NormalTable t = make_normal_table();
  return t;
}

inline float normal_from_bits(const NormalTable& t, uint32_t h) {
  const uint32_t k = h >> 20;
  const float f = static_cast<float>(h & 0xfffff) * (1.0f / 1048576.0f);
  return t.v[k] + f * (t.v[k + 1] - t.v[k]);
}

}  // namespace

void fill_random_bf16(uint16_t* out, uint64_t first, uint64_t n, uint64_t seed, uint64_t stream,
                      float mean, float std) {
  const uint64_t key = mix64(seed ^ mix64(stream + 0x9e3779b97f4a7c15ull));
  const NormalTable& table = normal_table();
  // Each 64-bit draw gives the values of elements 2p and 2p+1 (low and high 32 bits).
  parallel_for(static_cast<int64_t>(n), int64_t{1} << 15, [&](int64_t b, int64_t e) {
    uint64_t i = first + static_cast<uint64_t>(b);
    const uint64_t end = first + static_cast<uint64_t>(e);
    if (i < end && (i & 1)) {
      const uint64_t x = mix64(key + (i >> 1) * 0x9e3779b97f4a7c15ull);
      out[i - first] = f32_to_bf16(mean + std * normal_from_bits(table, uint32_t(x >> 32)));
      ++i;
    }
    for (; i + 1 < end; i += 2) {
      const uint64_t x = mix64(key + (i >> 1) * 0x9e3779b97f4a7c15ull);
      out[i - first] = f32_to_bf16(mean + std * normal_from_bits(table, uint32_t(x)));
      out[i + 1 - first] = f32_to_bf16(mean + std * normal_from_bits(table, uint32_t(x >> 32)));
    }
    if (i < end) {
      const uint64_t x = mix64(key + (i >> 1) * 0x9e3779b97f4a7c15ull);
      out[i - first] = f32_to_bf16(mean + std * normal_from_bits(table, uint32_t(x)));
    }
  });
}

namespace {

// A file written under a temporary name and renamed into place by commit(); removed otherwise.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path)
      : path_(std::move(path)), tmp_(path_ + ".tmp" + std::to_string(::getpid())) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("{}: cannot write: {}", path_, std::strerror(errno));
  }
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail("{}: write failed: {}", path_, std::strerror(w < 0 ? errno : ENOSPC));
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
  void commit() {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("{}: write failed: {}", path_, std::strerror(errno));
    std::error_code ec;
    fs::rename(tmp_, path_, ec);
    if (ec) fail("{}: cannot move the finished file into place: {}", path_, ec.message());
    committed_ = true;
  }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

void write_text(const fs::path& path, const std::string& text) {
  AtomicFile f(path.string());
  f.write(text.data(), text.size());
  f.commit();
}

// A folder copied from a model whose symbolic links were lost holds tiny text files naming the
// link target instead of the tokenizer; catch that here rather than in the tokenizer later.
void check_tokenizer_file(const fs::path& p, const MappedFile& m) {
  const std::string_view s(m.data() ? m.data() : "", m.size());
  const size_t start = s.find_first_not_of(" \t\r\n");
  const bool is_json = p.extension() == ".json";
  const bool ok = is_json ? (start != std::string_view::npos && s[start] == '{')
                          : s.find('\n') != std::string_view::npos;
  if (!ok)
    fail(
        "{}: not a tokenizer file ({} bytes{}); is it a lost symbolic link? Pass the folder with "
        "the real files via --tokenizer",
        p.string(), s.size(),
        s.size() < 200 ? ": \"" + std::string(s.substr(0, s.find('\n'))) + "\"" : std::string());
}

}  // namespace

ModelWriteSummary write_random_model(const std::string& dir_in, const ModelConfig& cfg,
                                     const ModelWriteOptions& opt) {
  cfg.validate("model config");
  if (opt.shard_bytes == 0) fail("shard size must be positive");
  const fs::path dir(dir_in);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) fail("{}: cannot create the output folder", dir_in);

  std::vector<fs::path> tok_sources;
  if (opt.copy_tokenizer) {
    const fs::path tdir = opt.tokenizer_dir.empty() ? default_tokenizer_dir() : opt.tokenizer_dir;
    for (const std::string& f : tokenizer_files()) {
      if (!fs::exists(tdir / f, ec))
        fail("{}: tokenizer file {} is missing", (tdir / f).string(), f);
      tok_sources.push_back(tdir / f);
    }
    if (fs::exists(tdir / "tokenizer.json", ec)) tok_sources.push_back(tdir / "tokenizer.json");
    for (const fs::path& p : tok_sources) check_tokenizer_file(p, MappedFile(p.string()));
  }

  const auto layout = tensor_layout(cfg);
  const DType dtype = DType::BF16;
  const auto plan = plan_shards(layout, dtype, opt.shard_bytes);
  ModelWriteSummary sum;
  for (auto& [n, s] : layout) sum.params += static_cast<uint64_t>(shape_numel(s));
  sum.bytes = sum.params * dtype_size(dtype);
  sum.shards = plan.size();

  const fs::space_info space = fs::space(dir, ec);
  if (!ec && space.available < sum.bytes + (uint64_t{64} << 20))
    fail("{}: not enough disk space: the model needs {:.2f} GB, {:.2f} GB are available", dir_in,
         static_cast<double>(sum.bytes) / 1e9, static_cast<double>(space.available) / 1e9);

  Progress progress("writing " + dir.filename().string(), sum.bytes, opt.show_progress);
  json weight_map = json::object();
  constexpr uint64_t kChunk = uint64_t{1} << 22;  // elements per write (8 MB of BF16)
  std::vector<uint16_t> bufs[2] = {std::vector<uint16_t>(kChunk), std::vector<uint16_t>(kChunk)};
  for (size_t k = 0; k < plan.size(); ++k) {
    const std::string fname = shard_file_name(k + 1, plan.size());
    // Inside a shard, tensors are stored in name order, as the safetensors writers do.
    std::map<std::string, size_t> order;
    for (size_t i : plan[k]) order.emplace(layout[i].first, i);
    json header = json::object();
    header["__metadata__"] = {{"format", "pt"}};
    uint64_t off = 0;
    for (auto& [name, i] : order) {
      const uint64_t nb = static_cast<uint64_t>(shape_numel(layout[i].second)) * dtype_size(dtype);
      header[name] = {{"dtype", dtype_name(dtype)},
                      {"shape", layout[i].second},
                      {"data_offsets", {off, off + nb}}};
      off += nb;
      weight_map[name] = fname;
    }
    std::string hs = header.dump();
    hs.append((8 - hs.size() % 8) % 8, ' ');
    const uint64_t hlen = hs.size();

    AtomicFile file((dir / fname).string());
    file.write(&hlen, 8);
    file.write(hs.data(), hs.size());
    // Generation of one chunk overlaps the write of the previous one.
    std::future<void> pending;
    int cur = 0;
    for (auto& [name, i] : order) {
      const uint64_t numel = static_cast<uint64_t>(shape_numel(layout[i].second));
      const auto [mean, sd] = init_mean_std(name);
      const uint64_t stream = name_hash(name);
      for (uint64_t at = 0; at < numel; at += kChunk) {
        const uint64_t n = std::min(kChunk, numel - at);
        fill_random_bf16(bufs[cur].data(), at, n, opt.seed, stream, mean, sd);
        if (pending.valid()) pending.get();
        pending = std::async(std::launch::async, [&file, p = bufs[cur].data(), n] {
          file.write(p, n * sizeof(uint16_t));
        });
        cur ^= 1;
        progress.add(n * sizeof(uint16_t));
      }
    }
    if (pending.valid()) pending.get();
    file.commit();
    sum.files.push_back(fname);
  }

  for (const fs::path& src : tok_sources) {
    const MappedFile m(src.string());
    AtomicFile f((dir / src.filename()).string());
    f.write(m.data() ? m.data() : "", m.size());
    f.commit();
    sum.files.push_back(src.filename().string());
  }

  // config.json and the index last: a folder with an index always has its shards complete.
  write_text(dir / "config.json", config_json(cfg));
  sum.files.push_back("config.json");
  json index = {{"metadata", {{"total_size", sum.bytes}}}, {"weight_map", weight_map}};
  write_text(dir / "model.safetensors.index.json", index.dump(2) + "\n");
  sum.files.push_back("model.safetensors.index.json");
  progress.finish();
  return sum;
}

}  // namespace stepaudio
