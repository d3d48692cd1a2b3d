#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "io/mapped_file.h"

namespace stepaudio {

using json = nlohmann::json;

namespace {
// Renders a header value for an error message without recursing: headers are untrusted input and
// may nest deeply or be huge. Shapes (flat arrays of numbers) are shown in full when short.
std::string brief(const json& v) {
  if (v.is_array()) {
    if (v.size() > 16) return fmt::format("(an array of {} items)", v.size());
    std::string s = "[";
    for (const auto& e : v) {
      if (e.is_structured()) return fmt::format("(an array of {} items)", v.size());
      s += (s.size() > 1 ? ", " : "") + e.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    return s + "]";
  }
  if (v.is_object()) return fmt::format("(an object with {} keys)", v.size());
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 60) + "..." : s;
}
}  // namespace

std::map<std::string, TensorInfo> SafetensorsFile::parse_header(
    const char* text, size_t len, size_t data_size, const std::string& where,
    std::map<std::string, std::string>* meta) {
  json h;
  try {
    h = json::parse(text, text + len);
  } catch (const json::exception& e) {
    fail("{}: corrupt safetensors header: not valid JSON ({})", where, e.what());
  }
  if (!h.is_object()) fail("{}: corrupt safetensors header: expected a JSON object", where);
  std::map<std::string, TensorInfo> infos;
  std::vector<std::pair<size_t, size_t>> ranges;
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) fail("{}: __metadata__ must be an object of strings", where);
      for (auto& [k, mv] : v.items()) {
        if (!mv.is_string()) fail("{}: __metadata__.{} must be a string", where, k);
        if (meta) (*meta)[k] = mv.get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      fail("{}: tensor '{}': header entry needs dtype, shape and data_offsets", where, name);
    const auto& dt = v["dtype"];
    const auto& sh = v["shape"];
    const auto& off = v["data_offsets"];
    TensorInfo info;
    if (!dt.is_string() || !dtype_from_name(dt.get<std::string>(), &info.dtype))
      fail("{}: tensor '{}': unsupported dtype {}", where, name, brief(dt));
    if (!sh.is_array()) fail("{}: tensor '{}': shape must be an array", where, name);
    uint64_t numel = 1;
    for (const auto& d : sh) {
      if (!d.is_number_unsigned()) fail("{}: tensor '{}': bad shape {}", where, name, brief(sh));
      const uint64_t x = d.get<uint64_t>();
      if (x > (uint64_t{1} << 40) || (x && numel > (uint64_t{1} << 50) / x))
        fail("{}: tensor '{}': shape {} is too large", where, name, brief(sh));
      numel *= x;
      info.shape.push_back(static_cast<int64_t>(x));
    }
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      fail("{}: tensor '{}': data_offsets must be [begin, end]", where, name);
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > data_size)
      fail("{}: tensor '{}': data_offsets [{}, {}] outside the {} data bytes (truncated file?)",
           where, name, b, e, data_size);
    const uint64_t want = numel * dtype_size(info.dtype);
    if (e - b != want)
      fail("{}: tensor '{}': {} {} needs {} bytes but data_offsets span {}", where, name,
           dtype_name(info.dtype), shape_str(info.shape), want, e - b);
    info.begin = static_cast<size_t>(b);
    info.end = static_cast<size_t>(e);
    if (e > b) ranges.emplace_back(info.begin, info.end);
    infos.emplace(name, std::move(info));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      fail("{}: corrupt safetensors header: tensor data ranges overlap", where);
  return infos;
}

SafetensorsFile SafetensorsFile::from_bytes(std::shared_ptr<void> keep, const char* bytes,
                                            size_t size, const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.keep_ = std::move(keep);
  if (size < 8)
    fail("{}: not a safetensors file: {} bytes, shorter than the 8-byte header length", path, size);
  uint64_t hlen = 0;
  std::memcpy(&hlen, bytes, 8);  // little-endian host assumed (x86-64, aarch64)
  if (hlen > size - 8)
    fail("{}: corrupt or truncated safetensors file: header length {} exceeds file size {}", path,
         hlen, size);
  const char* hdr = bytes + 8;
  f.data_ = hdr + hlen;
  f.infos_ = parse_header(hdr, static_cast<size_t>(hlen), size - 8 - static_cast<size_t>(hlen),
                          path, &f.meta_);
  return f;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto map = std::make_shared<MappedFile>(path);
  const char* bytes = map->data();
  const size_t size = map->size();
  return from_bytes(std::move(map), bytes, size, path);
}

SafetensorsFile SafetensorsFile::open_memory(std::string bytes, const std::string& where) {
  auto buf = std::make_shared<std::string>(std::move(bytes));
  const char* data = buf->data();
  const size_t size = buf->size();
  return from_bytes(std::move(buf), data, size, where);
}

Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = infos_.find(name);
  if (it == infos_.end()) fail("{}: no tensor named '{}'", path_, name);
  const TensorInfo& info = it->second;
  return Tensor::borrow(const_cast<char*>(data_ + info.begin), info.shape, info.dtype,
                        Device::cpu(), keep_);
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> sorted;
  for (const auto& [n, t] : tensors)
    sorted.emplace_back(n, t.device().is_cpu() ? t : t.to(Device::cpu()));
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  size_t off = 0;
  for (const auto& [n, t] : sorted) {
    if (h.contains(n)) fail("{}: duplicate tensor name '{}'", path, n);
    h[n] = {{"dtype", dtype_name(t.dtype())},
            {"shape", t.shape()},
            {"data_offsets", {off, off + t.nbytes()}}};
    off += t.nbytes();
  }
  std::string hs = h.dump();
  hs.append((8 - hs.size() % 8) % 8, ' ');  // align the data section to 8 bytes
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  FILE* fp = std::fopen(tmp.c_str(), "wb");
  if (!fp) fail("{}: cannot write: {}", path, std::strerror(errno));
  const uint64_t hlen = hs.size();
  bool ok =
      std::fwrite(&hlen, 8, 1, fp) == 1 && std::fwrite(hs.data(), 1, hs.size(), fp) == hs.size();
  for (const auto& [n, t] : sorted)
    ok = ok && (t.nbytes() == 0 || std::fwrite(t.raw(), 1, t.nbytes(), fp) == t.nbytes());
  ok = (std::fclose(fp) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    fail("{}: write failed: {}", path, std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("{}: cannot move the finished file into place: {}", path, ec.message());
  }
}

}  // namespace stepaudio
