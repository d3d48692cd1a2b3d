// Builds tiny torch.save-style archives in the tests: a pickle writer for state_dicts (the same
// opcodes torch.save uses) and a zip writer (libzip), so that every malformed case the reader
// must reject can be made on the spot.
#pragma once
#include <unistd.h>
#include <zip.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace t2w_fixture {

// One tensor record: a storage (class, key, element count) and the view on it.
struct Rec {
  std::string name;
  std::string storage_class = "FloatStorage";
  std::string key;
  int64_t storage_numel = 0;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

class Pickle {
 public:
  Pickle& proto() { return raw("\x80\x02"); }
  Pickle& raw(const std::string& s) {
    b_ += s;
    return *this;
  }
  Pickle& op(char c) {
    b_ += c;
    return *this;
  }
  Pickle& global(const std::string& mod, const std::string& name) {
    return op('c').raw(mod + "\n" + name + "\n");
  }
  Pickle& str(const std::string& s) {
    op('X');
    le(s.size(), 4);
    return raw(s);
  }
  Pickle& integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      le(static_cast<uint64_t>(v), 1);
    } else if (v >= 0 && v < 65536) {
      op('M');
      le(static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      le(static_cast<uint64_t>(static_cast<uint32_t>(static_cast<int32_t>(v))), 4);
    } else {
      op('\x8a');
      le(8, 1);
      le(static_cast<uint64_t>(v), 8);
    }
    return *this;
  }
  Pickle& tuple_of(const std::vector<int64_t>& v) {
    op('(');
    for (int64_t x : v) integer(x);
    return op('t');
  }
  // _rebuild_tensor_v2((storage record), offset, size, stride, False, OrderedDict())
  Pickle& tensor(const Rec& r) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').str("storage").global("torch", r.storage_class).str(r.key).str("cpu");
    integer(r.storage_numel).op('t').op('Q');
    integer(r.offset).tuple_of(r.size).tuple_of(r.stride).op('\x89');
    global("collections", "OrderedDict").op(')').op('R');
    return op('t').op('R');
  }
  // A whole state_dict pickle (OrderedDict, SETITEMS, STOP).
  static std::string state_dict(const std::vector<Rec>& recs) {
    Pickle p;
    p.proto().global("collections", "OrderedDict").op(')').op('R').op('(');
    for (const Rec& r : recs) p.str(r.name).tensor(r);
    return p.op('u').op('.').bytes();
  }
  const std::string& bytes() const { return b_; }

 private:
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  std::string b_;
};

inline std::string floats(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// Writes a zip of (name, bytes) entries, stored uncompressed like torch.save does.
inline void write_zip(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, std::string>>& entries) {
  std::filesystem::remove(path);
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z) throw std::runtime_error("zip_open failed for " + path.string());
  for (const auto& [name, data] : entries) {
    // libzip reads the buffer at zip_close, so it must stay alive until then: the caller's
    // vector holds it.
    zip_source_t* src = zip_source_buffer(z, data.data(), data.size(), 0);
    const zip_int64_t idx = src ? zip_file_add(z, name.c_str(), src, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
      if (src) zip_source_free(src);
      zip_discard(z);
      throw std::runtime_error("zip_file_add failed for " + name);
    }
    zip_set_file_compression(z, static_cast<zip_uint64_t>(idx), ZIP_CM_STORE, 0);
  }
  if (zip_close(z) != 0) {
    zip_discard(z);
    throw std::runtime_error("zip_close failed for " + path.string());
  }
}

// A fresh empty folder under the system temp dir, removed with the object.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::filesystem::path path_;
};

}  // namespace t2w_fixture
