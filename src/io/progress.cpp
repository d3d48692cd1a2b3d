#include "io/progress.h"

#include <algorithm>

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace stepaudio {

namespace {
std::string gb(uint64_t bytes) {
  return fmt::format("{:.2f} GB", static_cast<double>(bytes) / 1e9);
}
}  // namespace

Progress::Progress(std::string label, uint64_t total, bool enabled, std::FILE* out, int delay_ms)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      start_(std::chrono::steady_clock::now()),
      last_(start_),
      delay_(delay_ms) {
  active_ = enabled && out_ && ::isatty(::fileno(out_));
}

Progress::~Progress() { finish(); }

void Progress::set(uint64_t done) {
  done_ = std::min(done, total_);
  if (!active_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - start_ < delay_) return;
  if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done_ < total_) return;
  last_ = now;
  draw();
}

void Progress::draw() {
  int cols = 80;
  winsize ws{};
  if (::ioctl(::fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) cols = ws.ws_col;
  const double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done_) / secs : 0;
  std::string tail = fmt::format(" {:3.0f}% {}/{}", frac * 100, gb(done_), gb(total_));
  if (rate > 0 && done_ < total_)
    tail += fmt::format(" {:.2f} GB/s ETA {:.0f}s", rate / 1e9,
                        static_cast<double>(total_ - done_) / rate);
  const int bar = std::max(0, cols - 1 - static_cast<int>(label_.size() + tail.size()) - 3);
  std::string line = label_;
  if (bar >= 10) {
    const int fill = static_cast<int>(frac * bar);
    line += " [" + std::string(fill, '=') + std::string(bar - fill, ' ') + "]";
  }
  line += tail;
  if (static_cast<int>(line.size()) >= cols) line.resize(std::max(0, cols - 1));
  std::fprintf(out_, "\r%s\033[K", line.c_str());
  std::fflush(out_);
  drawn_ = true;
}

void Progress::finish() {
  if (drawn_) {
    std::fputs("\r\033[K", out_);
    std::fflush(out_);
    drawn_ = false;
  }
  active_ = false;
}

}  // namespace stepaudio
