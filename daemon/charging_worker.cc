#include "daemon/charging_worker.h"

#include <map>

#include <algorithm>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "billing/charging/charging_factory.h"
#include "billing/domain/reply_template.h"
#include "daemon/logging.h"
#include "daemon/carrier_billing_metrics.h"
#include "daemon/diameter_metrics.h"
#include "daemon/metrics.h"
#include "daemon/reply_templates.h"

namespace donagate::daemon {

namespace {

// While claims come back full, a claim takes up to this many rounds' worth (batch_size each).
constexpr int64_t kClaimGrowth = 16;

using Clock = std::chrono::steady_clock;

// Counts every backend call (Charge and Status) by outcome and latency. The charger only
// sees the ChargingBackend interface, so metering is a decorator, not a change to backends.
class MeteredBackend final : public billing::ChargingBackend {
 public:
  MeteredBackend(std::unique_ptr<billing::ChargingBackend> inner,
                 Metrics::ChargingCounters* counters)
      : inner_(std::move(inner)), counters_(counters) {}

  std::string_view Name() const override { return inner_->Name(); }

  void Charge(const billing::ChargeRequest& request, billing::ChargeCallback done) override {
    inner_->Charge(request, Wrap(std::move(done)));
  }
  void Status(const std::string& key, billing::ChargeCallback done) override {
    inner_->Status(key, Wrap(std::move(done)));
  }
  bool SupportsRefund() const override { return inner_->SupportsRefund(); }
  void Refund(const std::string& key, int64_t amount_vnd, billing::RefundCallback done) override {
    inner_->Refund(key, amount_vnd, std::move(done));
  }

 private:
  billing::ChargeCallback Wrap(billing::ChargeCallback done) {
    if (!counters_) return done;
    auto started = Clock::now();
    return [counters = counters_, started, done = std::move(done)](billing::ChargeResult r) {
      counters->Request(r.outcome, std::chrono::duration<double>(Clock::now() - started).count());
      done(std::move(r));
    };
  }

