// Fuzzes the torch.save reader and the token2wav weight folding. An input starting with "PK" is
// read as a whole archive (zip layer + pickle). Anything else is taken as the pickle itself and
// wrapped here in a valid stored zip beside five small storages, so that mutations reach the
// pickle machine instead of failing the zip CRC check. Bad input must give stepaudio::Error,
// never a crash, a leak or an out-of-range read.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/torch_file.h"
#include "model/t2w_weights.h"

namespace {

uint32_t crc32(const std::string& s) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (unsigned char b : s) c = table[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

void le(std::string& out, uint32_t v, int n) {
  for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// A zip with every entry stored (no compression), as torch.save writes it.
std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out, dir;
  for (const auto& entry : entries) {
    const std::string& name = entry.first;
    const std::string& data = entry.second;
    const uint32_t offset = static_cast<uint32_t>(out.size()), crc = crc32(data);
    const auto size = static_cast<uint32_t>(data.size());
    auto header = [&](std::string& s, bool central) {
      le(s, central ? 0x02014b50u : 0x04034b50u, 4);
      if (central) le(s, 20, 2);  // version made by
      le(s, 20, 2);               // version needed
      le(s, 0, 2);                // flags
      le(s, 0, 2);                // method: stored
      le(s, 0, 4);                // time, date
      le(s, crc, 4);
      le(s, size, 4);
      le(s, size, 4);
      le(s, static_cast<uint32_t>(name.size()), 2);
      le(s, 0, 2);  // extra length
      if (central) {
        le(s, 0, 2);  // comment length
        le(s, 0, 2);  // disk
        le(s, 0, 2);  // internal attributes
        le(s, 0, 4);  // external attributes
        le(s, offset, 4);
      }
      s += name;
    };
    header(out, false);
    out += data;
    header(dir, true);
  }
  const uint32_t dir_offset = static_cast<uint32_t>(out.size());
  out += dir;
  le(out, 0x06054b50u, 4);
  le(out, 0, 4);  // disk numbers
  le(out, static_cast<uint32_t>(entries.size()), 2);
  le(out, static_cast<uint32_t>(entries.size()), 2);
  le(out, static_cast<uint32_t>(dir.size()), 4);
  le(out, dir_offset, 4);
  le(out, 0, 2);  // comment length
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stepaudio;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (!looks_like_zip(bytes.data(), bytes.size())) {
    std::string storage(256, '\0');
    for (size_t i = 0; i < storage.size(); ++i) storage[i] = static_cast<char>(i * 37 + 11);
    bytes = stored_zip({{"f/data.pkl", bytes},
                        {"f/byteorder", "little"},
                        {"f/data/0", storage},
                        {"f/data/1", storage},
                        {"f/data/2", storage.substr(0, 64)},
                        {"f/data/3", storage.substr(0, 16)},
                        {"f/data/4", ""}});
  }
  try {
    NamedTensors sd = read_torch_state_dict_memory(bytes.data(), bytes.size(), "fuzz.pt");
    volatile unsigned sum = 0;
    for (const auto& [name, t] : sd) {
      if (t.nbytes() > 0) {  // every accepted tensor must be readable end to end
        const auto* p = static_cast<const unsigned char*>(t.raw());
        sum = sum + p[0] + p[t.nbytes() - 1];
      }
    }
    fold_t2w_weights(std::move(sd), "fuzz.pt");
  } catch (const Error&) {
  }
  return 0;
}
