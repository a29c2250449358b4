#include "daemon/reply_sender.h"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "daemon/link_manager.h"
#include "daemon/logging.h"
#include "daemon/metrics.h"
#include "protocol/message_id.h"
#include "protocol/text_codec.h"

namespace donagate::daemon {

namespace {

using Clock = std::chrono::steady_clock;

smpp::MessageIdMode ToIdMode(config::MessageIdNormalization n) {
  switch (n) {
    case config::MessageIdNormalization::kExact: return smpp::MessageIdMode::kExact;
    case config::MessageIdNormalization::kTrimLeadingZeros: return smpp::MessageIdMode::kTrimLeadingZeros;
    case config::MessageIdNormalization::kResponseHexReceiptDecimal:
      return smpp::MessageIdMode::kResponseHexReceiptDecimal;
    case config::MessageIdNormalization::kResponseDecimalReceiptHex:
      return smpp::MessageIdMode::kResponseDecimalReceiptHex;
  }
  return smpp::MessageIdMode::kTrimLeadingZeros;
}

// The parts of one reply, gathered as their submit_sm_resp arrive.
struct Gather {
  size_t expected = 0;
  std::vector<SubmitResult> results;
};

}  // namespace

ReplySender::ReplySender(boost::asio::any_io_executor executor, const config::Config& config,
                         LinkManager& links, ReplySenderOptions options, Metrics* metrics)
    : executor_(std::move(executor)), config_(config), links_(links), options_(std::move(options)),
      metrics_(metrics), priority_(options_.ingest_busy, options_.yield_floor) {
  options_.batch_size = std::max(1, options_.batch_size);
  options_.max_inflight = std::max(1, options_.max_inflight);
  store_ = std::make_unique<billing::Store>(options_.conninfo, options_.store_options);
  hand_off_floor_ = options_.hand_off_limit > 0
                        ? options_.hand_off_limit
                        : std::max<int64_t>(1000, int64_t{4} * options_.max_inflight);
  hand_off_limit_.store(hand_off_floor_);
}

ReplySender::~ReplySender() { Stop(std::chrono::milliseconds(0)); }

void ReplySender::Start() {
  if (thread_.joinable()) return;
  running_.store(true);
  thread_ = std::thread([this] { Run(); });
}

void ReplySender::Stop(std::chrono::milliseconds drain) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_.load()) drain_deadline_ = Clock::now() + drain;
    stopping_.store(true);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReplySender::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
  }
  store_work_signalled_.store(true);
  cv_.notify_all();
}

void ReplySender::Complete(Result result) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    results_.push_back(std::move(result));
  }
  cv_.notify_all();
}

void ReplySender::Run() {
  for (;;) {
    RecordResults();
    if (stopping_.load()) {
      std::unique_lock<std::mutex> lock(mu_);
      if (inflight_.load() == 0 || Clock::now() >= drain_deadline_) break;
      cv_.wait_until(lock, std::min(drain_deadline_, Clock::now() + options_.poll_interval),
                     [&] { return !results_.empty(); });
      continue;
    }
    if (Clock::now() >= next_rate_update_) {
      const auto now = Clock::now();
      next_rate_update_ = now + std::chrono::seconds(2);
      const uint64_t submitted = submitted_.load();
      if (rate_at_ != Clock::time_point{}) {
        const double per_s = static_cast<double>(submitted - rate_submitted_) /
                             std::chrono::duration<double>(now - rate_at_).count();
        const auto quarter_lease = static_cast<double>(options_.lease.count()) / 4;
        hand_off_limit_.store(std::clamp<int64_t>(static_cast<int64_t>(per_s * quarter_lease),
                                                  hand_off_floor_, 200000));
      }
      rate_at_ = now;
      rate_submitted_ = submitted;
    }
    if (metrics_ && Clock::now() >= next_gauge_update_) {
      next_gauge_update_ = Clock::now() + std::chrono::seconds(2);
      int64_t backlog = 0;
      if (store_->CountOutboxBacklog(&backlog).ok()) {
        metrics_->outbox_backlog().Set(static_cast<double>(backlog));
      }
    }
    if (Clock::now() >= next_sweep_) {
      next_sweep_ = Clock::now() + std::chrono::seconds(2);
      SweepParkedReceipts();
    }
    if (Clock::now() >= next_purge_) PurgeStaleReceipts();
    int64_t before = inflight_.load();
    if (!priority_.ShouldYield()) {
      Claim();
    } else {
      TakeHanded(static_cast<int>(options_.max_inflight - inflight_.load()));
    }
    bool claimed_full = inflight_.load() - before >= options_.batch_size &&
                        inflight_.load() < options_.max_inflight;
    if (claimed_full) continue;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, options_.poll_interval, [&] {
      return !results_.empty() || notified_ || stopping_.load() ||
             (!handed_.empty() && inflight_.load() < options_.max_inflight);
    });
    notified_ = false;
  }
  RecordResults();
  ReleaseHanded();
}