  std::unique_ptr<billing::ChargingBackend> inner_;
  Metrics::ChargingCounters* counters_;
};

billing::ChargeRecord ToChargeRecord(const billing::StoredCharge& c) {
  billing::ChargeRecord r;
  r.key = c.key;
  r.unit_index = c.unit_index;
  r.units = c.units;
  r.amount_vnd = c.amount_vnd;
  r.outcome = c.outcome;
  r.operator_reference = c.operator_reference;
  r.detail = c.detail;
  return r;
}

billing::StoredCharge ToStoredCharge(const billing::ChargeRecord& r) {
  billing::StoredCharge c;
  c.key = r.key;
  c.unit_index = r.unit_index;
  c.units = r.units;
  c.amount_vnd = r.amount_vnd;
  c.outcome = r.outcome;
  c.operator_reference = r.operator_reference;
  c.detail = r.detail;
  return c;
}

}  // namespace

struct ChargerSet::Entry {
  std::unique_ptr<billing::ChargingBackend> backend;
  std::unique_ptr<billing::CircuitBreaker> breaker;
  std::shared_ptr<DiameterMetricsExporter> diameter_metrics;  // backend = "diameter" only
  std::shared_ptr<CarrierBillingMetricsExporter> carrier_billing_metrics;  // "carrier_billing" only
  std::unique_ptr<billing::DonationCharger> charger;
  std::optional<config::ChargingMode> mode_override;
  Metrics::ChargingCounters* counters = nullptr;
  // Last state written to the log, so an opening or closing breaker is one warn line each
  // (an outage must be visible in the journal, not only on a dashboard).
  mutable std::optional<billing::CircuitBreaker::State> logged_state;
};

ChargerSet::~ChargerSet() = default;

std::unique_ptr<ChargerSet> ChargerSet::Create(boost::asio::any_io_executor executor,
                                               const config::Config& config, Metrics* metrics,
                                               std::string* error) {
  std::unique_ptr<ChargerSet> set(new ChargerSet());
  set->metrics_ = metrics;
  for (const config::ChargingBackendConfig& c : config.charging) {
    auto entry = std::make_unique<Entry>();
    entry->counters = metrics ? &metrics->ForBackend(c.operator_name) : nullptr;
    std::string why;
    std::unique_ptr<billing::ChargingBackend> backend = billing::MakeChargingBackend(c, executor, &why);
    if (!backend) {
      if (error) *error = why;
      return nullptr;
    }
    if (auto* diameter = dynamic_cast<billing::DiameterChargingBackend*>(backend.get()); diameter && metrics) {
      entry->diameter_metrics =
          DiameterMetricsExporter::Start(executor, metrics->registry(), c.operator_name, diameter->StatsSource());
    }
    if (auto* cb = dynamic_cast<billing::CarrierBillingChargingBackend*>(backend.get()); cb && metrics) {
      entry->carrier_billing_metrics =
          CarrierBillingMetricsExporter::Start(executor, metrics->registry(), c.operator_name, cb->StatsSource());
    }
    entry->backend = std::make_unique<MeteredBackend>(std::move(backend), entry->counters);
    entry->breaker = std::make_unique<billing::CircuitBreaker>(billing::BreakerOptionsFor(c));
    entry->charger = std::make_unique<billing::DonationCharger>(
        executor, *entry->backend, entry->breaker.get(), billing::ChargerOptionsFor(c));
    entry->mode_override = c.charging_mode;
    set->entries_[c.operator_name] = std::move(entry);
  }
  return set;
}

billing::DonationCharger* ChargerSet::ForOperator(const std::string& operator_name) const {
  auto it = entries_.find(operator_name);
  return it == entries_.end() ? nullptr : it->second->charger.get();
}

std::optional<config::ChargingMode> ChargerSet::ModeOverride(const std::string& operator_name) const {
  auto it = entries_.find(operator_name);
  return it == entries_.end() ? std::nullopt : it->second->mode_override;
}

std::vector<std::string> ChargerSet::Operators() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

void ChargerSet::ExportBreakerStates() const {
  for (const auto& [name, entry] : entries_) {
    const billing::CircuitBreaker::State state = entry->breaker->state();
    if (entry->counters) entry->counters->SetBreaker(state);
    if (entry->logged_state.has_value() ? *entry->logged_state != state
                                        : state != billing::CircuitBreaker::State::kClosed) {
      auto log = Logger("charging");
      if (state == billing::CircuitBreaker::State::kClosed) {
        log->info("event=breaker_closed operator={} backend={}", name, entry->backend->Name());
      } else {
        log->warn("event=breaker_{} operator={} backend={} effect=\"donations wait, none fail\"",
                  billing::ToString(state), name, entry->backend->Name());
      }
    }
    entry->logged_state = state;
  }
}

ChargingWorker::ChargingWorker(const config::Config& config, ChargerSet& chargers,
                               ChargingWorkerOptions options, Metrics* metrics)
    : config_(config), chargers_(chargers), options_(std::move(options)), metrics_(metrics) {
  options_.batch_size = std::max(1, options_.batch_size);
  options_.concurrency = std::max(1, options_.concurrency);
  options_.threads = std::clamp(options_.threads, 1, options_.concurrency);
  for (const config::Campaign& c : config_.campaigns) campaigns_[c.name] = &c;
  for (int i = 0; i < options_.threads; ++i) {
    auto lane = std::make_unique<Lane>();
    lane->index = i;
    // Split the concurrency so the lanes together hold at most charge_concurrency.
    lane->concurrency = options_.concurrency / options_.threads +
                        (i < options_.concurrency % options_.threads ? 1 : 0);
    billing::StoreOptions so = options_.store_options;
    if (options_.threads > 1 && !so.application_name.empty())
      so.application_name += "-" + std::to_string(i + 1);
    lane->store = std::make_unique<billing::Store>(options_.conninfo, so);
    lane->priority = std::make_unique<IngestPriority>(options_.ingest_busy, options_.yield_floor);
    if (options_.adaptive) {
      AdaptiveLimit::Options lo;
      lo.max = std::max<int64_t>(1, lane->concurrency);
      lo.min = std::min<int64_t>(lo.max, std::max<int64_t>(1, 8 / options_.threads));
      lo.initial = std::max<int64_t>(1, options_.initial_concurrency / options_.threads);
      lane->limit = std::make_unique<AdaptiveLimit>(lo);
      lane->concurrency = lane->limit->limit();
    }
    lanes_.push_back(std::move(lane));
  }
  paused_.store(options_.start_paused);
  if (metrics_) metrics_->charging_paused().Set(options_.start_paused ? 1 : 0);
  hand_off_floor_ = options_.hand_off_limit > 0
                        ? options_.hand_off_limit
                        : std::max<int64_t>(1000, int64_t{4} * options_.concurrency);
  hand_off_limit_.store(hand_off_floor_);
}

bool ChargingWorker::AcceptsHandOff(const std::string& operator_name) const {
  return !paused_.load() && !stopping_.load() && started_.load() &&
         handed_waiting_.load() < hand_off_limit_.load() && chargers_.ForOperator(operator_name) != nullptr;
}

void ChargingWorker::HandOff(billing::DonationWork work) {
  Lane& lane = *lanes_[hand_off_rr_.fetch_add(1) % lanes_.size()];
  {
    std::lock_guard<std::mutex> lock(lane.mu);
    lane.handed.push_back({std::move(work), Clock::now()});
    lane.notified = true;
  }
  handed_waiting_.fetch_add(1);
  lane.cv.notify_all();
}

int64_t ChargingWorker::StartHanded(Lane& lane) {
  const int64_t room = lane.concurrency - lane.inflight.load();
  if (room <= 0 || paused_.load()) return 0;
  std::vector<billing::DonationWork> work;
  std::vector<Clock::time_point> handed_at;  // kept if they go back: the lease runs on
  int64_t stale = 0;
  {
    std::lock_guard<std::mutex> lock(lane.mu);
    const auto fresh_after = Clock::now() - options_.lease / 2;
    while (!lane.handed.empty() && static_cast<int64_t>(work.size()) < room) {
      Lane::Handed h = std::move(lane.handed.front());
      lane.handed.pop_front();
      if (h.at < fresh_after) {
        ++stale;  // its lease may run out mid-charge: leave it to the claim after the lease
        continue;
      }
      work.push_back(std::move(h.work));
      handed_at.push_back(h.at);
    }
  }
  handed_waiting_.fetch_sub(stale + static_cast<int64_t>(work.size()));
  if (stale > 0) {
    spdlog::warn("charging: {} handed-off donations waited more than half their lease; they "
                 "resume from the database when the lease expires", stale);
  }
  if (work.empty()) return 0;
  // Their daily cap, decided here and not in the ingest's transaction: the acknowledgement does
  // not wait for it.
  const billing::StoreStatus s = lane.store->DecideDailyCaps(&work);
  if (!s.ok()) {
    if (metrics_) metrics_->StoreError(s);
    spdlog::warn("charging: deciding the daily cap of {} donations failed ({}); will retry",
                 work.size(), s.ToString());
    {
      std::lock_guard<std::mutex> lock(lane.mu);
      for (size_t i = work.size(); i-- > 0;) lane.handed.push_front({std::move(work[i]), handed_at[i]});
    }
    handed_waiting_.fetch_add(static_cast<int64_t>(work.size()));
    std::unique_lock<std::mutex> lock(lane.mu);
    lane.cv.wait_for(lock, options_.store_retry, [&] { return stopping_.load(); });
    return 0;
  }
  const auto started = static_cast<int64_t>(work.size());
  StartWork(lane, std::move(work));
  return started;
}

void ChargingWorker::ReleaseHanded(Lane& lane) {
  std::vector<int64_t> ids;
  {
    std::lock_guard<std::mutex> lock(lane.mu);
    for (const Lane::Handed& h : lane.handed) ids.push_back(h.work.donation_id);
    lane.handed.clear();
  }
  if (ids.empty()) return;
  handed_waiting_.fetch_sub(static_cast<int64_t>(ids.size()));
  // Back to received at once, so another instance (or the next start) need not wait for the
  // lease; if this fails the lease expires anyway.
  const billing::StoreStatus s = lane.store->ReleaseDonations(ids);
  if (!s.ok()) {
    spdlog::warn("charging: releasing {} unstarted donations failed ({}); their leases expire",
                 ids.size(), s.ToString());
  }
}

ChargingWorker::~ChargingWorker() { Stop(std::chrono::milliseconds(0)); }

void ChargingWorker::Start() {
  started_.store(true);
  for (auto& lane : lanes_) {
    if (lane->thread.joinable()) continue;
    Lane* l = lane.get();
    lane->thread = std::thread([this, l] { Run(*l); });
  }
}

void ChargingWorker::Stop(std::chrono::milliseconds drain) {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!stopping_.load()) {
      drain_deadline_ns_.store((Clock::now() + drain).time_since_epoch().count());
    }
    stopping_.store(true);
  }
  for (auto& lane : lanes_) {
    { std::lock_guard<std::mutex> lock(lane->mu); }  // no lost wake-up between check and wait
    lane->cv.notify_all();
  }
  for (auto& lane : lanes_) {
    if (lane->thread.joinable()) lane->thread.join();
  }
}

