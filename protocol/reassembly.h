// Concatenated MO reassembly: pure, single-threaded, storage-agnostic. The pipeline owns
// persistence (parts are acknowledged, so they are stored before the ack) and feeds the stored
// parts back with Restore() after a restart.
//
// Policy (see docs/smpp-text.md):
//  - A set is identified by ConcatKey: link, source, destination, reference (+ its width) and
//    total. Two subscribers using the same reference never merge; neither do two totals.
//  - Parts arrive in any order. A part whose seq is already held is a duplicate: reported and
//    discarded (the first copy wins). A set is returned exactly once, when its last part arrives,
//    and then forgotten, except for a tombstone kept for `timeout`: a late redelivery of a part
//    of a completed set is reported as a duplicate instead of starting a new set.
//  - Timeout: a set whose first part arrived `timeout` or longer before `now` is returned by
//    Expire(now) as incomplete (missing seqs listed) and forgotten. What to do with it is the
//    pipeline's setting (config concat_on_timeout); the recommended and default policy is to
//    record it as an invalid MO with outcome "incomplete" and never charge it: a missing part
//    could change the meaning of the text.
//  - Memory bound: at most max_pending_sets incomplete sets. Adding a part of a new set beyond
//    that pushes out the set whose first part is oldest (so expired ones go first); it is
//    returned in `evicted` and must be treated like an expired one. Tombstones are bounded the
//    same way. A set holds at most 255 parts.
#ifndef DONAGATE_PROTOCOL_REASSEMBLY_H_
#define DONAGATE_PROTOCOL_REASSEMBLY_H_

#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/text_codec.h"
#include "protocol/udh.h"

namespace donagate::smpp {

using ReassemblyTime = std::chrono::system_clock::time_point;

struct ConcatKey {
  std::string link;         // configured link name (an operator may have several binds: each is its own)
  std::string source;       // source_addr as received
  std::string destination;  // destination_addr as received
  uint16_t ref = 0;
  bool ref16 = false;
  uint8_t total = 0;

  friend auto operator<=>(const ConcatKey&, const ConcatKey&) = default;
  friend bool operator==(const ConcatKey&, const ConcatKey&) = default;
};

ConcatKey MakeConcatKey(std::string link, std::string source, std::string destination, const ConcatInfo& info);

struct MessagePart {
  ConcatKey key;
  uint8_t seq = 0;               // 1..key.total
  uint8_t data_coding = 0;
  DecodeOptions decode;          // how to read user_data on this link (packed GSM needs udh_length)
  std::string user_data;         // short_message after the UDH, or message_payload
  ReassemblyTime received_at{};  // when the part was received (restored parts: as stored)
  int64_t storage_id = 0;        // opaque to the reassembler: e.g. the part's database row id
};

struct AssembledMessage {
  ConcatKey key;
  std::vector<MessagePart> parts;  // received parts in seq order
  std::vector<uint8_t> missing;    // seqs never received; empty for a complete message
  DecodedText text;                // received parts' text joined in seq order
  ReassemblyTime first_received_at{};

  bool complete() const { return missing.empty(); }
};

struct ReassemblyOptions {
  std::chrono::seconds timeout{300};
  std::size_t max_pending_sets = 10000;  // at least 1
};

enum class PartOutcome : uint8_t {
  kStored,     // held, waiting for the other parts
  kDuplicate,  // same key+seq already held, or its set completed within the timeout: discarded
  kCompleted,  // this part completed its set: AddResult::completed holds the message
  kInvalid,    // seq 0, total 0 or seq > total: not held
};

struct AddResult {
  PartOutcome outcome = PartOutcome::kStored;
  bool conflicting_duplicate = false;        // a duplicate whose bytes differ from the held copy
  std::optional<AssembledMessage> completed;
  std::vector<AssembledMessage> evicted;     // incomplete sets pushed out by the memory bound
};

struct RestoreResult {
  std::vector<AssembledMessage> completed;   // sets complete once every restored part is in
  std::vector<AssembledMessage> evicted;
  std::size_t duplicates = 0;
  std::size_t invalid = 0;
};

class Reassembler {
 public:
  explicit Reassembler(ReassemblyOptions options = {});

  Reassembler(const Reassembler&) = delete;
  Reassembler& operator=(const Reassembler&) = delete;

  // Adds one received part. Its received_at orders sets for the timeout and the memory bound.
  AddResult Add(MessagePart part);

  // Adds parts loaded from storage after a restart, in any order. Sets that are complete once all
  // are in are returned (a crash may have struck between storing the last part and processing
  // the message) and forgotten, leaving a tombstone like Add does. The parts are taken as the
  // truth: a tombstone for their key is dropped first (parts still stored mean that completion
  // was not committed), so reloading from storage after a failed batch is enough to recover.
  RestoreResult Restore(std::vector<MessagePart> parts);

  // Returns (oldest first) and forgets the incomplete sets whose first part arrived at or before
  // now - timeout; also drops tombstones that old.
  std::vector<AssembledMessage> Expire(ReassemblyTime now);

  // Undoes a completion whose processing could not be committed (e.g. the database refused the
  // batch holding the completing part, so its deliver_sm_resp carries a temporary error and the
  // SMSC will redeliver it): the parts go back to pending, except `uncommitted_seq`, and the
  // tombstone is dropped, so that the redelivered part completes the set again instead of being
  // taken for a duplicate. Returns sets pushed out by the memory bound, as Add does.
  std::vector<AssembledMessage> Reinstate(AssembledMessage message, uint8_t uncommitted_seq);

  // Forgets a pending set (e.g. the pipeline resolved it another way); returns it if it existed.
  std::optional<AssembledMessage> Remove(const ConcatKey& key);

  // Calls `fn` for every held part (for persistence checks, admin views, shutdown).
  void ForEachPendingPart(const std::function<void(const MessagePart&)>& fn) const;

  std::size_t pending_sets() const { return sets_.size(); }
  std::size_t pending_parts() const { return pending_parts_; }
  std::size_t tombstones() const { return tombstones_.size(); }

 private:
  struct PendingSet {
    std::vector<std::optional<MessagePart>> parts;  // index seq - 1
    std::size_t received = 0;
    ReassemblyTime first_received_at{};
    uint64_t order = 0;  // insertion counter: ties in first_received_at keep arrival order
  };
  using AgeKey = std::pair<ReassemblyTime, uint64_t>;

  enum class Placement { kStored, kDuplicate, kConflictingDuplicate, kCompleted, kInvalid };
  Placement Place(MessagePart&& part, std::vector<AssembledMessage>* evicted, ConcatKey* completed_key);
  AssembledMessage Take(std::map<ConcatKey, PendingSet>::iterator it);
  void AddTombstone(const ConcatKey& key, ReassemblyTime at);

  ReassemblyOptions options_;
  std::map<ConcatKey, PendingSet> sets_;
  std::map<AgeKey, ConcatKey> sets_by_age_;
  std::map<ConcatKey, AgeKey> tombstones_;
  std::map<AgeKey, ConcatKey> tombstones_by_age_;
  std::size_t pending_parts_ = 0;
  uint64_t next_order_ = 0;
};

}  // namespace donagate::smpp

#endif  // DONAGATE_PROTOCOL_REASSEMBLY_H_