void ReplySender::PurgeStaleReceipts() {
  int64_t purged = 0;
  const billing::StoreStatus s = store_->PurgePendingReceipts(options_.pending_receipt_max_age, &purged);
  if (!s.ok()) {
    next_purge_ = Clock::now() + std::chrono::seconds(60);  // the database is away: soon again
    if (metrics_) metrics_->StoreError(s);
    return;
  }
  next_purge_ = Clock::now() + options_.purge_interval;
  if (metrics_) metrics_->pending_receipts_purged().Increment(static_cast<double>(purged));
  if (purged > 0) {
    Logger("reply")->info("event=pending_receipts_purged count={} older_than_s={}", purged,
                          options_.pending_receipt_max_age.count());
  }
}

void ReplySender::SweepParkedReceipts() {
  // apply_receipt() finds the reply now (the EXISTS guarantees it), updates it and returns true;
  // the applied rows are then deleted. SKIP LOCKED: another instance may sweep at the same time.
  static constexpr std::string_view kSweepSql = R"(
WITH parked AS (
  SELECT p.id, p.operator, p.smsc_message_id, p.stat, p.err, p.done_at, p.inbound_message_id
    FROM pending_receipt p
   WHERE p.received_at < now() - interval '1 second'
     AND EXISTS (SELECT 1 FROM outbox_message_id m
                  WHERE m.operator = p.operator AND m.smsc_message_id = p.smsc_message_id)
   ORDER BY p.id LIMIT 1000
   FOR UPDATE SKIP LOCKED),
applied AS (
  SELECT id, apply_receipt(operator, smsc_message_id, stat, err, done_at, inbound_message_id) AS matched
    FROM parked)
DELETE FROM pending_receipt d USING applied a WHERE d.id = a.id AND a.matched)";
  billing::StoreStatus s = sweep_conn_.Ensure(options_.conninfo, {{"application_name", "donagated-receipts"}});
  if (s.ok()) s = sweep_conn_.Exec(kSweepSql);
  if (!s.ok()) {
    if (metrics_) metrics_->StoreError(s);
    Logger("reply")->warn("event=receipt_sweep_failed error={}", Quote(s.ToString()));
  }
}

bool ReplySender::AcceptsHandOff() const {
  return running_.load() && !stopping_.load() && handed_waiting_.load() < hand_off_limit_.load();
}

void ReplySender::HandOff(billing::OutboxReply reply) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    handed_.push_back({std::move(reply), Clock::now()});
    notified_ = true;
  }
  handed_waiting_.fetch_add(1);
  cv_.notify_all();
}

int ReplySender::TakeHanded(int room) {
  std::vector<billing::OutboxReply> take;
  int64_t stale = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto fresh_after = Clock::now() - options_.lease / 2;
    while (!handed_.empty() && static_cast<int>(take.size()) < room) {
      Handed h = std::move(handed_.front());
      handed_.pop_front();
      if (h.at < fresh_after) {
        ++stale;
        continue;
      }
      take.push_back(std::move(h.reply));
    }
  }
  handed_waiting_.fetch_sub(stale + static_cast<int64_t>(take.size()));
  if (stale > 0) {
    Logger("reply")->warn("event=handed_replies_stale count={} note={}", stale,
                          Quote("claimed again from the outbox when their lease expires"));
  }
  for (billing::OutboxReply& r : take) {
    inflight_.fetch_add(1);
    boost::asio::post(executor_, [this, r = std::move(r)]() mutable { Send(std::move(r)); });
  }
  return static_cast<int>(take.size());
}

void ReplySender::ReleaseHanded() {
  std::vector<billing::Store::ReplyResultRecord> records;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Handed& h : handed_) {
      billing::Store::ReplyResultRecord r;
      r.kind = billing::Store::ReplyResultRecord::Kind::kRetry;
      r.reply_id = h.reply.id;
      r.next_attempt_at = billing::StoreClock::now();
      r.reason = "released unsent at shutdown";
      records.push_back(std::move(r));
    }
    handed_.clear();
  }
  if (records.empty()) return;
  handed_waiting_.fetch_sub(static_cast<int64_t>(records.size()));
  const billing::StoreStatus s = store_->RecordReplyResults(records, nullptr);
  if (!s.ok()) {
    Logger("reply")->warn("event=release_failed count={} error={}", records.size(), Quote(s.ToString()));
  }
}

