#include "daemon/ingest_writer.h"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "daemon/metrics.h"

namespace donagate::daemon {

namespace {
using Clock = std::chrono::steady_clock;
}

IngestWriter::IngestWriter(boost::asio::any_io_executor completion_executor,
                           IngestWriterOptions options, Metrics* metrics)
    : completion_executor_(std::move(completion_executor)), options_(std::move(options)),
      metrics_(metrics) {
  options_.threads = std::max(1, options_.threads);
  options_.batch_size = std::max(1, options_.batch_size);
  options_.max_inflight = std::max(1, options_.max_inflight);
  for (int i = 0; i < options_.threads; ++i) {
    auto shard = std::make_unique<Shard>();
    shard->index = i;
    shard->store = std::make_unique<billing::Store>(options_.conninfo, options_.store_options);
    shards_.push_back(std::move(shard));
  }
}

IngestWriter::~IngestWriter() { Stop(); }

void IngestWriter::Start() {
  if (started_) return;
  started_ = true;
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    s->thread = std::thread([this, s] { Run(*s); });
  }
}

bool IngestWriter::healthy() const {
  for (const auto& shard : shards_) {
    if (shard->down.load()) return false;
  }
  return true;
}

void IngestWriter::Submit(billing::IngestItem item, uint64_t shard_key, Callback done) {
  Shard& shard = *shards_[ShardOf(shard_key)];
  IngestRefusal refusal = IngestRefusal::kNone;
  if (stopping_.load() || !started_) {
    refusal = IngestRefusal::kStopping;
  } else if (shard.down.load()) {
    refusal = IngestRefusal::kDatabaseDown;
  } else if (inflight_.fetch_add(1) >= options_.max_inflight) {
    inflight_.fetch_sub(1);
    refusal = IngestRefusal::kBackpressure;
  }
  if (refusal != IngestRefusal::kNone) {
    IngestOutcome outcome;
    outcome.refused = refusal;
    outcome.status = billing::StoreStatus::Transient(
        refusal == IngestRefusal::kBackpressure ? "ingest queue full"
        : refusal == IngestRefusal::kDatabaseDown ? "database unavailable, reconnecting"
                                                  : "shutting down");
    boost::asio::post(completion_executor_,
                      [done = std::move(done), outcome = std::move(outcome)] { done(outcome); });
    return;
  }
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.queue.push_back(Pending{std::move(item), std::move(done)});
  }
  shard.cv.notify_one();
}

void IngestWriter::RunOnShard(int shard_index, std::function<void(billing::Store&)> fn) {
  Shard& shard = *shards_[static_cast<size_t>(shard_index) % shards_.size()];
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.tasks.push_back(std::move(fn));
  }
  shard.cv.notify_one();
}

void IngestWriter::Stop() {
  stopping_.store(true);
  for (auto& shard : shards_) {
    { std::lock_guard<std::mutex> lock(shard->mu); }
    shard->cv.notify_all();
  }
  for (auto& shard : shards_) {
    if (shard->thread.joinable()) shard->thread.join();
  }
}

void IngestWriter::Finish(Pending& pending, IngestOutcome outcome) {
  inflight_.fetch_sub(1);
  boost::asio::post(completion_executor_,
                    [done = std::move(pending.done), outcome = std::move(outcome)] { done(outcome); });
}

void IngestWriter::Run(Shard& shard) {
  std::vector<Pending> batch;
  batch.reserve(options_.batch_size);
  for (;;) {
    std::deque<std::function<void(billing::Store&)>> tasks;
    {
      std::unique_lock<std::mutex> lock(shard.mu);
      shard.cv.wait(lock, [&] {
        return !shard.queue.empty() || !shard.tasks.empty() || stopping_.load();
      });
      tasks.swap(shard.tasks);
      if (shard.queue.empty() && tasks.empty() && stopping_.load()) return;
      // Linger: the first item of a batch waits up to `linger` for company (group commit), but
      // only while company keeps coming: once no item arrived for `idle_gap`, the burst that a
      // window of acks released is in and waiting longer only delays its acks (at window 10 the
      // full linger cost a fifth of the ack rate; without any linger, batches split in two).
      if (!shard.queue.empty() && static_cast<int>(shard.queue.size()) < options_.batch_size &&
          options_.linger.count() > 0 && !stopping_.load()) {
        const auto deadline = Clock::now() + options_.linger;
        const auto gap = options_.idle_gap.count() > 0
                             ? std::chrono::duration_cast<Clock::duration>(options_.idle_gap)
                             : std::chrono::duration_cast<Clock::duration>(options_.linger);
        for (;;) {
          const size_t seen = shard.queue.size();
          const auto gap_end = std::min(deadline, Clock::now() + gap);
          shard.cv.wait_until(lock, gap_end, [&] {
            return static_cast<int>(shard.queue.size()) >= options_.batch_size || stopping_.load() ||
                   shard.queue.size() != seen;
          });
          if (static_cast<int>(shard.queue.size()) >= options_.batch_size || stopping_.load()) break;
          if (shard.queue.size() == seen || Clock::now() >= deadline) break;  // idle, or lingered enough
        }
      }
      while (!shard.queue.empty() && static_cast<int>(batch.size()) < options_.batch_size) {
        batch.push_back(std::move(shard.queue.front()));
        shard.queue.pop_front();
      }
    }
    for (auto& task : tasks) task(*shard.store);
    if (!batch.empty()) {
      CommitBatch(shard, batch);
      batch.clear();
    }
  }
}

