// The tokenizer file formats: HF tokenizer.json, and the "slow" layout vocab.json + merges.txt +
// tokenizer_config.json / added_tokens.json / special_tokens_map.json.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "text/byte_level.h"
#include "text/tokenizer.h"
#include "text/tokenizer_impl.h"

namespace stepaudio::text {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// GPT-2's pattern, used when a tokenizer.json asks ByteLevel to split by itself.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail("{}: cannot open: {}", p.string(), std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail("{}: read error", p.string());
  return ss.str();
}

json parse_json(const fs::path& p) {
  const std::string text = read_file(p);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    // A copied relative symlink leaves a tiny file holding the link target; say so.
    if (text.size() < 256 && text.find('/') != std::string::npos &&
        text.find('{') == std::string::npos)
      fail(
          "{}: not valid JSON; the file holds the text {:?}, which looks like a symbolic link "
          "that was copied as a file (use the file it points to)",
          p.string(), text);
    fail("{}: not valid JSON: {}", p.string(), e.what());
  }
}

// Vocabulary entries (token in the byte alphabet -> id) as raw bytes.
std::vector<std::pair<std::string, int32_t>> read_vocab(const json& v, const std::string& where) {
  if (!v.is_object())
    fail("{}: expected an object mapping tokens to ids, found {}", where, v.type_name());
  std::vector<std::pair<std::string, int32_t>> out;
  out.reserve(v.size());
  for (const auto& [tok, id] : v.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 24))
      fail("{}: token {:?}: expected a non-negative integer id, found {}", where, tok, id.dump());
    auto bytes = byte_level_decode(tok);
    if (!bytes)
      fail(
          "{}: token {:?} is not spelled in the byte-level alphabet (is this a byte-level BPE "
          "vocabulary?)",
          where, tok);
    out.emplace_back(std::move(*bytes), id.get<int32_t>());
  }
  return out;
}

std::string merge_part(const std::string& s, const std::string& where, size_t rank) {
  auto b = byte_level_decode(s);
  if (!b) fail("{}: merge {}: {:?} is not spelled in the byte-level alphabet", where, rank, s);
  return std::move(*b);
}

AddedToken added_token_from(const json& j, int32_t id, const std::string& where) {
  if (!j.is_object() || !j.contains("content") || !j["content"].is_string())
    fail("{}: added token {}: expected an object with a string \"content\"", where, id);
  AddedToken t;
  t.id = id;
  t.content = j["content"].get<std::string>();
  const auto flag = [&](const char* name, bool dflt) {
    if (!j.contains(name) || j[name].is_null()) return dflt;
    if (!j[name].is_boolean())
      fail("{}: added token {} ({:?}): \"{}\" must be true or false, found {}", where, id,
           t.content, name, j[name].dump());
    return j[name].get<bool>();
  };
  t.special = flag("special", false);
  // transformers' AddedToken defaults normalized to "not special".
  t.normalized = flag("normalized", !t.special);
  t.lstrip = flag("lstrip", false);
  t.rstrip = flag("rstrip", false);
  t.single_word = flag("single_word", false);
  return t;
}

void expect_nfc_normalizer(const json& n, const std::string& where, bool& nfc) {
  if (n.is_null()) {
    nfc = false;
    return;
  }
  const std::string type = n.value("type", "");
  if (type == "NFC") {
    nfc = true;
    return;
  }
  if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
    nfc = false;
    for (const auto& s : n["normalizers"]) {
      if (s.value("type", "") != "NFC")
        fail("{}: normalizer {} is not supported (only NFC)", where, s.dump());
      nfc = true;
    }
    return;
  }
  fail("{}: normalizer {} is not supported (only NFC or none)", where, n.dump().substr(0, 200));
}

