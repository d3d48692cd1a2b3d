// A one-line progress bar for long file operations (opening or writing a checkpoint). It draws
// only when its stream is a terminal, stays silent for operations that finish within `delay_ms`,
// redraws at most every 100 ms, and erases itself when done, so logs and pipes never see it.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace stepaudio {

class Progress {
 public:
  // `total` is in bytes; `enabled` = false makes every call a no-op.
  Progress(std::string label, uint64_t total, bool enabled = true, std::FILE* out = stderr,
           int delay_ms = 300);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(uint64_t bytes) { set(done_ + bytes); }
  void set(uint64_t done);
  void set_label(std::string label) { label_ = std::move(label); }
  // Erases the bar (if drawn). Called by the destructor.
  void finish();
  bool active() const { return active_; }  // the stream is a terminal and output is enabled

 private:
  void draw();
  std::string label_;
  uint64_t total_, done_ = 0;
  bool active_ = false, drawn_ = false;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_, last_;
  std::chrono::milliseconds delay_;
};

}  // namespace stepaudio
