#include "protocol/reassembly.h"

#include <algorithm>

namespace donagate::smpp {

ConcatKey MakeConcatKey(std::string link, std::string source, std::string destination, const ConcatInfo& info) {
  return ConcatKey{std::move(link), std::move(source), std::move(destination), info.ref, info.ref16, info.total};
}

Reassembler::Reassembler(ReassemblyOptions options) : options_(options) {
  options_.max_pending_sets = std::max<std::size_t>(options_.max_pending_sets, 1);
}

AssembledMessage Reassembler::Take(std::map<ConcatKey, PendingSet>::iterator it) {
  PendingSet& set = it->second;
  AssembledMessage message;
  message.key = it->first;
  message.first_received_at = set.first_received_at;
  std::vector<TextSegment> segments;
  for (std::size_t i = 0; i < set.parts.size(); ++i) {
    if (!set.parts[i]) {
      message.missing.push_back(static_cast<uint8_t>(i + 1));
      continue;
    }
    message.parts.push_back(std::move(*set.parts[i]));
  }
  segments.reserve(message.parts.size());
  for (const MessagePart& part : message.parts) {
    segments.push_back(TextSegment{part.user_data, part.data_coding, part.decode});
  }
  message.text = DecodeConcatenatedText(segments);
  pending_parts_ -= set.received;
  sets_by_age_.erase(AgeKey{set.first_received_at, set.order});
  sets_.erase(it);
  return message;
}

void Reassembler::AddTombstone(const ConcatKey& key, ReassemblyTime at) {
  if (auto old = tombstones_.find(key); old != tombstones_.end()) {
    tombstones_by_age_.erase(old->second);
    tombstones_.erase(old);
  }
  AgeKey age{at, next_order_++};
  tombstones_.emplace(key, age);
  tombstones_by_age_.emplace(age, key);
  while (tombstones_.size() > options_.max_pending_sets) {
    auto oldest = tombstones_by_age_.begin();
    tombstones_.erase(oldest->second);
    tombstones_by_age_.erase(oldest);
  }
}

Reassembler::Placement Reassembler::Place(MessagePart&& part, std::vector<AssembledMessage>* evicted,
                                          ConcatKey* completed_key) {
  if (part.key.total == 0 || part.seq == 0 || part.seq > part.key.total) return Placement::kInvalid;

  auto it = sets_.find(part.key);
  if (it == sets_.end()) {
    if (tombstones_.count(part.key) != 0) return Placement::kDuplicate;
    // A one-part "set" completes at once and never occupies memory: it must not push anyone out.
    while (part.key.total > 1 && sets_.size() >= options_.max_pending_sets) {
      evicted->push_back(Take(sets_.find(sets_by_age_.begin()->second)));
    }
    PendingSet set;
    set.parts.resize(part.key.total);
    set.first_received_at = part.received_at;
    set.order = next_order_++;
    sets_by_age_.emplace(AgeKey{set.first_received_at, set.order}, part.key);
    it = sets_.emplace(part.key, std::move(set)).first;
  }

  PendingSet& set = it->second;
  std::optional<MessagePart>& slot = set.parts[part.seq - 1];
  if (slot) {
    bool same = slot->user_data == part.user_data && slot->data_coding == part.data_coding;
    return same ? Placement::kDuplicate : Placement::kConflictingDuplicate;
  }
  if (part.received_at < set.first_received_at) {  // restored parts come in any order
    sets_by_age_.erase(AgeKey{set.first_received_at, set.order});
    set.first_received_at = part.received_at;
    sets_by_age_.emplace(AgeKey{set.first_received_at, set.order}, part.key);
  }
  slot = std::move(part);
  ++set.received;
  ++pending_parts_;
  if (set.received < set.parts.size()) return Placement::kStored;
  *completed_key = it->first;
  return Placement::kCompleted;
}

AddResult Reassembler::Add(MessagePart part) {
  AddResult result;
  ReassemblyTime received_at = part.received_at;
  ConcatKey completed_key;
  switch (Place(std::move(part), &result.evicted, &completed_key)) {
    case Placement::kStored:
      result.outcome = PartOutcome::kStored;
      break;
    case Placement::kDuplicate:
      result.outcome = PartOutcome::kDuplicate;
      break;
    case Placement::kConflictingDuplicate:
      result.outcome = PartOutcome::kDuplicate;
      result.conflicting_duplicate = true;
      break;
    case Placement::kInvalid:
      result.outcome = PartOutcome::kInvalid;
      break;
    case Placement::kCompleted:
      result.outcome = PartOutcome::kCompleted;
      result.completed = Take(sets_.find(completed_key));
      AddTombstone(completed_key, received_at);
      break;
  }
  return result;
}

RestoreResult Reassembler::Restore(std::vector<MessagePart> parts) {
  RestoreResult result;
  // Oldest first, so that the memory bound pushes out the same sets it would have live.
  std::stable_sort(parts.begin(), parts.end(),
                   [](const MessagePart& a, const MessagePart& b) { return a.received_at < b.received_at; });
  // Stored parts are the truth: if a completed set's parts are still stored, its completion was
  // not committed, so its tombstone must not turn them (or the redelivered last part) away.
  for (const MessagePart& part : parts) {
    if (auto tombstone = tombstones_.find(part.key); tombstone != tombstones_.end()) {
      tombstones_by_age_.erase(tombstone->second);
      tombstones_.erase(tombstone);
    }
  }
  for (MessagePart& part : parts) {
    ReassemblyTime received_at = part.received_at;
    ConcatKey completed_key;
    switch (Place(std::move(part), &result.evicted, &completed_key)) {
      case Placement::kDuplicate:
      case Placement::kConflictingDuplicate:
        ++result.duplicates;
        break;
      case Placement::kInvalid:
        ++result.invalid;
        break;
      case Placement::kCompleted:
        result.completed.push_back(Take(sets_.find(completed_key)));
        AddTombstone(completed_key, received_at);
        break;
      case Placement::kStored:
        break;
    }
  }
  return result;
}

std::vector<AssembledMessage> Reassembler::Reinstate(AssembledMessage message, uint8_t uncommitted_seq) {
  std::vector<AssembledMessage> evicted;
  if (auto tombstone = tombstones_.find(message.key); tombstone != tombstones_.end()) {
    tombstones_by_age_.erase(tombstone->second);
    tombstones_.erase(tombstone);
  }
  ConcatKey unused;
  for (MessagePart& part : message.parts) {
    if (part.seq == uncommitted_seq) continue;
    Place(std::move(part), &evicted, &unused);  // cannot complete: one part is left out
  }
  return evicted;
}

std::vector<AssembledMessage> Reassembler::Expire(ReassemblyTime now) {
  std::vector<AssembledMessage> expired;
  ReassemblyTime cutoff = now - options_.timeout;
  while (!sets_by_age_.empty() && sets_by_age_.begin()->first.first <= cutoff) {
    expired.push_back(Take(sets_.find(sets_by_age_.begin()->second)));
  }
  while (!tombstones_by_age_.empty() && tombstones_by_age_.begin()->first.first <= cutoff) {
    tombstones_.erase(tombstones_by_age_.begin()->second);
    tombstones_by_age_.erase(tombstones_by_age_.begin());
  }
  return expired;
}

std::optional<AssembledMessage> Reassembler::Remove(const ConcatKey& key) {
  auto it = sets_.find(key);
  if (it == sets_.end()) return std::nullopt;
  return Take(it);
}

void Reassembler::ForEachPendingPart(const std::function<void(const MessagePart&)>& fn) const {
  for (const auto& [key, set] : sets_) {
    for (const auto& part : set.parts) {
      if (part) fn(*part);
    }
  }
}

}  // namespace donagate::smpp
