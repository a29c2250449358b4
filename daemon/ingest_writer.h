// The ingest writer: group commit of inbound traffic.
//
// The pipeline hands it one billing::IngestItem per MO (or part, or receipt) together with a
// callback; the writer gathers items into batches of up to `batch_size` items or `linger`,
// whichever comes first (and sooner when no item arrived for `idle_gap`), and commits each batch with ONE Store::IngestBatch call on a
// dedicated DB thread (each thread owns its own Store, i.e. its own connection). Only after
// that call returned ok (the transaction COMMITTED) is the item's callback told so; the
// pipeline then lets the link send deliver_sm_resp(ESME_ROK).
//
// Contract:
//  - Every Submit() gets exactly one callback, posted to the completion executor (never run
//    inline inside Submit, never on a DB thread).
//  - Backpressure: when `max_inflight` items are already accepted and not yet answered, or the
//    shard's database connection is known to be down, or the writer is stopping, the item is
//    refused at once (IngestOutcome::refused says why) without touching the database.
//  - A failed batch fails every item in it (nothing of it was stored); the writer then marks
//    its connection down and retries a Ping with exponential backoff (reconnect_backoff_min ..
//    max), refusing new items meanwhile so the SMSC gets temporary errors quickly instead of
//    waiting for timeouts. A permanent failure of a batch is retried item by item so that one
//    bad item cannot block its neighbours.
//  - Sharding: items are assigned to a DB thread by `shard_key` (callers give the same key to
//    items whose commit order matters, e.g. the parts of one concatenated set); batches of one
//    shard commit in submission order.
//  - In doubt: when the connection is lost while a batch's COMMIT is in flight and the
//    database does not answer, nobody can tell whether the batch committed. Its items are then
//    HELD, not answered (a temporary error would make the SMSC redeliver MOs that may be
//    stored: a second donation): the shard refuses new items, waits for the database with
//    backoff, asks for the batch's marker, and only then answers: ok with the results if it
//    committed, a temporary error if not. The in-doubt hook tells the pipeline when a batch
//    is held and how it was resolved, so that it can recognise the SMSC's redeliveries of
//    held MOs meanwhile. If Stop() comes first, held items get IngestOutcome::unanswered
//    (the caller must not answer them) and unresolved_at_stop() counts them.
//  - Stop() refuses new items, commits what is queued, then joins the threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "billing/store/store.h"

namespace donagate::daemon {

class Metrics;

struct IngestWriterOptions {
  std::string conninfo;
  billing::StoreOptions store_options;
  int threads = 1;                         // DB threads, each with its own connection
  int batch_size = 256;                    // items per transaction
  std::chrono::milliseconds linger{2};     // longest wait for more items before committing a batch
  std::chrono::microseconds idle_gap{500}; // ...but commit once none arrived for this long (0: linger)
  int max_inflight = 10000;                // accepted, not yet answered
  std::chrono::milliseconds reconnect_backoff_min{100};
  std::chrono::milliseconds reconnect_backoff_max{2000};
};

// Why an item was not stored.
enum class IngestRefusal {
  kNone,          // the batch was attempted (see status)
  kBackpressure,  // too many items in flight
  kDatabaseDown,  // the shard's connection is down and reconnecting
  kStopping,      // the writer no longer accepts work
};

struct IngestOutcome {
  billing::StoreStatus status;          // ok: committed (result is meaningful)
  IngestRefusal refused = IngestRefusal::kNone;
  bool in_doubt = false;                // the item's batch was held in doubt before this answer
  bool unanswered = false;              // still in doubt at Stop(): send no answer at all
  billing::IngestResult result;
  std::chrono::steady_clock::duration commit_time{};  // the batch's IngestBatch call
  bool ok() const { return status.ok(); }
};

class IngestWriter {
 public:
  using Callback = std::function<void(const IngestOutcome&)>;
  // Runs on the shard's DB thread after a batch failed (after its callbacks were posted), with
  // that thread's Store; the pipeline uses it to rebuild in-memory state that assumed the batch
  // would commit (the reassembler) from what the database really holds.
  using BatchFailedHook =
      std::function<void(int shard, const billing::StoreStatus& status, billing::Store& store)>;