int64_t ChargingWorker::concurrency_limit() const {
  int64_t n = 0;
  for (const auto& lane : lanes_) n += lane->concurrency_seen.load();
  return n;
}

int64_t ChargingWorker::inflight() const {
  int64_t n = 0;
  for (const auto& lane : lanes_) n += lane->inflight.load();
  return n;
}

void ChargingWorker::Notify() {
  for (auto& lane : lanes_) {
    {
      std::lock_guard<std::mutex> lock(lane->mu);
      lane->notified = true;
    }
    lane->store_work_signalled.store(true);
    lane->cv.notify_all();
  }
}

void ChargingWorker::SetPaused(bool paused) {
  paused_.store(paused);
  if (metrics_) metrics_->charging_paused().Set(paused ? 1 : 0);
  spdlog::info("charging: {}", paused ? "paused (receiving and recording continue)" : "resumed");
  Notify();
}

void ChargingWorker::Complete(Lane& lane, Done done) {
  {
    std::lock_guard<std::mutex> lock(lane.mu);
    lane.done.push_back(std::move(done));
  }
  lane.cv.notify_all();
}

void ChargingWorker::Run(Lane& lane) {
  const auto drain_deadline = [this] {
    return Clock::time_point(Clock::duration(drain_deadline_ns_.load()));
  };
  for (;;) {
    {
      // Group outcomes: a record transaction per finished charge would make the database round
      // trip the bottleneck. Wait up to 20 ms for half of what is in flight to finish (5 ms made
      // many small record transactions with a fast backend: 1,017 vs 1,252 charged/s measured).
      std::unique_lock<std::mutex> lock(lane.mu);
      if (!lane.done.empty() && !stopping_.load()) {
        lane.cv.wait_for(lock, std::chrono::milliseconds(20), [&] {
          return static_cast<int64_t>(lane.done.size()) * 2 >= lane.inflight.load() ||
                 stopping_.load();
        });
      }
    }
    RecordPending(lane);
    if (stopping_.load()) {
      std::unique_lock<std::mutex> lock(lane.mu);
      if (lane.inflight.load() == 0 || Clock::now() >= drain_deadline()) break;
      lane.cv.wait_until(lock, std::min(drain_deadline(), Clock::now() + options_.poll_interval),
                         [&] { return !lane.done.empty(); });
      continue;
    }
    // Process-wide gauges and the breaker log lines: lane 0 only (ChargerSet's breaker
    // bookkeeping is not meant to be shared between threads).
    if (lane.index == 0 && Clock::now() >= lane.next_gauge_update) {
      lane.next_gauge_update = Clock::now() + std::chrono::seconds(2);
      chargers_.ExportBreakerStates();
      if (metrics_) metrics_->charging_concurrency_limit().Set(static_cast<double>(concurrency_limit()));
      const auto now = Clock::now();
      const uint64_t recorded = recorded_.load();
      if (rate_at_ != Clock::time_point{}) {
        const double per_s = static_cast<double>(recorded - rate_recorded_) /
                             std::chrono::duration<double>(now - rate_at_).count();
        const auto quarter_lease = static_cast<double>(options_.lease.count()) / 4;
        hand_off_limit_.store(std::clamp<int64_t>(static_cast<int64_t>(per_s * quarter_lease),
                                                  hand_off_floor_, 200000));
      }
      rate_at_ = now;
      rate_recorded_ = recorded;
      // Donations whose confirmation window passed: recorded expired, never charged.
      int64_t expired = 0;
      if (lane.store->ExpireConfirmations(&expired).ok() && expired > 0) {
        Logger("charging")->info("event=confirmations_expired count={}", expired);
      }
      int64_t unknown = 0;
      if (metrics_ && lane.store->CountUnknownCharges(&unknown).ok()) {
        metrics_->charges_unknown_outstanding().Set(static_cast<double>(unknown));
      }
    }
    // Saturation is noted where work starts (NoteLimitHeldBack); here, right after recording
    // a batch, half the slots may be free, which says nothing about the period.
    if (lane.limit) lane.concurrency = lane.limit->Update(Clock::now());
    lane.concurrency_seen.store(lane.concurrency);
    bool claimed_full = false;
    // Acks first (charge_yield_ingest_backlog): while MOs wait for their commit, start work at
    // most once per yield floor, handed over or claimed.
    const bool yield = lane.priority->ShouldYield();
    if (metrics_ && yield) metrics_->charging_yields().Increment();
    // Donations handed over by the ingest first: they cost no claim.
    if (!yield && StartHanded(lane) > 0 && lane.inflight.load() >= lane.concurrency) {
      NoteLimitHeldBack(lane);
      std::unique_lock<std::mutex> lock(lane.mu);
      lane.cv.wait_for(lock, options_.poll_interval,
                       [&] { return !lane.done.empty() || stopping_.load(); });
      continue;
    }
    // Claim when there is room for a worthwhile batch (or nothing is running at all).
    const int64_t room = lane.concurrency - lane.inflight.load();
    const int64_t worthwhile =
        std::max<int64_t>(1, std::min<int64_t>(options_.batch_size, lane.concurrency) / 4);
    const auto now = Clock::now();
    const bool claim_due = lane.backlog_seen || now >= lane.next_store_claim ||
                           lane.store_work_signalled.load();
    if (!paused_.load() && !yield && claim_due &&
        (room >= worthwhile || (room > 0 && lane.inflight.load() == 0))) {
      lane.store_work_signalled.store(false);
      lane.next_store_claim = now + options_.poll_interval;
      int64_t before = lane.inflight.load();
      const int asked = ClaimAndStart(lane);
      const int64_t claimed = lane.inflight.load() - before;
      lane.backlog_seen = claimed > 0 && claimed >= asked;
      claimed_full = lane.backlog_seen && lane.inflight.load() < lane.concurrency;
    }
    if (claimed_full) continue;  // more may be waiting: claim again at once
    if (!yield) NoteLimitHeldBack(lane);
    std::unique_lock<std::mutex> lock(lane.mu);
    lane.cv.wait_for(lock, options_.poll_interval, [&] {
      return !lane.done.empty() || lane.notified || stopping_.load() ||
             (!lane.handed.empty() && lane.inflight.load() < lane.concurrency);
    });
    lane.notified = false;
  }
  ReleaseHanded(lane);
  // Whatever is still in flight keeps its lease; it becomes claimable when the lease expires
  // (the charger's keys make the resumed charge idempotent).
  RecordPending(lane);
  if (lane.inflight.load() > 0) {
    spdlog::warn("charging: stopping with {} donations in flight; their leases will expire and "
                 "they resume on the next claim", lane.inflight.load());
  }
}

