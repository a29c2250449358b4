// The reply sender: drains the persisted outbox through the operators' SMPP links.
//
// Loop, on one dedicated DB thread with its own Store:
//   0. take the replies handed over in memory (AcceptsHandOff / HandOff below);
//   1. claim pending replies (Store::ClaimReplies, FOR UPDATE SKIP LOCKED with a lease) for the
//      operators that have a transmit-capable link in THIS process, never more than
//      `max_inflight` at once (the outbox may back up in the database, never in memory);
//   2. send each as submit_sm (registered_delivery = 1) from the campaign shortcode through the
//      reply's link (or any transmitting link of its operator); a long text is split per the
//      link's reply_long_mode (UDH concatenation or one message_payload);
//   3. record the results in batches (Store::RecordReplyResults): accepted → submitted with the
//      SMSC message id(s) normalised
//      per the link's message_id_normalization (delivery receipts then find the reply);
//      throttled / busy / no link / timeout → retry with exponential backoff;
//      a permanent refusal, or too many attempts → failed.
// A result that cannot be recorded because the database is away is kept in memory and
// recorded later, and a claim that returns that reply meanwhile (its lease expired) does not
// send it again: an accepted reply is submitted once while this process lives. A crash
// between submit and recording leaves the reply claimed; when the lease expires it is sent
// again (at-least-once: a duplicate thank-you is preferred to none; docs/reliability.md).
//
// Receipt sweep: a receipt committed concurrently with its reply's "submitted" record can be
// parked in pending_receipt by one transaction while the other, not seeing it yet, stores the
// message id (READ COMMITTED). Every couple of seconds the sender applies parked receipts whose
// message id is now known (SweepParkedReceipts), so no receipt stays stranded.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "billing/store/pg.h"
#include "billing/store/store.h"
#include "config/config.h"
#include "daemon/ingest_priority.h"
#include "daemon/link.h"

namespace donagate::daemon {

class LinkManager;
class Metrics;

struct ReplySenderOptions {
  std::string conninfo;
  billing::StoreOptions store_options;
  int batch_size = 64;            // replies claimed per round
  int max_inflight = 256;         // replies being submitted at once (memory bound)
  std::chrono::seconds lease{60};
  std::chrono::milliseconds poll_interval{100};
  std::chrono::milliseconds retry_min{1000};
  std::chrono::milliseconds retry_max{60000};
  int max_attempts = 10;          // then the reply is failed
  int hand_off_limit = 0;
  // Parked receipts older than this are purged (hourly, and once soon after start).
  std::chrono::seconds pending_receipt_max_age{3 * 86400};
  std::chrono::seconds purge_interval{3600};         // handed replies waiting at most (0: 4 × max_inflight, >= 1,000)
  // Acks first, as in ChargingWorkerOptions: while this returns true, claim at most one batch
  // per `yield_floor`. Null: never yield.
  std::function<bool()> ingest_busy;
  std::chrono::milliseconds yield_floor{1000};
};

class ReplySender {
 public:
  // `config` and `links` must outlive the sender.
  ReplySender(boost::asio::any_io_executor executor, const config::Config& config,
              LinkManager& links, ReplySenderOptions options, Metrics* metrics = nullptr);
  ~ReplySender();
  ReplySender(const ReplySender&) = delete;
  ReplySender& operator=(const ReplySender&) = delete;

  void Start();
  // Stops claiming, waits up to `drain` for in-flight submits and records them, joins.
  void Stop(std::chrono::milliseconds drain = std::chrono::milliseconds(3000));
  void Notify();

  // The in-memory hand-off: a producer in this process (the ingest for help replies, the
  // charging worker for thank-yous) that gets true from AcceptsHandOff queues its reply already
  // claimed by this instance (billing::ReplyDraft::claim_lease = lease()) and passes it here once
  // committed, instead of leaving it for ClaimReplies. False while stopping or when
  // `hand_off_limit` replies wait already (the rest waits in the outbox, pending). A handed
  // reply that waited longer than half its lease is dropped unsent (the claim gets it after
  // the lease); at Stop() unsent ones are put back to pending.
  bool AcceptsHandOff() const;
  void HandOff(billing::OutboxReply reply);
  std::chrono::seconds lease() const { return options_.lease; }

  int64_t inflight() const { return inflight_.load(); }
  uint64_t submitted() const { return submitted_.load(); }

 private:
  struct Result {
    int64_t reply_id = 0;
    int32_t attempts = 0;
    std::string operator_name;
    enum class Kind { kSubmitted, kRetry, kFailed } kind = Kind::kRetry;
    std::vector<std::string> message_ids;
    std::string reason;
    bool throttled = false;
    billing::StoreTime created_at{};
  };

  void Run();
  void Claim();
  // Sends the handed replies that fit; returns how many.
  int TakeHanded(int room);
  void ReleaseHanded();
  void Send(billing::OutboxReply reply);
  void RecordResults();
  void Complete(Result result);
  void SweepParkedReceipts();
  void PurgeStaleReceipts();

  boost::asio::any_io_executor executor_;
  const config::Config& config_;
  LinkManager& links_;
  ReplySenderOptions options_;
  Metrics* metrics_;
  std::unique_ptr<billing::Store> store_;
  billing::pg::Connection sweep_conn_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Result> results_;
  struct Handed {
    billing::OutboxReply reply;
    std::chrono::steady_clock::time_point at;
  };
  std::deque<Handed> handed_;            // guarded by mu_
  std::atomic<int64_t> handed_waiting_{0};
  // As in ChargingWorker: what the recent submit rate sends within a quarter of the lease, at
  // least the floor.
  std::atomic<int64_t> hand_off_limit_{1000};
  int64_t hand_off_floor_ = 1000;
  uint64_t rate_submitted_ = 0;
  std::chrono::steady_clock::time_point rate_at_{};
  std::chrono::steady_clock::time_point next_rate_update_{};
  // ClaimReplies is the recovery path: at most once per poll interval unless the last claim was
  // full or Notify() was called.
  std::chrono::steady_clock::time_point next_store_claim_{};
  bool last_claim_full_ = true;
  std::atomic<bool> store_work_signalled_{true};
  std::atomic<bool> running_{false};
  // Sender thread only: results whose recording failed transiently, retried first.
  std::deque<Result> unrecorded_;
  std::set<int64_t> unrecorded_ids_;
  bool notified_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> inflight_{0};
  std::atomic<uint64_t> submitted_{0};
  std::atomic<uint32_t> concat_ref_{0};
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::chrono::steady_clock::time_point next_gauge_update_{};
  std::chrono::steady_clock::time_point next_sweep_{};
  std::chrono::steady_clock::time_point next_purge_{};
  IngestPriority priority_;
  std::thread thread_;
};

}  // namespace donagate::daemon
