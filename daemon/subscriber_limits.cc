#include "daemon/subscriber_limits.h"

#include <vector>

namespace donagate::daemon {

SubscriberWindow::Verdict SubscriberWindow::Admit(const std::string& key, Clock::time_point now) {
  if (limit_ <= 0) return Verdict::kAdmitted;
  std::lock_guard<std::mutex> lock(mu_);
  if (++calls_ % 4096 == 0) DropIdle(now);
  Entry& e = entries_[key];
  while (!e.admitted.empty() && now - e.admitted.front() >= window_) e.admitted.pop_front();
  if (static_cast<int>(e.admitted.size()) < limit_) {
    e.admitted.push_back(now);
    return Verdict::kAdmitted;
  }
  // Told once per window: the notice itself must not become the flood.
  if (e.told_at == Clock::time_point{} || now - e.told_at >= window_) {
    e.told_at = now;
    return Verdict::kFirstOver;
  }
  return Verdict::kOver;
}

size_t SubscriberWindow::keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

void SubscriberWindow::DropIdle(Clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const bool idle = (it->second.admitted.empty() || now - it->second.admitted.back() >= window_) &&
                      (it->second.told_at == Clock::time_point{} || now - it->second.told_at >= window_);
    it = idle ? entries_.erase(it) : std::next(it);
  }
}

}  // namespace donagate::daemon