void IngestWriter::CommitBatch(Shard& shard, std::vector<Pending>& batch) {
  std::vector<billing::IngestItem> items;
  items.reserve(batch.size());
  for (auto& p : batch) items.push_back(std::move(p.item));

  busy_connections_.fetch_add(1);
  if (metrics_) metrics_->store_pool_in_use().Increment();
  auto started = Clock::now();
  std::vector<billing::IngestResult> results;
  billing::IngestCommitTicket ticket;
  billing::StoreStatus status = shard.store->IngestBatch(items, &results, &ticket);
  auto elapsed = Clock::now() - started;
  const uint64_t seq = attempt_seq_.fetch_add(1) + 1;
  auto& mark = status.ok() ? last_success_seq_ : last_failure_seq_;
  for (uint64_t cur = mark.load(); cur < seq && !mark.compare_exchange_weak(cur, seq);) {
  }
  busy_connections_.fetch_sub(1);
  if (metrics_) {
    metrics_->store_pool_in_use().Decrement();
    metrics_->store_batch_size().Observe(static_cast<double>(items.size()));
    if (status.ok()) {
      metrics_->store_commit_duration().Observe(std::chrono::duration<double>(elapsed).count());
    } else {
      metrics_->StoreError(status);
    }
  }

  if (status.ok() && results.size() == batch.size()) {
    for (size_t i = 0; i < batch.size(); ++i) {
      IngestOutcome outcome;
      outcome.result = results[i];
      outcome.commit_time = elapsed;
      Finish(batch[i], std::move(outcome));
    }
    return;
  }
  if (status.ok()) status = billing::StoreStatus::Permanent("store returned a wrong result count");
  if (ticket.valid()) {
    HoldInDoubt(shard, batch, items, ticket, status);
    return;
  }

  if (status.permanent() && batch.size() > 1) {
    // One bad item must not block the others: retry one by one.
    spdlog::error("ingest: batch of {} failed permanently ({}); retrying items one by one",
                  batch.size(), status.message());
    bool failed_any = false;
    billing::StoreStatus last_failure = status;
    for (size_t i = 0; i < batch.size(); ++i) {
      std::vector<billing::IngestItem> one{std::move(items[i])};
      std::vector<billing::IngestResult> one_result;
      auto t0 = Clock::now();
      billing::IngestCommitTicket one_ticket;
      billing::StoreStatus s = shard.store->IngestBatch(one, &one_result, &one_ticket);
      if (one_ticket.valid()) {
        std::vector<Pending> held;
        held.push_back(std::move(batch[i]));
        HoldInDoubt(shard, held, one, one_ticket, s);
        continue;
      }
      IngestOutcome outcome;
      outcome.status = s;
      outcome.commit_time = Clock::now() - t0;
      if (s.ok() && one_result.size() == 1) {
        outcome.result = one_result[0];
      } else {
        if (s.ok()) outcome.status = billing::StoreStatus::Permanent("wrong result count");
        if (metrics_) metrics_->StoreError(outcome.status);
        failed_any = true;
        last_failure = outcome.status;
        if (outcome.status.transient()) shard.down.store(true);
      }
      Finish(batch[i], std::move(outcome));
    }
    if (shard.down.load()) Reconnect(shard);
    if (failed_any && batch_failed_hook_) batch_failed_hook_(shard.index, last_failure, *shard.store);
    shard.down.store(false);
    return;
  }

  spdlog::warn("ingest: batch of {} not stored: {}", batch.size(), status.ToString());
  if (status.transient()) shard.down.store(true);
  for (auto& p : batch) {
    IngestOutcome outcome;
    outcome.status = status;
    outcome.commit_time = elapsed;
    Finish(p, std::move(outcome));
  }
  // Everything queued behind the failed batch would meet the same fate; answer it now so the
  // SMSC redelivers sooner.
  if (shard.down.load()) AnswerQueuedDown(shard, status);
  // Reload in-memory state only once the database answers again (while it is down every new
  // item is refused, so nothing can slip in between).
  if (shard.down.load()) Reconnect(shard);
  if (batch_failed_hook_) batch_failed_hook_(shard.index, status, *shard.store);
  shard.down.store(false);
}

