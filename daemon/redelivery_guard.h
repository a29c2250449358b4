// The redelivery guard: recognises an SMSC's redelivery of an MO that we committed but whose
// deliver_sm_resp may not have reached the SMSC, when the SMSC sends no MO-id TLV.
//
// Without an MO id a redelivery is a new deliver_sm with the same content. The guard holds the
// content (RedeliveryKey) of exactly the MOs whose acknowledgement is uncertain:
//   - in doubt: their batch's COMMIT outcome is not known yet (database lost mid-COMMIT). A
//     redelivery must wait: Check() says kHeld and the pipeline answers a temporary error.
//   - committed, ack uncertain: the in-doubt batch turned out committed (its late ack may have
//     missed the SMSC's response timeout), the ack left later than pipeline.late_ack_ms after
//     the deliver_sm arrived (same risk), the session closed before or just after the ack was
//     written, or the previous run of this instance crashed shortly after committing it.
//     Check() says kRedelivery with the original's id: the pipeline records the redelivery
//     (outcome redelivery, no donation) and acks it.
// Entries expire (the SMSC's retry span, pipeline.redelivery_window_s). Each committed entry
// absorbs ONE stored redelivery (Consume after the redelivery's row committed); a genuine
// second identical text from the same number while an entry is live is the one case merged
// (docs/pipeline.md "In-doubt MOs and redeliveries").
//
// Only complete (single-part) messages are guarded: a redelivered concatenated part is stored
// as a part again, which never charges (the set was consumed; a lone part is recorded as
// incomplete_concat).
//
// Thread-safe (one mutex; the pipeline calls it from link strands and the completion executor).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace donagate::daemon {

// The fields a redelivery repeats byte for byte: the link's operator, source and destination
// address as received, data_coding, esm_class and the payload as stored.
std::string RedeliveryKey(std::string_view operator_name, std::string_view source_addr,
                          std::string_view dest_addr, uint8_t data_coding, uint8_t esm_class,
                          std::string_view raw_payload);

// Why an entry exists, for metrics and logs.
enum class UncertainReason { kInDoubt, kSessionClosed, kAfterCrash, kLateAck };
// "in_doubt" | "session_closed" | "after_crash" | "late_ack"
std::string_view ToString(UncertainReason reason);

class RedeliveryGuard {
 public:
  using Clock = std::chrono::steady_clock;

  struct Match {
    enum class Kind { kNone, kHeld, kRedelivery } kind = Kind::kNone;
    int64_t original_id = 0;  // kRedelivery
    UncertainReason reason = UncertainReason::kInDoubt;
  };

  // At most `max_committed` committed entries are kept (memory bound: a sustained overload
  // with every ack late would otherwise keep window × rate entries); beyond it the oldest are
  // dropped first — they are the ones least likely to be redelivered still. In-doubt entries
  // are never dropped.
  static constexpr size_t kDefaultMaxCommitted = 200000;
  explicit RedeliveryGuard(Clock::duration window, size_t max_committed = kDefaultMaxCommitted)
      : window_(window), max_committed_(max_committed) {}

  // An in-doubt MO (its redeliveries are held until Resolve).
  void Hold(const std::string& key);
  // The in-doubt MO's outcome is known: committed (as `inbound_message_id`) → a committed
  // entry until now + window; not committed → forgotten (a redelivery is a new MO).
  void Resolve(const std::string& key, bool committed, int64_t inbound_message_id);
  // A committed MO whose ack is uncertain.
  void AddCommitted(const std::string& key, int64_t inbound_message_id, UncertainReason reason);

  Match Check(const std::string& key);
  // The redelivery of `original_id` is stored: the entry is used up.
  void Consume(const std::string& key, int64_t original_id);

  size_t size() const;
  size_t held() const;
  uint64_t dropped() const;  // committed entries dropped by the bound before they expired

 private:
  struct Entry {
    bool held = false;
    int64_t original_id = 0;
    UncertainReason reason = UncertainReason::kInDoubt;
    Clock::time_point expires_at{};
  };
  void ExpireLocked(Clock::time_point now);
  // Removes the committed entry of `key` that expires at `at` (false if consumed already).
  bool RemoveCommittedLocked(const std::string& key, Clock::time_point at);

  const Clock::duration window_;
  const size_t max_committed_;
  uint64_t dropped_ = 0;
  mutable std::mutex mu_;
  // Several entries per key: the same text may be in doubt twice (two genuine sends).
  std::unordered_map<std::string, std::deque<Entry>> entries_;
  std::deque<std::pair<Clock::time_point, std::string>> expiry_;  // committed entries, by time
  size_t size_ = 0;
  size_t held_ = 0;
};

}  // namespace donagate::daemon
