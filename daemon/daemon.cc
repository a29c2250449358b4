#include "daemon/daemon.h"

#include "daemon/reply_templates.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <prometheus/registry.h>

#include "billing/store/migrate.h"
#include "billing/store/store.h"
#include "daemon/admin.h"
#include "daemon/charging_worker.h"
#include "daemon/health.h"
#include "daemon/http_server.h"
#include "daemon/ingest_writer.h"
#include "daemon/link_manager.h"
#include "daemon/logging.h"
#include "daemon/metrics.h"
#include "daemon/pipeline.h"
#include "daemon/reply_sender.h"

namespace donagate::daemon {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

class Daemon final : public AdminActions {
 public:
  Daemon(const config::Config& config, std::string config_path)
      : config_(config), config_path_(std::move(config_path)) {}
  int Run();

  // AdminActions
  AdminResult PauseCharging() override {
    if (!charging_) return AdminResult::Of(AdminResult::Code::kUnavailable, "starting");
    charging_->SetPaused(true);
    return AdminResult::Ok("charging paused; receiving and recording continue");
  }
  AdminResult ResumeCharging() override {
    if (!charging_) return AdminResult::Of(AdminResult::Code::kUnavailable, "starting");
    charging_->SetPaused(false);
    return AdminResult::Ok("charging resumed");
  }
  AdminResult StopLink(std::string_view name) override {
    auto link = links_ ? links_->Find(name) : nullptr;
    if (!link) return AdminResult::Of(AdminResult::Code::kNotFound, "no link " + std::string(name));
    link->Stop(milliseconds(2000), [] {});
    return AdminResult::Ok("stopping link " + std::string(name));
  }
  AdminResult StartLink(std::string_view name) override {
    auto link = links_ ? links_->Find(name) : nullptr;
    if (!link) return AdminResult::Of(AdminResult::Code::kNotFound, "no link " + std::string(name));
    link->Start();
    return AdminResult::Ok("starting link " + std::string(name));
  }
  AdminResult ReloadTemplates() override {
    std::string message;
    if (!ReloadTemplatesFromFile(config_path_, config_, &message)) {
      return AdminResult::Of(AdminResult::Code::kInvalid, message);
    }
    return AdminResult::Ok(message + " (replies already queued keep their text)");
  }
  std::vector<LinkStatus> Links() override {
    return links_ ? links_->Statuses() : std::vector<LinkStatus>{};
  }

 private:
  StatusSnapshot Status();
  void HealthLoop();
  void ScheduleHousekeeping();

  const config::Config& config_;
  const std::string config_path_;
  boost::asio::io_context io_;
  prometheus::Registry registry_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<IngestWriter> writer_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<ChargerSet> chargers_;
  std::unique_ptr<ChargingWorker> charging_;
  std::unique_ptr<ReplySender> replies_;
  std::unique_ptr<LinkManager> links_;
  std::unique_ptr<HealthMonitor> health_;
  std::unique_ptr<DbServerTracker> db_server_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<boost::asio::steady_timer> housekeeping_;
  std::chrono::system_clock::time_point started_at_ = std::chrono::system_clock::now();