std::string pre_tokenizer_pattern(const json& p, const std::string& where) {
  const auto unsupported = [&]() -> std::string {
    fail(
        "{}: pre_tokenizer {} is not supported (expected Sequence[Split(regex, Isolated), "
        "ByteLevel] as in Qwen2, or ByteLevel)",
        where, p.dump().substr(0, 300));
  };
  const auto byte_level_ok = [&](const json& b, bool needs_regex) {
    return b.value("type", "") == "ByteLevel" && !b.value("add_prefix_space", false) &&
           b.value("use_regex", true) == needs_regex;
  };
  if (p.is_object() && byte_level_ok(p, true)) return std::string(kGpt2Pattern);
  if (!p.is_object() || p.value("type", "") != "Sequence" || !p.contains("pretokenizers"))
    return unsupported();
  const json& seq = p["pretokenizers"];
  if (!seq.is_array() || seq.size() != 2 || !byte_level_ok(seq[1], false)) return unsupported();
  const json& s = seq[0];
  if (s.value("type", "") != "Split" || s.value("behavior", "") != "Isolated" ||
      s.value("invert", false) || !s.contains("pattern") || !s["pattern"].is_object() ||
      !s["pattern"].contains("Regex") || !s["pattern"]["Regex"].is_string())
    return unsupported();
  return s["pattern"]["Regex"].get<std::string>();
}

}  // namespace

Tokenizer Tokenizer::load(const fs::path& dir) {
  if (!fs::is_directory(dir))
    fail(
        "{}: not a folder (expected a model folder with tokenizer.json or vocab.json + "
        "merges.txt)",
        dir.string());
  if (fs::exists(dir / "tokenizer.json")) return load_tokenizer_json(dir / "tokenizer.json");
  if (fs::exists(dir / "vocab.json") || fs::exists(dir / "merges.txt"))
    return load_vocab_merges(dir);
  fail("{}: no tokenizer found (expected tokenizer.json, or vocab.json and merges.txt)",
       dir.string());
}

