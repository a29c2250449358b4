// The charging worker: turns received donations into charged (or failed) ones.
//
// Loop, on each of `threads` dedicated DB threads ("lanes"), each with its own Store
// (connection) and its share of charge_concurrency (fixed, or learned: AdaptiveLimit):
//   0. start the donations the ingest handed over in memory (HandOff: stored already claimed
//      by this instance, so they cost no claim);
//   1. with room left, claim up to charge_batch_size donations (16 × that while the previous
//      claim came back full: the backlog is in the database) (Store::ClaimDonations: FOR
//      UPDATE SKIP LOCKED with a lease, so several threads or daemon instances never get the
//      same donation) — the recovery path: deferred ones, expired leases, a dead instance's
//      work, what overflowed the hand-off — keeping at most the limit in flight;
//   2. hand each to the DonationCharger of its operator (async, on the io executor);
//      a donation over the subscriber's daily cap is not charged at all;
//   3. collect the outcomes and persist them in batches with Store::RecordChargeOutcomes
//      (state + charge rows + balanced ledger journal + reply in ONE transaction each batch);
//      a failed record call keeps the outcomes and retries them (replay is a no-op);
//   4. unknown outcomes go back to the queue with a later next_attempt_at and are resolved by
//      Status() with the SAME key on the next claim; deferred ones (backend down, breaker open)
//      go back as received — a donation is never failed because a backend was unavailable.
// The reply text is rendered here from the campaign's templates (amounts as "100.000").
//
// Why lanes: one thread runs claim → charge → record strictly in turn, and each of those
// waits for a database round trip and a commit; with a fast backend the thread, not the
// backend, set the rate (docs/performance.md). Lanes are independent workers in one process:
// the SKIP LOCKED claim keeps them apart exactly as it keeps daemon instances apart.
//
// Kill switch: SetPaused(true) stops claiming (receiving and recording go on); in-flight
// charges finish and are recorded.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "billing/charging/charging.h"
#include "billing/charging/circuit_breaker.h"
#include "billing/charging/donation_charger.h"
#include "billing/store/store.h"
#include "config/config.h"
#include "daemon/adaptive_limit.h"
#include "daemon/ingest_priority.h"

namespace donagate::daemon {

class Metrics;

// The charging backends of one process, one per configured operator, each behind a circuit
// breaker and a DonationCharger. Calls are counted in Metrics (requests by outcome, latency).
class ChargerSet {
 public:
  // Builds every [[charging]] entry. On a backend that cannot be created (bad URL, unreadable
  // CA file) returns nullptr and sets *error.
  static std::unique_ptr<ChargerSet> Create(boost::asio::any_io_executor executor,
                                            const config::Config& config, Metrics* metrics,
                                            std::string* error);
  ~ChargerSet();

  // nullptr when the operator has no backend here.
  billing::DonationCharger* ForOperator(const std::string& operator_name) const;
  // The charging mode override of an operator, if configured.
  std::optional<config::ChargingMode> ModeOverride(const std::string& operator_name) const;
  std::vector<std::string> Operators() const;
  // Publishes breaker states as gauges (called periodically).
  void ExportBreakerStates() const;

  struct Entry;

 private:
  ChargerSet() = default;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  Metrics* metrics_ = nullptr;
};

struct ChargingWorkerOptions {
  std::string conninfo;
  billing::StoreOptions store_options;
  int batch_size = 64;
  // Charges in flight per instance: the ceiling when `adaptive`, else the fixed limit.
  int concurrency = 32;
  // Learn the limit from the backend's latency (daemon/adaptive_limit.h), starting at
  // `initial_concurrency`, between 8 and `concurrency` (split over the lanes like it).
  bool adaptive = false;
  int initial_concurrency = 32;
  std::chrono::seconds lease{60};
  std::chrono::milliseconds poll_interval{100};
  std::chrono::milliseconds deferred_retry{2000};   // backend unavailable / breaker open
  std::chrono::milliseconds unknown_retry{5000};    // unresolved unknown outcome
  std::chrono::milliseconds store_retry{500};       // a failed store call
  bool start_paused = false;
  int threads = 1;  // lanes; each claims up to batch_size and holds concurrency / threads
  // At least this many handed-off donations may wait for a charging slot (0: 4 × concurrency,
  // at least 1,000); more while the charging rate finishes them within a quarter of the lease.
  int hand_off_limit = 0;
  // The reply sender's in-memory hand-off (ReplySender::AcceptsHandOff / HandOff): replies of
  // final states are queued claimed by this instance for `reply_lease` and passed on once
  // recorded. Null: they are queued pending, for the sender's claim.
  std::function<bool()> reply_accepts;
  std::function<void(billing::OutboxReply)> reply_hand_off;
  std::chrono::seconds reply_lease{60};
  // Ingest first: while this returns true (MOs are waiting for their commit), each lane claims
  // at most one batch per `yield_floor`, leaving the database to the acknowledgements. An MO
  // not acknowledged in time is retried by the SMSC and counts against us; a donation charged
  // a few seconds later costs nobody anything. Null: never yield.
  std::function<bool()> ingest_busy;
  std::chrono::milliseconds yield_floor{1000};
};

class ChargingWorker {
 public:
  // `config` and `chargers` must outlive the worker.
  ChargingWorker(const config::Config& config, ChargerSet& chargers, ChargingWorkerOptions options,
                 Metrics* metrics = nullptr);
  ~ChargingWorker();  // Stop()s
  ChargingWorker(const ChargingWorker&) = delete;
  ChargingWorker& operator=(const ChargingWorker&) = delete;