  std::mutex health_mu_;
  std::condition_variable health_cv_;
  bool health_stop_ = false;
  std::atomic<int64_t> unknown_charges_{0};
  std::atomic<int64_t> donations_waiting_{0};
  std::atomic<int64_t> outbox_backlog_{0};
  int64_t run_id_ = 0;  // instance_run row of this run (set before the health loop starts)
};

StatusSnapshot Daemon::Status() {
  StatusSnapshot s;
  s.version = DONAGATE_VERSION;
  s.started_at = started_at_;
  s.instance_id = config_.pipeline.instance_id;
  s.charging_paused = charging_ && charging_->paused();
  if (links_) s.links = links_->Statuses();
  s.queues["ingest_inflight"] = writer_ ? writer_->inflight() : 0;
  s.queues["concat_parts_pending"] = pipeline_ ? static_cast<int64_t>(pipeline_->pending_concat_parts()) : 0;
  s.queues["charging_inflight"] = charging_ ? charging_->inflight() : 0;
  s.queues["replies_inflight"] = replies_ ? replies_->inflight() : 0;
  s.queues["donations_waiting"] = donations_waiting_.load();
  s.queues["outbox_backlog"] = outbox_backlog_.load();
  s.unknown_charges = unknown_charges_.load();
  if (health_) s.readiness = health_->Evaluate();
  if (db_server_) s.database = db_server_->Snapshot();
  return s;
}

// Keeps /readyz and /status facts fresh from a connection of its own (never on an I/O thread).
void Daemon::HealthLoop() {
  billing::StoreOptions o;
  o.instance_id = config_.pipeline.instance_id;
  o.application_name = "donagated-health";
  o.connect_timeout_s = config_.database.connect_timeout_s;
  o.statement_timeout_ms = 400;
  o.on_connect = db_server_->Hook(o.application_name);
  billing::Store store(config_.database.conninfo.Reveal(), o);
  // The write probe runs every 200 ms so /readyz turns 503 within half a second of the
  // database going away or refusing writes (read-only, disk full); the counts for /status
  // every 2 s. The probe is the run's heartbeat too (Store::TouchRun: last_alive_at).
  constexpr auto kProbeInterval = milliseconds(200);
  constexpr int kProbesPerCount = 10;
  for (int round = 0;; ++round) {
    billing::StoreStatus probe = run_id_ != 0 ? store.TouchRun(run_id_) : store.Ping();
    std::string reason;
    if (!probe.ok()) {
      reason = (probe.sqlstate() == "25006"   ? "database refuses writes (read-only or a standby): "
                : probe.sqlstate() == "01000" ? "database cannot confirm writes (no synchronous standby): "
                                              : "database write probe failed: ") +
               probe.message();
    } else if (!writer_->healthy()) {
      reason = "database unavailable to ingest (reconnecting)";
    } else if (writer_->failing()) {
      reason = "ingest commits are failing (see the store errors in the log)";
    } else if (writer_->held_in_doubt() > 0) {
      reason = std::to_string(writer_->held_in_doubt()) + " MOs held: commit outcome in doubt";
    }
    health_->SetDatabase(reason.empty(), reason);
    if (probe.ok() && round % kProbesPerCount == 0) {
      int version = 0;
      if (store.CurrentSchemaVersion(&version).ok()) {
        const int expected = billing::ExpectedSchemaVersion();
        health_->SetMigrations(version == expected,
                               version == expected ? "" : "schema version " + std::to_string(version) +
                                                              ", binary expects " + std::to_string(expected));
      }
      int64_t n = 0;
      if (store.CountUnknownCharges(&n).ok()) unknown_charges_.store(n);
      if (store.CountOutboxBacklog(&n).ok()) outbox_backlog_.store(n);
      std::map<std::string, int64_t> by_state;
      if (store.CountDonationsByState(&by_state).ok()) {
        donations_waiting_.store(by_state["received"] + by_state["charging"] + by_state["unknown"]);
      }
    }
    std::unique_lock<std::mutex> lock(health_mu_);
    if (health_cv_.wait_for(lock, kProbeInterval, [&] { return health_stop_; })) return;
  }
}

void Daemon::ScheduleHousekeeping() {
  housekeeping_->expires_after(seconds(1));
  housekeeping_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    pipeline_->ExpireConcatenated(std::chrono::system_clock::now());
    ScheduleHousekeeping();
  });
}

