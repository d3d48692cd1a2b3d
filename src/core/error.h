// Errors carry a message a user can act on: which file, field or tensor, what was expected and
// what was found. Library code throws stepaudio::Error; the CLI and the server turn it into a
// non-zero exit or a 4xx reply.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace stepaudio {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

// An internal invariant (a bug, not bad input).
#define SA_CHECK(cond, ...)                                                                 \
  do {                                                                                      \
    if (!(cond))                                                                            \
      ::stepaudio::fail("internal check failed: {} ({}:{}): {}", #cond, __FILE__, __LINE__, \
                        fmt::format(__VA_ARGS__));                                          \
  } while (0)

}  // namespace stepaudio