  void Start();
  // Stops claiming, waits up to `drain` for in-flight charges and records their outcomes,
  // releases what is left (the lease makes it reclaimable anyway), joins the thread.
  void Stop(std::chrono::milliseconds drain = std::chrono::milliseconds(5000));

  // Wakes the worker early (e.g. after an ingest batch created donations).
  void Notify();

  // The in-memory hand-off (docs/pipeline.md "One pass through the data path"). The pipeline
  // asks AcceptsHandOff before it stores a donation; when true it stores the donation claimed
  // by this instance (billing::DonationDraft::claim_lease = lease()) and, once committed,
  // passes it to HandOff instead of leaving it for ClaimDonations. False while paused or
  // stopping, for an operator without a backend here, or when `hand_off_limit` donations wait
  // already: those donations stay in the database, unclaimed, for the claim (the backlog lives
  // there, never in memory). A handed donation that waited longer than half its lease is
  // dropped from memory unstarted: its lease expires and a claim resumes it (Status first).
  bool AcceptsHandOff(const std::string& operator_name) const;
  void HandOff(billing::DonationWork work);
  std::chrono::seconds lease() const { return options_.lease; }
  int64_t handed_waiting() const { return handed_waiting_.load(); }
  void SetPaused(bool paused);
  bool paused() const { return paused_.load(); }

  int64_t inflight() const;
  // The current in-flight limit of all lanes together (adaptive or fixed).
  int64_t concurrency_limit() const;
  // Donations whose outcome was recorded by this worker (tests, /status).
  uint64_t recorded() const { return recorded_.load(); }

 private:
  struct Done {
    std::chrono::steady_clock::duration latency{};  // started → outcome; zero: not charged
    billing::DonationWork work;
    billing::DonationChargeOutcome outcome;
    bool over_cap = false;
  };
  // One DB thread with its own connection, claims, outcomes and in-flight count.
  struct Lane {
    int index = 0;
    int64_t concurrency = 1;
    std::unique_ptr<billing::Store> store;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Done> done;         // outcomes waiting to be recorded
    struct Handed {
      billing::DonationWork work;
      std::chrono::steady_clock::time_point at;
    };
    std::deque<Handed> handed;     // claimed at ingest, waiting for a charging slot
    bool notified = false;
    std::atomic<int64_t> inflight{0};  // claimed, not yet recorded
    std::chrono::steady_clock::time_point next_gauge_update{};
    std::unique_ptr<IngestPriority> priority;
    std::unique_ptr<AdaptiveLimit> limit;  // null: fixed concurrency
    bool backlog_seen = false;             // the last claim was full: more work is waiting
    // The claim is the recovery path: while the hand-off carries the work, ask the database at
    // most once per poll interval, unless Notify() said donations were left there for it.
    std::atomic<bool> store_work_signalled{true};
    std::chrono::steady_clock::time_point next_store_claim{};
    std::atomic<int64_t> concurrency_seen{0};  // `concurrency`, for other threads
    std::thread thread;
  };

  void Run(Lane& lane);
  // Returns how many donations it asked for (0: no room, or the claim failed).
  int ClaimAndStart(Lane& lane);
  // After starting what fits: tells the lane's AdaptiveLimit when the limit held work back.
  void NoteLimitHeldBack(Lane& lane);
  // Logs (event=takeover) and counts donations whose previous lease owner was another instance.
  void ReportTakeovers(const std::vector<billing::DonationWork>& work);
  // Starts the handed-off donations that fit; returns how many it started.
  int64_t StartHanded(Lane& lane);
  void StartWork(Lane& lane, std::vector<billing::DonationWork> work);
  void ReleaseHanded(Lane& lane);
  void RecordPending(Lane& lane);
  billing::ChargeOutcomeRecord BuildRecord(const Done& done) const;
  std::optional<billing::ReplyDraft> BuildReply(const billing::DonationWork& work,
                                                const billing::DonationChargeOutcome& outcome,
                                                bool over_cap) const;
  void Complete(Lane& lane, Done done);

  const config::Config& config_;
  ChargerSet& chargers_;
  ChargingWorkerOptions options_;
  Metrics* metrics_;
  std::map<std::string, const config::Campaign*> campaigns_;
  std::vector<std::unique_ptr<Lane>> lanes_;

  std::mutex stop_mu_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> paused_{false};
  std::atomic<uint64_t> recorded_{0};
  std::atomic<int64_t> handed_waiting_{0};
  std::atomic<bool> started_{false};
  std::atomic<uint64_t> hand_off_rr_{0};
  // What may wait in memory: as many donations as the recent charging rate finishes within a
  // quarter of the lease (so none goes stale), at least the configured floor.
  std::atomic<int64_t> hand_off_limit_{1000};
  int64_t hand_off_floor_ = 1000;
  uint64_t rate_recorded_ = 0;                           // lane 0 only
  std::chrono::steady_clock::time_point rate_at_{};      // lane 0 only
  std::atomic<int64_t> drain_deadline_ns_{0};  // steady_clock, set once by Stop()
};

}  // namespace donagate::daemon