void ChargingWorker::NoteLimitHeldBack(Lane& lane) {
  if (!lane.limit || paused_.load()) return;
  // (Nearly) every slot busy and work waiting: handed over, or left in the database by a full
  // claim. "Nearly": with a slow backend charges finish all the time, so a few slots are free
  // at any instant although the limit, not the work, sets the rate.
  bool waiting;
  {
    std::lock_guard<std::mutex> lock(lane.mu);
    waiting = !lane.handed.empty();
  }
  if ((waiting || lane.backlog_seen) && lane.inflight.load() * 4 >= lane.concurrency * 3) {
    lane.limit->NoteSaturated();
  }
}

int ChargingWorker::ClaimAndStart(Lane& lane) {
  const int64_t room = lane.concurrency - lane.inflight.load();
  // While the previous claim came back full the backlog is in the database: claim what there is
  // room for. Each claim (and the daily-cap decision riding in it) costs a round trip and a
  // commit, and with a slow backend this thread also records a batch of outcomes between two
  // claims, so batch_size per round capped a 200 ms backend at ~1,000 charges/s whatever the
  // limit (docs/performance.md, "200 ms charging latency").
  const int64_t per_claim = lane.backlog_seen ? kClaimGrowth * options_.batch_size : options_.batch_size;
  const int limit = static_cast<int>(std::min<int64_t>(per_claim, room));
  if (limit <= 0) return 0;
  std::vector<billing::DonationWork> work;
  billing::StoreStatus s =
      lane.store->ClaimDonations(limit, options_.lease, chargers_.Operators(), &work);
  if (!s.ok()) {
    if (metrics_) metrics_->StoreError(s);
    spdlog::warn("charging: claim failed: {}", s.ToString());
    std::unique_lock<std::mutex> lock(lane.mu);
    lane.cv.wait_for(lock, options_.store_retry, [&] { return stopping_.load(); });
    return 0;
  }
  ReportTakeovers(work);
  StartWork(lane, std::move(work));
  return limit;
}

