#include "daemon/redelivery_guard.h"

#include <algorithm>

namespace donagate::daemon {

std::string RedeliveryKey(std::string_view operator_name, std::string_view source_addr,
                          std::string_view dest_addr, uint8_t data_coding, uint8_t esm_class,
                          std::string_view raw_payload) {
  // Length-prefixed fields: no separator can be forged by a payload byte.
  std::string key;
  key.reserve(operator_name.size() + source_addr.size() + dest_addr.size() + raw_payload.size() + 16);
  auto field = [&](std::string_view v) {
    const auto n = static_cast<uint32_t>(v.size());
    key.push_back(static_cast<char>(n >> 8));
    key.push_back(static_cast<char>(n & 0xff));
    key.append(v);
  };
  field(operator_name);
  field(source_addr);
  field(dest_addr);
  key.push_back(static_cast<char>(data_coding));
  key.push_back(static_cast<char>(esm_class));
  field(raw_payload);
  return key;
}

std::string_view ToString(UncertainReason reason) {
  switch (reason) {
    case UncertainReason::kInDoubt: return "in_doubt";
    case UncertainReason::kSessionClosed: return "session_closed";
    case UncertainReason::kAfterCrash: return "after_crash";
    case UncertainReason::kLateAck: return "late_ack";
  }
  return "in_doubt";
}

void RedeliveryGuard::Hold(const std::string& key) {
  std::lock_guard lock(mu_);
  Entry e;
  e.held = true;
  entries_[key].push_back(e);
  ++size_;
  ++held_;
}

void RedeliveryGuard::Resolve(const std::string& key, bool committed, int64_t inbound_message_id) {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  auto& list = it->second;
  auto held = std::find_if(list.begin(), list.end(), [](const Entry& e) { return e.held; });
  if (held == list.end()) return;
  --held_;
  if (!committed) {
    list.erase(held);
    --size_;
    if (list.empty()) entries_.erase(it);
    return;
  }
  held->held = false;
  held->original_id = inbound_message_id;
  held->reason = UncertainReason::kInDoubt;
  held->expires_at = now + window_;
  expiry_.emplace_back(held->expires_at, key);
}

void RedeliveryGuard::AddCommitted(const std::string& key, int64_t inbound_message_id,
                                   UncertainReason reason) {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  ExpireLocked(now);
  Entry e;
  e.original_id = inbound_message_id;
  e.reason = reason;
  e.expires_at = now + window_;
  entries_[key].push_back(e);
  expiry_.emplace_back(e.expires_at, key);
  ++size_;
  while (size_ - held_ > max_committed_ && !expiry_.empty()) {
    auto [at, oldest] = std::move(expiry_.front());
    expiry_.pop_front();
    if (RemoveCommittedLocked(oldest, at)) ++dropped_;
  }
}

RedeliveryGuard::Match RedeliveryGuard::Check(const std::string& key) {
  Match m;
  std::lock_guard lock(mu_);
  if (entries_.empty()) return m;
  ExpireLocked(Clock::now());
  auto it = entries_.find(key);
  if (it == entries_.end()) return m;
  // A committed entry answers at once; only when every entry is still in doubt must the
  // redelivery wait.
  for (const Entry& e : it->second) {
    if (!e.held) {
      m.kind = Match::Kind::kRedelivery;
      m.original_id = e.original_id;
      m.reason = e.reason;
      return m;
    }
  }
  m.kind = Match::Kind::kHeld;
  return m;
}

void RedeliveryGuard::Consume(const std::string& key, int64_t original_id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  auto& list = it->second;
  auto e = std::find_if(list.begin(), list.end(),
                        [&](const Entry& x) { return !x.held && x.original_id == original_id; });
  if (e == list.end()) return;
  list.erase(e);
  --size_;
  if (list.empty()) entries_.erase(it);
}

bool RedeliveryGuard::RemoveCommittedLocked(const std::string& key, Clock::time_point at) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  auto& list = it->second;
  auto e = std::find_if(list.begin(), list.end(),
                        [&](const Entry& x) { return !x.held && x.expires_at == at; });
  if (e == list.end()) return false;  // consumed earlier
  list.erase(e);
  --size_;
  if (list.empty()) entries_.erase(it);
  return true;
}

void RedeliveryGuard::ExpireLocked(Clock::time_point now) {
  while (!expiry_.empty() && expiry_.front().first <= now) {
    auto [at, key] = std::move(expiry_.front());
    expiry_.pop_front();
    RemoveCommittedLocked(key, at);
  }
}

uint64_t RedeliveryGuard::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

size_t RedeliveryGuard::size() const {
  std::lock_guard lock(mu_);
  return size_;
}

size_t RedeliveryGuard::held() const {
  std::lock_guard lock(mu_);
  return held_;
}

}  // namespace donagate::daemon
