// Per-subscriber sliding-window counters for reply safety (docs/pipeline.md "Reply safety"):
// at most N MOs per minute per number are processed, at most K ingest-time replies per number
// per hour are sent.
//
// Kept in memory, per instance (documented choice): the limits protect a balance and the SMSC
// from one stuck phone or auto-responder, whose MOs an SMSC delivers over one link, i.e. to one
// instance; with several instances behind one SMSC account a number may get up to
// (instances x N) MOs processed a minute. Nothing here moves money: a limit only stops work.
// Thread-safe (one mutex; an O(1) amortised step per call).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace donagate::daemon {

class SubscriberWindow {
 public:
  using Clock = std::chrono::steady_clock;
  // `limit` events per `window` per key; limit 0 admits everything.
  SubscriberWindow(int limit, Clock::duration window) : limit_(limit), window_(window) {}

  enum class Verdict {
    kAdmitted,   // within the limit (counted)
    kFirstOver,  // the first event over the limit in this window (counted as "told")
    kOver,       // over the limit again
  };
  Verdict Admit(const std::string& key, Clock::time_point now);
  size_t keys() const;

 private:
  struct Entry {
    std::deque<Clock::time_point> admitted;
    Clock::time_point told_at{};  // when kFirstOver was last given
  };
  void DropIdle(Clock::time_point now);

  const int limit_;
  const Clock::duration window_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  uint64_t calls_ = 0;
};

}  // namespace donagate::daemon