Tokenizer Tokenizer::load_tokenizer_json(const fs::path& file) {
  const std::string where = file.string();
  const json j = parse_json(file);
  if (!j.is_object()) fail("{}: expected a JSON object at the top level", where);
  if (!j.contains("model") || !j["model"].is_object()) fail("{}: missing \"model\" object", where);
  const json& model = j["model"];
  const std::string type = model.value("type", "BPE");
  if (type != "BPE") fail("{}: model.type is {:?}; only BPE is supported", where, type);
  if (model.contains("dropout") && !model["dropout"].is_null())
    fail("{}: model.dropout is set; BPE dropout is not supported for inference", where);
  if (model.value("byte_fallback", false))
    fail("{}: model.byte_fallback is not supported (byte-level BPE needs none)", where);
  if (!model.value("continuing_subword_prefix", json("")).is_null() &&
      !model.value("continuing_subword_prefix", std::string()).empty())
    fail("{}: model.continuing_subword_prefix is not supported", where);
  if (!model.contains("vocab")) fail("{}: missing model.vocab", where);
  if (!model.contains("merges") || !model["merges"].is_array())
    fail("{}: missing model.merges (expected an array)", where);

  auto impl = std::make_unique<Impl>();
  impl->source = where;
  auto vocab = read_vocab(model["vocab"], where + ": model.vocab");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(model["merges"].size());
  const std::string mwhere = where + ": model.merges";
  size_t rank = 0;
  for (const auto& m : model["merges"]) {
    ++rank;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() ||
          s.find(' ', sp + 1) != std::string::npos)
        fail("{}: merge {}: expected \"a b\" (two tokens, one space), found {:?}", mwhere, rank, s);
      merges.emplace_back(merge_part(s.substr(0, sp), mwhere, rank),
                          merge_part(s.substr(sp + 1), mwhere, rank));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(merge_part(m[0].get<std::string>(), mwhere, rank),
                          merge_part(m[1].get<std::string>(), mwhere, rank));
    } else {
      fail("{}: merge {}: expected \"a b\" or [\"a\", \"b\"], found {}", mwhere, rank, m.dump());
    }
  }
  impl->bpe = std::make_unique<Bpe>(std::move(vocab), merges, where + ": model",
                                    model.value("ignore_merges", false));
  expect_nfc_normalizer(j.value("normalizer", json()), where, impl->nfc);
  impl->pre = std::make_unique<PreTokenizer>(
      pre_tokenizer_pattern(j.value("pre_tokenizer", json()), where), where);
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) fail("{}: added_tokens must be an array", where);
    for (const auto& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer())
        fail("{}: added_tokens: entry {} has no integer \"id\"", where, t.dump().substr(0, 200));
      impl->added.push_back(added_token_from(t, t["id"].get<int32_t>(), where + ": added_tokens"));
    }
  }
  impl->index_added_tokens(where + ": added_tokens");
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::load_vocab_merges(const fs::path& dir) {
  const fs::path vocab_path = dir / "vocab.json", merges_path = dir / "merges.txt";
  for (const auto& p : {vocab_path, merges_path})
    if (!fs::exists(p))
      fail("{}: missing (a vocab.json + merges.txt tokenizer needs both)", p.string());

  auto impl = std::make_unique<Impl>();
  impl->source = dir.string();
  auto vocab = read_vocab(parse_json(vocab_path), vocab_path.string());

  const std::string text = read_file(merges_path);
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(text.size() / 12);
  size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() ||
        line.find(' ', sp + 1) != std::string::npos)
      fail("{}: line {}: malformed merge {:?} (expected two tokens separated by one space)",
           merges_path.string(), line_no, std::string(line.substr(0, 200)));
    const std::string where = fmt::format("{}: line {}", merges_path.string(), line_no);
    const auto part = [&](std::string_view s) {
      auto b = byte_level_decode(s);
      if (!b) fail("{}: {:?} is not spelled in the byte-level alphabet", where, std::string(s));
      return std::move(*b);
    };
    merges.emplace_back(part(line.substr(0, sp)), part(line.substr(sp + 1)));
  }
  impl->bpe = std::make_unique<Bpe>(std::move(vocab), merges,
                                    vocab_path.string() + " + " + merges_path.string());
  impl->pre = std::make_unique<PreTokenizer>(kQwen2Pattern, dir.string());
  impl->nfc = true;

  // Added tokens: tokenizer_config.json's added_tokens_decoder holds them with their flags; only
  // without it does transformers fall back to added_tokens.json (flags derived from whether the
  // token is listed as special).
  const fs::path config_path = dir / "tokenizer_config.json";
  const fs::path added_path = dir / "added_tokens.json";
  const fs::path special_path = dir / "special_tokens_map.json";
  json config = fs::exists(config_path) ? parse_json(config_path) : json::object();
  if (!config.is_object()) fail("{}: expected a JSON object", config_path.string());
  std::string where;
  if (config.contains("added_tokens_decoder")) {
    where = config_path.string() + ": added_tokens_decoder";
    const json& d = config["added_tokens_decoder"];
    if (!d.is_object()) fail("{}: expected an object mapping ids to tokens", where);
    for (const auto& [key, t] : d.items()) {
      char* endp = nullptr;
      const long id = std::strtol(key.c_str(), &endp, 10);
      if (key.empty() || *endp != '\0' || id < 0 || id >= (1 << 24))
        fail("{}: key {:?} is not a token id", where, key);
      impl->added.push_back(added_token_from(t, static_cast<int32_t>(id), where));
    }
  } else if (fs::exists(added_path)) {
    where = added_path.string();
    std::set<std::string> specials;
    const auto collect = [&](const json& j) {
      if (!j.is_object()) return;
      for (const auto& [k, v] : j.items()) {
        if (!k.ends_with("_token") && k != "additional_special_tokens") continue;
        const auto add = [&](const json& x) {
          if (x.is_string())
            specials.insert(x.get<std::string>());
          else if (x.is_object() && x.contains("content") && x["content"].is_string())
            specials.insert(x["content"].get<std::string>());
        };
        if (v.is_array())
          for (const auto& x : v) add(x);
        else
          add(v);
      }
    };
    collect(config);
    if (fs::exists(special_path)) collect(parse_json(special_path));
    const json a = parse_json(added_path);
    if (!a.is_object()) fail("{}: expected an object mapping tokens to ids", where);
    for (const auto& [content, id] : a.items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 24))
        fail("{}: token {:?}: expected a non-negative integer id, found {}", where, content,
             id.dump());
      AddedToken t;
      t.id = id.get<int32_t>();
      t.content = content;
      t.special = specials.count(content) > 0;
      t.normalized = !t.special;
      impl->added.push_back(std::move(t));
    }
  } else {
    log::warn(
        "{}: no added tokens (neither tokenizer_config.json added_tokens_decoder nor "
        "added_tokens.json); control tokens will be split by BPE",
        dir.string());
  }
  if (config.contains("tokenizer_class") && config["tokenizer_class"].is_string()) {
    const std::string cls = config["tokenizer_class"].get<std::string>();
    if (!cls.starts_with("Qwen2Tokenizer"))
      log::warn("{}: tokenizer_class is {}; this loader implements Qwen2Tokenizer",
                config_path.string(), cls);
  }
  impl->index_added_tokens(where.empty() ? dir.string() : where);
  return Tokenizer(std::move(impl));
}

}  // namespace stepaudio::text