void ReplySender::Claim() {
  int room = static_cast<int>(options_.max_inflight - inflight_.load());
  room -= TakeHanded(room);
  int limit = std::min(options_.batch_size, room);
  if (limit <= 0) return;
  const auto now = Clock::now();
  if (!last_claim_full_ && now < next_store_claim_ && !store_work_signalled_.load()) return;
  store_work_signalled_.store(false);
  next_store_claim_ = now + options_.poll_interval;
  std::vector<std::string> operators = links_.OperatorsWithTransmitter();
  if (operators.empty()) return;
  std::vector<billing::OutboxReply> replies;
  billing::StoreStatus s = store_->ClaimReplies(operators, limit, options_.lease, &replies);
  if (!s.ok()) {
    if (metrics_) metrics_->StoreError(s);
    Logger("reply")->warn("event=claim_failed error={}", Quote(s.ToString()));
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping_.load(); });
    return;
  }
  last_claim_full_ = static_cast<int>(replies.size()) >= limit;
  for (billing::OutboxReply& r : replies) {
    // Its result is in memory, waiting to be recorded: sending it again would be a duplicate.
    if (unrecorded_ids_.count(r.id) != 0) continue;
    inflight_.fetch_add(1);
    boost::asio::post(executor_, [this, r = std::move(r)]() mutable { Send(std::move(r)); });
  }
}

void ReplySender::Send(billing::OutboxReply reply) {
  Result base;
  base.reply_id = reply.id;
  base.attempts = reply.attempts + 1;
  base.operator_name = reply.operator_name;
  base.created_at = reply.created_at;

  std::shared_ptr<Link> link;
  if (!reply.link.empty()) {
    link = links_.Find(reply.link);
    if (link && !link->CanTransmit()) link.reset();
  }
  if (!link) link = links_.PickTransmitter(reply.operator_name);
  if (!link) {
    base.kind = Result::Kind::kRetry;
    base.reason = "no transmitting link for operator " + reply.operator_name;
    Complete(std::move(base));
    return;
  }
  const config::SmscLink* cfg = config::FindLink(config_, link->name());
  static const config::SmscLink kDefaultLink{};
  if (!cfg) cfg = &kDefaultLink;

  smpp::SubmitSm proto;
  proto.source_addr_ton = static_cast<uint8_t>(cfg->source_ton);
  proto.source_addr_npi = static_cast<uint8_t>(cfg->source_npi);
  proto.source_addr = reply.source_addr;
  proto.dest_addr_ton = static_cast<uint8_t>(cfg->dest_ton);
  proto.dest_addr_npi = static_cast<uint8_t>(cfg->dest_npi);
  proto.destination_addr = reply.dest_addr;
  proto.registered_delivery = 1;  // ask for a delivery receipt

  std::vector<smpp::SubmitSm> pdus;
  if (cfg->reply_long_mode == config::ReplyLongMode::kMessagePayload) {
    smpp::EncodedText enc = smpp::EncodeForSms(reply.text, {cfg->gsm_packed});
    smpp::SubmitSm pdu = proto;
    pdu.data_coding = enc.data_coding;
    const size_t limit = enc.data_coding == 8 ? smpp::kUcs2SinglePartUnits : smpp::kGsmSinglePartSeptets;
    if (enc.units <= limit && enc.payload.size() <= smpp::kMaxShortMessageLength) {
      pdu.short_message = enc.payload;
    } else {
      pdu.tlvs.set_message_payload(enc.payload);
    }
    pdus.push_back(std::move(pdu));
  } else {
    const auto ref = static_cast<uint8_t>(concat_ref_.fetch_add(1) & 0xff);
    smpp::SplitMessage split = smpp::SplitForSms(reply.text, ref, {cfg->gsm_packed, 255});
    if (split.status != smpp::SplitStatus::kOk || split.parts.empty()) {
      base.kind = Result::Kind::kFailed;
      base.reason = "reply text too long to split";
      Complete(std::move(base));
      return;
    }
    for (std::string& part : split.parts) {
      smpp::SubmitSm pdu = proto;
      pdu.data_coding = split.data_coding;
      pdu.esm_class = static_cast<uint8_t>(proto.esm_class | split.esm_class_flags);
      pdu.short_message = std::move(part);
      pdus.push_back(std::move(pdu));
    }
  }

  auto gather = std::make_shared<Gather>();
  gather->expected = pdus.size();
  const smpp::MessageIdMode id_mode = ToIdMode(cfg->message_id_normalization);
  for (smpp::SubmitSm& pdu : pdus) {
    link->Submit(std::move(pdu), [this, gather, base, id_mode](const SubmitResult& r) {
      gather->results.push_back(r);  // every part's callback runs on the same link strand
      if (gather->results.size() < gather->expected) return;
      Result result = base;
      bool all_ok = true, any_rejected = false, throttled = false;
      std::string reason;
      for (const SubmitResult& part : gather->results) {
        if (part.outcome == SubmitOutcome::kOk) {
          result.message_ids.push_back(
              smpp::NormalizeMessageId(part.message_id, smpp::MessageIdSource::kSubmitResponse, id_mode)
                  .canonical);
          continue;
        }
        all_ok = false;
        if (part.outcome == SubmitOutcome::kRejected) any_rejected = true;
        if (part.outcome == SubmitOutcome::kThrottled) throttled = true;
        reason = std::string(ToString(part.outcome)) + " status=" + std::to_string(part.command_status);
      }
      if (all_ok) {
        result.kind = Result::Kind::kSubmitted;
      } else if (any_rejected) {
        result.kind = Result::Kind::kFailed;
        result.reason = "rejected by SMSC: " + reason;
      } else {
        result.kind = Result::Kind::kRetry;
        result.throttled = throttled;
        result.reason = reason;
      }
      Complete(std::move(result));
    });
  }
}