  IngestWriter(boost::asio::any_io_executor completion_executor, IngestWriterOptions options,
               Metrics* metrics = nullptr);
  ~IngestWriter();  // Stop()s
  IngestWriter(const IngestWriter&) = delete;
  IngestWriter& operator=(const IngestWriter&) = delete;

  void SetBatchFailedHook(BatchFailedHook hook) { batch_failed_hook_ = std::move(hook); }
  // Runs on the shard's DB thread: once with `resolved` false when a batch is held in doubt
  // (before any of its callbacks), once with `resolved` true when its outcome is known
  // (`committed`, and then `results`, one per item), before its callbacks are posted.
  using InDoubtHook = std::function<void(const std::vector<billing::IngestItem>& items, bool resolved,
                                         bool committed, const std::vector<billing::IngestResult>& results)>;
  void SetInDoubtHook(InDoubtHook hook) { in_doubt_hook_ = std::move(hook); }

  // Starts the DB threads (they connect lazily).
  void Start();
  void Submit(billing::IngestItem item, uint64_t shard_key, Callback done);
  // Runs `fn` on the shard's DB thread between batches, with its Store. For reloads and
  // one-off reads that must be ordered with the shard's commits.
  void RunOnShard(int shard, std::function<void(billing::Store&)> fn);
  // Refuse new work, commit what is queued, join the threads. Idempotent.
  void Stop();

  int shards() const { return static_cast<int>(shards_.size()); }
  int ShardOf(uint64_t shard_key) const { return static_cast<int>(shard_key % shards_.size()); }
  int64_t inflight() const { return inflight_.load(); }
  // False while any shard's connection is known to be down.
  bool healthy() const;
  // True while the last batch attempted failed transiently and none has committed since (a
  // full or read-only table space can fail every batch while the database still answers).
  bool failing() const { return last_failure_seq_.load() > last_success_seq_.load(); }
  // Items held in doubt right now, and those still in doubt when Stop() ended the wait.
  int64_t held_in_doubt() const { return held_in_doubt_.load(); }
  int64_t unresolved_at_stop() const { return unresolved_at_stop_.load(); }

 private:
  struct Pending {
    billing::IngestItem item;
    Callback done;
  };
  struct Shard {
    int index = 0;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Pending> queue;
    std::deque<std::function<void(billing::Store&)>> tasks;
    std::atomic<bool> down{false};
    std::unique_ptr<billing::Store> store;
    std::thread thread;
  };

  void Run(Shard& shard);
  void CommitBatch(Shard& shard, std::vector<Pending>& batch);
  void Finish(Pending& pending, IngestOutcome outcome);
  void Reconnect(Shard& shard);
  void HoldInDoubt(Shard& shard, std::vector<Pending>& batch, const std::vector<billing::IngestItem>& items,
                   const billing::IngestCommitTicket& ticket, const billing::StoreStatus& status);
  void AnswerQueuedDown(Shard& shard, const billing::StoreStatus& status);

  boost::asio::any_io_executor completion_executor_;
  IngestWriterOptions options_;
  Metrics* metrics_;
  BatchFailedHook batch_failed_hook_;
  InDoubtHook in_doubt_hook_;
  std::atomic<int64_t> held_in_doubt_{0};
  std::atomic<uint64_t> attempt_seq_{0};        // batches attempted, in order
  std::atomic<uint64_t> last_success_seq_{0};
  std::atomic<uint64_t> last_failure_seq_{0};
  std::atomic<int64_t> unresolved_at_stop_{0};
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<int64_t> inflight_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int> busy_connections_{0};
  bool started_ = false;
};

}  // namespace donagate::daemon