void ChargingWorker::ReportTakeovers(const std::vector<billing::DonationWork>& work) {
  // Per previous owner: how many, and how many were mid-charge (resumed with Status first).
  std::map<std::string, std::pair<int64_t, int64_t>> by_owner;
  for (const billing::DonationWork& w : work) {
    if (w.previous_owner.empty() || w.previous_owner == options_.store_options.instance_id) continue;
    auto& [count, mid_charge] = by_owner[w.previous_owner];
    ++count;
    if (w.previous_state != billing::DonationState::kReceived) ++mid_charge;
  }
  static const auto log = Logger("charging");
  for (const auto& [owner, counts] : by_owner) {
    if (metrics_) metrics_->donations_taken_over().Increment(static_cast<double>(counts.first));
    log->warn("event=takeover from_instance={} donations={} mid_charge={} {}", Quote(owner), counts.first,
              counts.second, Kv("effect", "its lease expired; resumed here with the same keys (Status first)"));
  }
}

void ChargingWorker::StartWork(Lane& lane, std::vector<billing::DonationWork> work) {
  for (billing::DonationWork& w : work) {
    lane.inflight.fetch_add(1);
    billing::DonationCharger* charger = chargers_.ForOperator(w.operator_name);
    if (w.over_daily_cap || charger == nullptr) {
      Done d;
      d.over_cap = w.over_daily_cap;
      if (!charger && !w.over_daily_cap) {
        d.outcome.state = billing::DonationChargeState::kDeferred;
        d.outcome.detail = "no charging backend for operator " + w.operator_name;
      }
      d.work = std::move(w);
      Complete(lane, std::move(d));
      continue;
    }
    billing::DonationChargeInput input;
    input.donation_id = w.donation_id;
    input.campaign = w.campaign;
    input.operator_name = w.operator_name;
    input.msisdn = w.msisdn;
    input.units = w.units;
    input.unit_price_vnd = w.unit_price_vnd;
    input.amount_vnd = w.amount_vnd;
    input.mode = w.charging_mode;
    for (const billing::StoredCharge& c : w.charges) input.known_charges.push_back(ToChargeRecord(c));
    auto shared_work = std::make_shared<billing::DonationWork>(std::move(w));
    Lane* l = &lane;
    const auto started = Clock::now();
    charger->ChargeDonation(std::move(input), [this, l, shared_work, started](billing::DonationChargeOutcome o) {
      Done d;
      d.latency = Clock::now() - started;
      d.work = std::move(*shared_work);
      d.outcome = std::move(o);
      Complete(*l, std::move(d));
    });
  }
}

