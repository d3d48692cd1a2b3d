#include "stepaudio/speech_background.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#if STEPAUDIO_CUDA
#include "backend/cuda/runtime.h"
#endif

namespace stepaudio {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The GPU work this thread has queued is finished and its freed blocks are free for all: the
// weights the caller uploaded before starting the worker, or the worker's own work at its end.
void hand_over() {
#if STEPAUDIO_CUDA
  cuda::finish_thread_work();
#endif
}
}  // namespace

struct BackgroundSpeech::Impl {
  Speaker& speaker;
  mutable std::mutex mu;
  std::condition_variable wake;
  std::deque<std::vector<int32_t>> queue;  // codes not yet given to the stream
  bool finishing = false, stop = false, done = false;
  std::vector<float> ready;  // samples produced, not yet taken
  std::exception_ptr error;
  int64_t chunks = 0;
  double first_audio = -1;
  std::thread worker;

  explicit Impl(Speaker& s) : speaker(s) {
    hand_over();
    worker = std::thread([this] { run(); });
  }

  void add(const std::vector<float>& piece, int64_t n_chunks) {
    std::lock_guard<std::mutex> lock(mu);
    if (!piece.empty() && first_audio < 0) first_audio = now_s();
    ready.insert(ready.end(), piece.begin(), piece.end());
    chunks = n_chunks;
  }

  void run() {
    try {
      Speaker::Stream stream = speaker.stream();
      for (;;) {
        std::vector<int32_t> codes;
        bool last = false;
        {
          std::unique_lock<std::mutex> lock(mu);
          wake.wait(lock, [&] { return stop || finishing || !queue.empty(); });
          if (stop) break;
          for (const auto& c : queue) codes.insert(codes.end(), c.begin(), c.end());
          queue.clear();
          last = finishing;
        }
        if (!codes.empty()) add(stream.push(codes), stream.chunks());
        if (last) {
          add(stream.finish(), stream.chunks());
          break;
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      error = std::current_exception();
    }
    try {
      hand_over();
    } catch (...) {  // a broken device: the error above (or the next GPU call) reports it
    }
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    wake.notify_all();
  }

  std::vector<float> take_locked() {
    if (error) std::rethrow_exception(error);
    return std::exchange(ready, {});
  }
};

BackgroundSpeech::BackgroundSpeech(Speaker& speaker) : impl_(std::make_unique<Impl>(speaker)) {}

BackgroundSpeech::~BackgroundSpeech() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->wake.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
}

std::vector<float> BackgroundSpeech::push(const std::vector<int32_t>& codes) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->finishing) throw Error("BackgroundSpeech::push: the stream has already finished");
  if (!codes.empty()) {
    impl_->queue.push_back(codes);
    impl_->wake.notify_all();
  }
  return impl_->take_locked();
}

std::vector<float> BackgroundSpeech::finish() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (!impl_->finishing) {
    impl_->finishing = true;
    impl_->wake.notify_all();
  }
  impl_->wake.wait(lock, [&] { return impl_->done; });
  return impl_->take_locked();
}

int64_t BackgroundSpeech::chunks() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->chunks;
}

double BackgroundSpeech::first_audio_time() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->first_audio;
}

}  // namespace stepaudio