void IngestWriter::AnswerQueuedDown(Shard& shard, const billing::StoreStatus& status) {
  std::deque<Pending> rest;
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    rest.swap(shard.queue);
  }
  for (auto& p : rest) {
    IngestOutcome outcome;
    outcome.status = status;
    outcome.refused = IngestRefusal::kDatabaseDown;
    Finish(p, std::move(outcome));
  }
}

void IngestWriter::HoldInDoubt(Shard& shard, std::vector<Pending>& batch,
                               const std::vector<billing::IngestItem>& items,
                               const billing::IngestCommitTicket& ticket,
                               const billing::StoreStatus& status) {
  const auto n = static_cast<int64_t>(batch.size());
  spdlog::warn("ingest: batch of {} in doubt ({}); holding its MOs unanswered until the database "
               "says whether it committed", n, status.message());
  shard.down.store(true);
  held_in_doubt_.fetch_add(n);
  if (metrics_) metrics_->ingest_in_doubt_held().Increment(static_cast<double>(n));
  if (in_doubt_hook_) in_doubt_hook_(items, false, false, {});
  AnswerQueuedDown(shard, status);

  bool committed = false;
  std::vector<billing::IngestResult> results;
  billing::StoreStatus resolved = billing::StoreStatus::Transient("not asked yet");
  auto backoff = options_.reconnect_backoff_min;
  while (!stopping_.load()) {
    resolved = shard.store->ResolveIngestCommit(ticket, &committed, &results);
    if (resolved.ok() || resolved.permanent()) break;
    std::unique_lock<std::mutex> lock(shard.mu);
    shard.cv.wait_for(lock, backoff, [&] { return stopping_.load(); });
    backoff = std::min(options_.reconnect_backoff_max, backoff * 2);
  }
  held_in_doubt_.fetch_sub(n);
  if (metrics_) metrics_->ingest_in_doubt_held().Decrement(static_cast<double>(n));

  if (!resolved.ok()) {
    // Stopping (or a marker we cannot read): answering either way could be wrong. No answer:
    // the SMSC redelivers, and the next start treats this run as crashed (no clean stop), so
    // a redelivery of a committed MO is recognised then.
    spdlog::error("ingest: {} MOs still in doubt ({}); leaving them unanswered", n, resolved.ToString());
    unresolved_at_stop_.fetch_add(n);
    for (auto& p : batch) {
      IngestOutcome outcome;
      outcome.status = status;
      outcome.in_doubt = true;
      outcome.unanswered = true;
      Finish(p, std::move(outcome));
    }
    shard.down.store(false);
    return;
  }
  if (committed && results.size() != batch.size()) committed = false;  // cannot happen: marker checked
  spdlog::warn("ingest: batch of {} in doubt resolved: {}", n, committed ? "committed" : "not committed");
  if (metrics_) metrics_->IngestInDoubtResolved(committed, static_cast<double>(n));
  if (in_doubt_hook_) in_doubt_hook_(items, true, committed, results);
  for (size_t i = 0; i < batch.size(); ++i) {
    IngestOutcome outcome;
    outcome.in_doubt = true;
    if (committed) {
      outcome.result = results[i];
    } else {
      outcome.status = status;
    }
    Finish(batch[i], std::move(outcome));
  }
  if (!committed && batch_failed_hook_) batch_failed_hook_(shard.index, status, *shard.store);
  shard.down.store(false);
}

void IngestWriter::Reconnect(Shard& shard) {
  auto backoff = options_.reconnect_backoff_min;
  while (!stopping_.load()) {
    {
      std::unique_lock<std::mutex> lock(shard.mu);
      shard.cv.wait_for(lock, backoff, [&] { return stopping_.load(); });
    }
    if (stopping_.load()) break;
    billing::StoreStatus s = shard.store->Ping();
    if (s.ok()) {
      spdlog::info("ingest: database reachable again (shard {})", shard.index);
      break;
    }
    if (metrics_) metrics_->StoreError(s);
    backoff = std::min(options_.reconnect_backoff_max, backoff * 2);
  }
}

}  // namespace donagate::daemon
