// The pipeline: what happens to an inbound deliver_sm/data_sm between the link and the
// database (docs/pipeline.md has the whole story, states and failure behaviour).
//
// For each MO the link hands over, the pipeline
//   1. classifies it: delivery receipt (esm_class receipt bits), part of a concatenated
//      message (UDH or sar_* TLVs), or a complete message;
//   2. for a complete (or just assembled) message: normalises the MSISDN, decodes the text,
//      finds the campaign by shortcode + keyword, checks the blocklist and the active window,
//      parses "CV n" and prices it — every MO becomes an inbound_message row with an outcome,
//      a valid one also a donation row (state received), an invalid one the help reply;
//   3. gives the resulting IngestItem to the IngestWriter (group commit) and, only when that
//      batch has COMMITTED, completes the link's callback with ESME_ROK; on any failure, on
//      backpressure or while shutting down it completes with the configured temporary error
//      (ESME_RX_T_APPN or ESME_RTHROTTLED) so the SMSC redelivers later. Never ack, then lose.
//
// The daily cap is evaluated by the store when a donation is first claimed (it needs the
// subscriber's other donations of the finance day, consistently across instances); the charging
// worker then records it as failed("daily_cap") with the daily-cap reply.
//
// Concatenated MOs: each part is stored (mo_part) before it is acknowledged; the in-memory
// smpp::Reassembler tells when a set is complete, and the completing part's item stores the
// assembled message and marks the set's parts consumed in the same transaction. All parts of a
// set go to the same DB shard, so they commit in arrival order. After a failed batch the
// shard's sets are rebuilt from the database, and at start RecoverFromStore() restores every
// pending part, so a restart loses nothing that was acknowledged.
//
// Redeliveries without an MO-id TLV: the pipeline's RedeliveryGuard (redelivery_guard.h)
// holds the content of MOs whose acknowledgement is uncertain — batches in doubt (from the
// writer's in-doubt hook), MOs committed around a session's unexpected close, and (from the
// store at start) MOs of a crashed previous run. A matching complete message is answered a
// temporary error while its original is in doubt, or recorded as outcome redelivery and acked
// once the original is known to be committed; it never becomes a second donation.
//
// Threads: OnMessage runs on link strands (several at once); it never blocks on the database.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "billing/domain/keywords.h"
#include "billing/domain/reply_template.h"
#include "billing/store/store.h"
#include "config/config.h"
#include "daemon/ingest_writer.h"
#include "daemon/link.h"
#include "daemon/redelivery_guard.h"
#include "daemon/subscriber_limits.h"
#include "protocol/message_id.h"
#include "protocol/pdu.h"
#include "protocol/reassembly.h"
#include "protocol/text_codec.h"

namespace donagate::daemon {

class Metrics;

// Reads a blocklist file: one MSISDN per line in any accepted form, '#' comments and blank
// lines ignored. Returns the normalised numbers; *error names the first bad line.
bool LoadBlocklist(const std::string& path, std::set<std::string>* out, std::string* error);

struct PipelineCounters {
  std::atomic<uint64_t> received{0};      // OnMessage calls
  std::atomic<uint64_t> acked{0};         // completed with ESME_ROK
  std::atomic<uint64_t> temp_errors{0};   // completed with the temporary error status
  std::atomic<uint64_t> donations{0};     // donation rows committed
  std::atomic<uint64_t> duplicates{0};    // recognised as already stored (acked, not re-processed)
};

class Pipeline final : public InboundHandler {
 public:
  // `config` and `writer` must outlive the pipeline.
  Pipeline(const config::Config& config, IngestWriter& writer, Metrics* metrics = nullptr,
           std::set<std::string> blocklist = {});
  ~Pipeline() override;

  // Restores pending concatenated parts of this instance's links (call before links start);
  // sets that turn out complete or expired are processed at once.
  billing::StoreStatus RecoverFromStore(billing::Store& store);

  void OnMessage(const LinkInfo& link, const smpp::Pdu& pdu, InboundCompletion done) override;
  void OnSessionClosed(const LinkInfo& link, bool orderly) override;

  // MOs of a crashed previous run that may be unacknowledged (Store::BeginRun).
  void AddUncertain(const std::vector<billing::UncertainMo>& mos);
  const RedeliveryGuard& redelivery_guard() const { return guard_; }

  // Records concatenated sets older than concat_timeout (as incomplete, or processes the parts
  // present, per config), and submits sets rebuilt after a failed batch. Call periodically
  // (the daemon: every second).
  void ExpireConcatenated(std::chrono::system_clock::time_point now);

  // Called (on the completion executor) after committed items created donations that were
  // left for the claim (not handed off).
  void SetDonationsCommittedHook(std::function<void()> hook) { on_donations_ = std::move(hook); }