std::optional<billing::ReplyDraft> ChargingWorker::BuildReply(
    const billing::DonationWork& work, const billing::DonationChargeOutcome& outcome,
    bool over_cap) const {
  static const config::Campaign kDefaultCampaign{};
  auto it = campaigns_.find(work.campaign);
  const config::Campaign& campaign = it != campaigns_.end() ? *it->second : kDefaultCampaign;
  billing::ReplyValues values = billing::CampaignReplyValues(campaign);
  // The donation's own facts win over the (possibly since edited) campaign config.
  values.campaign = work.campaign;
  values.shortcode = work.shortcode;
  values.unit_price_vnd = work.unit_price_vnd;
  const std::string ref = billing::WholeChargeKey(work.donation_id);
  values.ref = ref;
  values.units = work.units;
  values.charged_units = outcome.charged_units;
  values.missing_units = work.units - outcome.charged_units;
  values.amount_vnd = work.amount_vnd;
  billing::ReplyKind kind = billing::ReplyKind::kFailed;
  if (over_cap) {
    kind = billing::ReplyKind::kDailyCap;
    values.charged_units = 0;
    values.missing_units = work.units;
  } else {
    switch (outcome.state) {
      case billing::DonationChargeState::kCharged:
        kind = billing::ReplyKind::kSuccess;
        values.amount_vnd = outcome.charged_amount_vnd;
        break;
      case billing::DonationChargeState::kPartiallyCharged:
        kind = billing::ReplyKind::kPartial;
        values.amount_vnd = outcome.charged_amount_vnd;
        break;
      case billing::DonationChargeState::kFailed:
        kind = outcome.failure_reason == billing::ChargeFailureReason::kInsufficientFunds
                   ? billing::ReplyKind::kInsufficient
                   : billing::ReplyKind::kFailed;
        break;
      case billing::DonationChargeState::kUnknown:
      case billing::DonationChargeState::kDeferred:
        return std::nullopt;  // not final: the subscriber hears from us once it is
    }
  }
  billing::ReplyDraft reply;
  reply.purpose = std::string(billing::ToString(kind));
  reply.source_addr = work.shortcode;
  reply.dest_addr = work.msisdn;
  reply.text = billing::RenderReply(billing::TemplateFor(*TemplatesFor(campaign), kind), values);
  return reply;
}