void ReplySender::RecordResults() {
  std::deque<Result> batch;
  batch.swap(unrecorded_);
  unrecorded_ids_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Result& r : results_) batch.push_back(std::move(r));
    results_.clear();
  }
  if (batch.empty()) return;
  // One transaction for the whole batch: with synchronous_commit=on each commit is a WAL
  // flush, and one flush per reply capped the reply rate (docs/performance.md).
  using Record = billing::Store::ReplyResultRecord;
  std::vector<Record> records;
  records.reserve(batch.size());
  for (const Result& r : batch) {
    Record rec;
    rec.reply_id = r.reply_id;
    if (r.kind == Result::Kind::kSubmitted) {
      rec.kind = Record::Kind::kSubmitted;
      rec.smsc_message_ids = r.message_ids;
    } else if (r.kind == Result::Kind::kFailed || r.attempts >= options_.max_attempts) {
      rec.kind = Record::Kind::kFailed;
      rec.reason = r.reason;
    } else {
      auto backoff = options_.retry_min * (1LL << std::min(r.attempts - 1, 16));
      backoff = std::min<decltype(backoff)>(backoff, options_.retry_max);
      rec.kind = Record::Kind::kRetry;
      rec.next_attempt_at = billing::StoreClock::now() + backoff;
      rec.reason = r.reason;
    }
    records.push_back(std::move(rec));
  }
  std::vector<billing::StoreStatus> statuses;
  store_->RecordReplyResults(records, &statuses);
  size_t kept = 0;
  std::string kept_reason;
  for (size_t i = 0; i < batch.size(); ++i) {
    Result& r = batch[i];
    const billing::StoreStatus& s = statuses[i];
    if (s.transient() && !stopping_.load()) {
      // Kept and recorded later; until then a re-claim of this reply is not sent again.
      if (metrics_) metrics_->StoreError(s);
      if (kept++ == 0) kept_reason = s.ToString();
      unrecorded_ids_.insert(r.reply_id);
      unrecorded_.push_back(std::move(r));
      continue;
    }
    if (!s.ok()) {
      // Permanent, or stopping: the claim's lease will expire and the reply will be sent
      // again (at-least-once).
      if (metrics_) metrics_->StoreError(s);
      Logger("reply")->warn("event=record_failed reply_id={} error={}", r.reply_id, Quote(s.ToString()));
    }
    if (metrics_) {
      auto& counters = metrics_->ForOperator(r.operator_name);
      if (r.kind == Result::Kind::kSubmitted) {
        counters.Add(ReplyResult::kSent);
        double latency = std::chrono::duration<double>(billing::StoreClock::now() - r.created_at).count();
        if (latency >= 0) metrics_->reply_latency().Observe(latency);
      } else if (r.kind == Result::Kind::kFailed || r.attempts >= options_.max_attempts) {
        counters.Add(ReplyResult::kFailed);
      } else if (r.throttled) {
        counters.Add(ReplyResult::kThrottled);
      }
    }
    if (r.kind == Result::Kind::kSubmitted) submitted_.fetch_add(1);
    inflight_.fetch_sub(1);
  }
  if (kept > 0) {
    Logger("reply")->warn("event=record_deferred count={} error={}", kept, Quote(kept_reason));
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_.load(); });
  }
}

}  // namespace donagate::daemon
