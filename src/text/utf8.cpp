#include "text/utf8.h"

namespace stepaudio::text {

namespace {
inline bool cont(unsigned char c) { return (c & 0xC0) == 0x80; }

// Sequence length announced by a lead byte (0 for bytes that cannot start a sequence) and the
// allowed range of the second byte, which excludes overlongs, surrogates and values > U+10FFFF.
struct Lead {
  int len;
  unsigned char lo, hi;
};
inline Lead lead(unsigned char c) {
  if (c < 0x80) return {1, 0, 0};
  if (c >= 0xC2 && c <= 0xDF) return {2, 0x80, 0xBF};
  if (c == 0xE0) return {3, 0xA0, 0xBF};
  if (c == 0xED) return {3, 0x80, 0x9F};
  if (c >= 0xE1 && c <= 0xEF) return {3, 0x80, 0xBF};
  if (c == 0xF0) return {4, 0x90, 0xBF};
  if (c >= 0xF1 && c <= 0xF3) return {4, 0x80, 0xBF};
  if (c == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}
}  // namespace

size_t utf8_sequence(std::string_view s, size_t i, size_t* prefix) {
  const auto c = static_cast<unsigned char>(s[i]);
  const Lead l = lead(c);
  if (l.len == 1) return 1;
  if (l.len == 0) {
    if (prefix) *prefix = 1;
    return 0;
  }
  size_t k = 1;
  if (i + 1 < s.size()) {
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 >= l.lo && c1 <= l.hi) {
      k = 2;
      while (k < static_cast<size_t>(l.len) && i + k < s.size() &&
             cont(static_cast<unsigned char>(s[i + k])))
        ++k;
    }
  }
  if (k == static_cast<size_t>(l.len)) return k;
  if (prefix) *prefix = k;
  return 0;
}

size_t utf8_invalid_offset(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = utf8_sequence(s, i);
    if (n == 0) return i;
    i += n;
  }
  return s.size();
}

std::string utf8_lossy(std::string_view s) {
  const size_t bad = utf8_invalid_offset(s);
  if (bad == s.size()) return std::string(s);
  std::string out(s.substr(0, bad));
  out.reserve(s.size() + 8);
  size_t i = bad;
  while (i < s.size()) {
    size_t prefix = 0;
    const size_t n = utf8_sequence(s, i, &prefix);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      i += prefix;
    }
  }
  return out;
}

size_t utf8_incomplete_tail(std::string_view s) {
  // A sequence is at most 4 bytes, so only a lead byte among the last 3 can still be waiting.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t i = n - back;
    const auto c = static_cast<unsigned char>(s[i]);
    if (cont(c)) continue;
    const Lead l = lead(c);
    if (l.len <= static_cast<int>(back)) return 0;  // ASCII, invalid lead, or already complete
    size_t prefix = 0;
    if (utf8_sequence(s, i, &prefix) != 0) return 0;
    return prefix == back ? back : 0;  // the bytes after the lead must all belong to it
  }
  return 0;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t utf8_decode_at(std::string_view s, size_t i, size_t n) {
  const auto b = [&](size_t k) {
    return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k]));
  };
  switch (n) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

}  // namespace stepaudio::text