billing::ChargeOutcomeRecord ChargingWorker::BuildRecord(const Done& done) const {
  const auto now = billing::StoreClock::now();
  billing::ChargeOutcomeRecord r;
  r.donation_id = done.work.donation_id;
  if (done.over_cap) {
    r.new_state = billing::DonationState::kFailed;
    r.reason = "daily_cap";
    r.reply = BuildReply(done.work, done.outcome, true);
    if (r.reply && options_.reply_accepts && options_.reply_accepts()) r.reply->claim_lease = options_.reply_lease;
    return r;
  }
  for (const billing::ChargeRecord& c : done.outcome.charges) {
    if (c.changed) r.charges.push_back(ToStoredCharge(c));
  }
  switch (done.outcome.state) {
    case billing::DonationChargeState::kCharged:
      r.new_state = billing::DonationState::kCharged;
      break;
    case billing::DonationChargeState::kPartiallyCharged:
      r.new_state = billing::DonationState::kPartiallyCharged;
      r.reason = std::string(billing::ToString(done.outcome.failure_reason));
      break;
    case billing::DonationChargeState::kFailed:
      r.new_state = billing::DonationState::kFailed;
      r.reason = std::string(billing::ToString(done.outcome.failure_reason));
      if (!done.outcome.detail.empty()) r.reason += ": " + done.outcome.detail;
      break;
    case billing::DonationChargeState::kUnknown:
      r.new_state = billing::DonationState::kUnknown;
      r.reason = done.outcome.detail.empty() ? "unresolved charge" : done.outcome.detail;
      r.next_attempt_at = now + options_.unknown_retry;
      break;
    case billing::DonationChargeState::kDeferred:
      r.new_state = billing::DonationState::kReceived;
      r.reason = done.outcome.detail.empty() ? "charging deferred" : done.outcome.detail;
      r.next_attempt_at = now + options_.deferred_retry;
      break;
  }
  r.reply = BuildReply(done.work, done.outcome, false);
  if (r.reply && options_.reply_accepts && options_.reply_accepts()) r.reply->claim_lease = options_.reply_lease;
  return r;
}