int Daemon::Run() {
  auto log = Logger("main");
  const std::string conninfo = config_.database.conninfo.Reveal();
  metrics_ = std::make_unique<Metrics>(registry_, DONAGATE_VERSION);
  db_server_ = std::make_unique<DbServerTracker>(metrics_.get());

  if (config_.database.run_migrations_on_start) {
    billing::MigrateReport report;
    billing::StoreStatus s;
    auto deadline = Clock::now() + seconds(30);
    for (;;) {
      s = billing::Migrate(conninfo, &report);
      if (s.ok() || s.permanent() || Clock::now() >= deadline) break;
      log->warn("event=migrate_retry {}", Kv("reason", s.message()));
      std::this_thread::sleep_for(seconds(1));
    }
    if (!s.ok()) {
      log->critical("event=migrate_failed {}", Kv("reason", s.ToString()));
      return 1;
    }
    log->info("event=migrated from={} to={} applied={}", report.from_version, report.to_version,
              report.applied.size());
  }

  std::set<std::string> blocklist;
  if (!config_.pipeline.blocklist_file.empty()) {
    std::string error;
    if (!LoadBlocklist(config_.pipeline.blocklist_file, &blocklist, &error)) {
      log->critical("event=blocklist_failed {}", Kv("reason", error));
      return 1;
    }
    log->info("event=blocklist_loaded entries={}", blocklist.size());
  }

  billing::StoreOptions store_options;
  store_options.instance_id = config_.pipeline.instance_id;
  store_options.connect_timeout_s = config_.database.connect_timeout_s;
  store_options.statement_timeout_ms = config_.database.statement_timeout_ms;

  // Connections: ingest gets most of the pool; the charging worker, reply sender and health
  // loop one each.
  IngestWriterOptions wo;
  wo.conninfo = conninfo;
  wo.store_options = store_options;
  wo.store_options.application_name = "donagated-ingest";
  wo.store_options.on_connect = db_server_->Hook("donagated-ingest");
  wo.threads = std::max(1, config_.database.pool_size - 2);
  wo.batch_size = config_.database.batch_size;
  wo.linger = milliseconds(config_.database.batch_linger_ms);
  wo.max_inflight = config_.pipeline.max_inflight;
  writer_ = std::make_unique<IngestWriter>(io_.get_executor(), wo, metrics_.get());
  pipeline_ = std::make_unique<Pipeline>(config_, *writer_, metrics_.get(), std::move(blocklist));
  writer_->Start();

  {
    billing::StoreOptions recover_options = store_options;
    recover_options.on_connect = db_server_->Hook("donagated-recover");
    billing::Store store(conninfo, recover_options);
    billing::StoreStatus s;
    auto deadline = Clock::now() + seconds(30);
    while (!(s = pipeline_->RecoverFromStore(store)).ok() && s.transient() && Clock::now() < deadline) {
      log->warn("event=recover_retry {}", Kv("reason", s.message()));
      std::this_thread::sleep_for(seconds(1));
    }
    // This run, and what an unclean end of the previous ones may have left unacknowledged.
    std::vector<billing::UncertainMo> uncertain;
    while (s.ok() &&
           !(s = store.BeginRun(seconds(config_.pipeline.ack_horizon_s),
                                seconds(config_.pipeline.redelivery_window_s), &run_id_, &uncertain))
                .ok() &&
           s.transient() && Clock::now() < deadline) {
      log->warn("event=begin_run_retry {}", Kv("reason", s.message()));
      std::this_thread::sleep_for(seconds(1));
    }
    if (!s.ok()) {
      log->critical("event=recover_failed {}", Kv("reason", s.ToString()));
      writer_->Stop();
      return 1;
    }
    pipeline_->AddUncertain(uncertain);
    log->info("event=run_started run={} uncertain_mos={}", run_id_, uncertain.size());
  }

  std::string error;
  chargers_ = ChargerSet::Create(io_.get_executor(), config_, metrics_.get(), &error);
  if (!chargers_) {
    log->critical("event=charging_failed {}", Kv("reason", error));
    writer_->Stop();
    return 1;
  }
  ChargingWorkerOptions co;
  co.conninfo = conninfo;
  co.store_options = store_options;
  co.store_options.application_name = "donagated-charging";
  co.store_options.on_connect = db_server_->Hook("donagated-charging");
  co.batch_size = config_.pipeline.charge_batch_size;
  co.concurrency = config_.pipeline.charge_concurrency;
  if (co.concurrency == 0) {
    // Adaptive, up to what the operators' backends allow in flight together.
    int64_t ceiling = 0;
    for (const config::ChargingBackendConfig& c : config_.charging) ceiling += c.max_concurrency;
    co.adaptive = true;
    co.concurrency = static_cast<int>(std::clamp<int64_t>(ceiling, 8, 10000));
    co.initial_concurrency = std::min(32, co.concurrency);
  }
  co.threads = config_.pipeline.charge_workers;
  if (config_.pipeline.charge_yield_ingest_backlog > 0) {
    const int64_t backlog = config_.pipeline.charge_yield_ingest_backlog;
    co.ingest_busy = [this, backlog] { return writer_->inflight() > backlog; };
  }
  co.lease = seconds(config_.pipeline.charge_lease_s);
  co.poll_interval = milliseconds(config_.pipeline.poll_interval_ms);
  co.start_paused = config_.pipeline.start_charging_paused;
  // Thank-yous go to the reply sender in memory (created below, before either starts).
  co.reply_accepts = [this] { return replies_ && replies_->AcceptsHandOff(); };
  co.reply_hand_off = [this](billing::OutboxReply r) { replies_->HandOff(std::move(r)); };
  co.reply_lease = seconds(config_.pipeline.charge_lease_s);
  charging_ = std::make_unique<ChargingWorker>(config_, *chargers_, co, metrics_.get());
  pipeline_->SetDonationsCommittedHook([this] { charging_->Notify(); });

  links_ = std::make_unique<LinkManager>(io_.get_executor(), registry_, *pipeline_);
  for (const config::SmscLink& l : config_.links) {
    if (!links_->AddFromConfig(l, &error)) {
      log->critical("event=link_failed link={} {}", l.name, Kv("reason", error));
      writer_->Stop();
      return 1;
    }
  }

  ReplySenderOptions ro;
  ro.conninfo = conninfo;
  ro.store_options = store_options;
  ro.store_options.application_name = "donagated-replies";
  ro.store_options.on_connect = db_server_->Hook("donagated-replies");
  ro.batch_size = config_.pipeline.reply_batch_size;
  ro.max_inflight = config_.pipeline.reply_max_inflight;
  ro.ingest_busy = co.ingest_busy;
  ro.poll_interval = milliseconds(config_.pipeline.poll_interval_ms);
  ro.lease = seconds(config_.pipeline.charge_lease_s);
  ro.pending_receipt_max_age = seconds(config_.pipeline.pending_receipt_max_age_s);  // a crashed sender's claims come back as fast
  replies_ = std::make_unique<ReplySender>(io_.get_executor(), config_, *links_, ro, metrics_.get());

  // One pass through the data path: a committed donation goes to the charging worker and a
  // committed help reply to the reply sender in memory; the claims only recover work.
  Pipeline::HandOff hand_off;
  hand_off.donation_lease = [this](const std::string& op) {
    return charging_->AcceptsHandOff(op) ? charging_->lease() : seconds(0);
  };
  hand_off.donation = [this](billing::DonationWork w) { charging_->HandOff(std::move(w)); };
  hand_off.reply_lease = [this] { return replies_->AcceptsHandOff() ? replies_->lease() : seconds(0); };
  hand_off.reply = [this](billing::OutboxReply r) { replies_->HandOff(std::move(r)); };
  pipeline_->SetHandOff(std::move(hand_off));

  health_ = std::make_unique<HealthMonitor>([this] {
    int bound = 0;
    for (const auto& l : links_->links()) bound += l->CanTransmit() ? 1 : 0;
    return bound > 0 ? bound : (links_->AnyBound() ? 1 : 0);
  });
  std::thread health_thread([this] { HealthLoop(); });

  HttpServerOptions ho;
  ho.listen = config_.http.listen;
  ho.admin_enabled = config_.admin.enabled;
  ho.admin_listen = config_.admin.listen;
  ho.admin_token = config_.admin.token.Reveal();
  HttpServerHandlers hh;
  hh.registry = &registry_;
  hh.readiness = health_->Probe();
  hh.status = [this] { return Status(); };
  hh.admin = this;
  hh.metrics = metrics_.get();
  http_ = std::make_unique<HttpServer>(io_, ho, hh);

  auto stop_health = [&] {
    {
      std::lock_guard<std::mutex> lock(health_mu_);
      health_stop_ = true;
    }
    health_cv_.notify_all();
    if (health_thread.joinable()) health_thread.join();
  };
  if (!http_->Start(&error)) {
    log->critical("event=http_failed {}", Kv("reason", error));
    stop_health();
    writer_->Stop();
    return 1;
  }

  charging_->Start();
  replies_->Start();
  housekeeping_ = std::make_unique<boost::asio::steady_timer>(io_);
  ScheduleHousekeeping();

  // Signals: handled on the io_context; the stop sequence itself runs on this thread.
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop_requested = false;
  boost::asio::signal_set stop_signals(io_, SIGTERM, SIGINT);
  std::function<void(const boost::system::error_code&, int)> on_stop =
      [&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        log->info("event=signal signal={} action=stop", signo);
        {
          std::lock_guard<std::mutex> lock(stop_mu);
          stop_requested = true;
        }
        stop_cv.notify_all();
      };
  stop_signals.async_wait(on_stop);
  boost::asio::signal_set hup(io_, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_hup =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        ReopenLogFiles();
        log->info("event=logs_reopened");
        hup.async_wait(on_hup);
      };
  hup.async_wait(on_hup);

  const int io_threads = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 2, 4);
  std::vector<std::thread> pool;
  auto work = boost::asio::make_work_guard(io_);
  for (int i = 0; i < io_threads; ++i) pool.emplace_back([this] { io_.run(); });

  links_->StartAll();
  log->info("event=started instance={} links={} campaigns={} http={}", config_.pipeline.instance_id,
            config_.links.size(), config_.campaigns.size(), config_.http.listen);

  {
    std::unique_lock<std::mutex> lock(stop_mu);
    stop_cv.wait(lock, [&] { return stop_requested; });
  }

  // Graceful stop. New MOs: temporary error. Then let replies and charges in flight finish
  // while links are still bound, unbind, and commit what the writer still holds.
  log->info("event=stopping");
  pipeline_->SetAccepting(false);
  replies_->Stop(milliseconds(3000));
  charging_->Stop(milliseconds(5000));
  bool clean = true;
  if (!links_->StopAllAndWait(milliseconds(2000), milliseconds(6000))) {
    log->warn("event=links_not_closed_in_time");
    clean = false;
  }
  writer_->Stop();
  if (writer_->unresolved_at_stop() > 0) clean = false;
  if (clean) {
    // Every committed MO was answered: the next start has nothing to suspect.
    billing::StoreOptions o = store_options;
    o.application_name = "donagated-stop";
    billing::Store store(conninfo, o);
    billing::StoreStatus s = store.EndRun(run_id_);
    if (!s.ok()) log->warn("event=end_run_failed {}", Kv("reason", s.message()));
  } else {
    log->warn("event=stop_not_clean reason=\"answers may be missing; the next start treats this run as crashed\"");
  }
  http_->Stop();
  stop_health();
  boost::system::error_code ignored;
  stop_signals.cancel(ignored);
  hup.cancel(ignored);
  housekeeping_->cancel();
  work.reset();
  io_.stop();
  for (auto& t : pool) t.join();
  log->info("event=stopped");
  FlushLogs();
  return 0;
}

}  // namespace

int RunDaemon(const config::Config& config, const std::string& config_path) {
  std::string error;
  if (!SetupLogging(config.log, &error)) {
    fprintf(stderr, "donagated: %s\n", error.c_str());
    return 1;
  }
  Daemon daemon(config, config_path);
  return daemon.Run();
}

}  // namespace donagate::daemon