  // The in-memory hand-off (docs/pipeline.md "One pass through the data path"). Before an MO
  // is stored, `donation_lease(operator)` / `reply_lease()` say whether a worker of this
  // process takes its donation / ingest-time reply from memory (> 0: store it claimed for that
  // lease; 0: leave it for the claim). Once committed, the claimed donation goes to `donation`
  // and the claimed reply to `reply` (on the completion executor).
  struct HandOff {
    std::function<std::chrono::seconds(const std::string& operator_name)> donation_lease;
    std::function<void(billing::DonationWork)> donation;
    std::function<std::chrono::seconds()> reply_lease;
    std::function<void(billing::OutboxReply)> reply;
  };
  void SetHandOff(HandOff hand_off) { hand_off_ = std::move(hand_off); }
  // While false every new MO is answered with the temporary error (shutdown).
  void SetAccepting(bool accepting) { accepting_.store(accepting); }

  // Builds the ingest item of a complete (non-concatenated) message. Public for tests.
  billing::IngestItem BuildMessageItem(const LinkInfo& link, const std::string& source_addr,
                                       const std::string& dest_addr, uint8_t data_coding,
                                       uint8_t esm_class, const std::string& raw_payload,
                                       const std::string& decoded_text, bool text_ok,
                                       std::chrono::system_clock::time_point received_at) const;

  const PipelineCounters& counters() const { return counters_; }
  size_t pending_concat_parts() const;
  uint32_t temp_error_status() const { return temp_error_status_; }

 private:
  struct LinkSettings {
    smpp::DefaultAlphabet alphabet = smpp::DefaultAlphabet::kGsm7Unpacked;
    smpp::MessageIdMode id_mode = smpp::MessageIdMode::kTrimLeadingZeros;
    std::optional<uint16_t> mo_id_tlv;
  };
  const LinkSettings& SettingsFor(const std::string& link_name) const;

  // What the ack of a guardable MO means for the redelivery guard.
  struct AckTracking {
    std::string key;
    uint64_t session_id = 0;
    int64_t redelivery_of = 0;  // a recognised redelivery of this original
    UncertainReason reason = UncertainReason::kInDoubt;
  };
  void Submit(billing::IngestItem item, uint64_t shard_key, const LinkInfo* link,
              InboundCompletion done, std::chrono::steady_clock::time_point started,
              std::optional<AckTracking> tracking = std::nullopt);
  void SubmitBackground(billing::IngestItem item, uint64_t shard_key);
  billing::IngestItem BuildAssembledItem(const smpp::AssembledMessage& message,
                                         const std::string& operator_name, bool complete,
                                         const std::optional<billing::ConcatPart>& part) const;
  uint64_t ShardKeyOf(const smpp::ConcatKey& key) const;
  void OnBatchFailed(int shard, billing::Store& store);
  void OnInDoubt(const std::vector<billing::IngestItem>& items, bool resolved, bool committed,
                 const std::vector<billing::IngestResult>& results);
  // After a guardable MO committed (ack about to be sent on `session_id`).
  void NoteCommitted(uint64_t session_id, std::string key, int64_t inbound_message_id);
  void LogUnanswered(const billing::InboundMessage& m) const;
  // The keyword flows' item (HELP, STOP, STOP ALL, confirm, status) of a classified MO.
  billing::IngestItem BuildKeywordItem(billing::IngestItem item, billing::InboundMessage m,
                                       const billing::MoClassification& match,
                                       const billing::ReplyValues& values) const;
  // Reply safety (docs/pipeline.md): the per-number MO rate limit and hourly reply budget.
  void ApplySubscriberLimits(billing::IngestItem& item);
  void RestoreParts(std::vector<billing::StoredPart> parts, int only_shard);

  const config::Config& config_;
  IngestWriter& writer_;
  Metrics* metrics_;
  std::set<std::string> blocklist_;
  uint32_t temp_error_status_;
  std::map<std::string, LinkSettings> link_settings_;
  std::map<std::string, std::string> link_operator_;
  std::function<void()> on_donations_;
  HandOff hand_off_;
  std::atomic<bool> accepting_{true};
  std::atomic<uint64_t> round_robin_{0};
  PipelineCounters counters_;

  mutable std::mutex reassembly_mu_;
  smpp::Reassembler reassembler_;
  // Sets found complete/expired while reloading after a failed batch (guarded by reassembly_mu_).
  std::vector<std::pair<billing::IngestItem, uint64_t>> deferred_items_;

  RedeliveryGuard guard_;
  const std::chrono::steady_clock::duration late_ack_;
  SubscriberWindow mo_window_;     // max_mos_per_minute_per_msisdn
  SubscriberWindow reply_window_;  // max_replies_per_hour_per_msisdn
  // Per session: guardable MOs acked in the last kAckUncertainWindow (an unexpected close may
  // swallow those answers), and sessions that closed (answers for them are never sent).
  struct RecentAck {
    std::chrono::steady_clock::time_point at;
    std::string key;
    int64_t inbound_message_id;
  };
  std::mutex sessions_mu_;
  std::map<uint64_t, std::deque<RecentAck>> recent_acks_;
  std::map<uint64_t, std::chrono::steady_clock::time_point> closed_sessions_;
};

}  // namespace donagate::daemon