void ChargingWorker::RecordPending(Lane& lane) {
  std::deque<Done> batch;
  {
    std::lock_guard<std::mutex> lock(lane.mu);
    batch.swap(lane.done);
  }
  if (batch.empty()) return;
  if (lane.limit) {
    for (const Done& d : batch)
      if (d.latency.count() > 0) lane.limit->OnSample(d.latency);
  }
  std::vector<billing::ChargeOutcomeRecord> records;
  records.reserve(batch.size());
  for (const Done& d : batch) records.push_back(BuildRecord(d));
  std::vector<billing::RecordResult> results;
  billing::StoreStatus s = lane.store->RecordChargeOutcomes(records, &results);
  if (!s.ok()) {
    if (metrics_) metrics_->StoreError(s);
    spdlog::warn("charging: recording {} outcomes failed ({}); will retry", records.size(),
                 s.ToString());
    {
      std::lock_guard<std::mutex> lock(lane.mu);
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) lane.done.push_front(std::move(*it));
    }
    const auto drain_deadline = Clock::time_point(Clock::duration(drain_deadline_ns_.load()));
    if (!stopping_.load() || Clock::now() < drain_deadline) {
      std::unique_lock<std::mutex> lock(lane.mu);
      lane.cv.wait_for(lock, options_.store_retry, [&] {
        return stopping_.load() &&
               Clock::now() >= Clock::time_point(Clock::duration(drain_deadline_ns_.load()));
      });
    }
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    const Done& d = batch[i];
    const billing::RecordResult* result = i < results.size() ? &results[i] : nullptr;
    if (result && result->refused) {
      spdlog::error("charging: outcome for donation {} refused by the store: {}", d.work.donation_id,
                    result->message);
    }
    if (metrics_ && result && !result->refused && result->reply_id != 0) {
      metrics_->handoffs(1, result->reply_claimed).Increment();
    }
    if (result && !result->refused && result->reply_claimed && result->reply_id != 0 &&
        records[i].reply && options_.reply_hand_off) {
      billing::OutboxReply reply;
      reply.id = result->reply_id;
      reply.donation_id = d.work.donation_id;
      reply.inbound_message_id = d.work.inbound_message_id;
      reply.purpose = records[i].reply->purpose;
      reply.operator_name = d.work.operator_name;
      reply.link = records[i].reply->link;
      reply.source_addr = records[i].reply->source_addr;
      reply.dest_addr = records[i].reply->dest_addr;
      reply.text = records[i].reply->text;
      reply.attempts = 1;
      reply.created_at = billing::StoreClock::now();
      options_.reply_hand_off(std::move(reply));
    }
    if (metrics_ && !(result && result->refused)) {
      auto& counters = metrics_->ForCampaign(d.work.campaign, d.work.operator_name);
      const billing::DonationState state = records[i].new_state;
      if (billing::IsFinal(state) || state == billing::DonationState::kUnknown) {
        counters.Entered(state);
      }
      int64_t units = 0, vnd = 0;
      for (const billing::StoredCharge& c : records[i].charges) {
        if (c.outcome == billing::ChargeOutcome::kCharged) {
          units += c.units;
          vnd += c.amount_vnd;
        }
      }
      if (units > 0) counters.Charged(units, vnd);
    }
  }
  recorded_.fetch_add(batch.size());
  lane.inflight.fetch_sub(static_cast<int64_t>(batch.size()));
}

}  // namespace donagate::daemon
