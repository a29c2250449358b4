// Client mode: reconnects, backoff, refused binds, the receiver + transmitter pair, and a run
// against the smsc_sim program (a separate process over loopback TCP).
#include "daemon/smpp_client_link.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/common/test_env.h"
#include "tests/daemon/smpp_test_peer.h"

namespace donagate::daemon {
namespace {

using namespace donagate::daemon::testing;
using smpp::CommandId;
namespace st = smpp::status;

TEST(BackoffDelayTest, GrowsExponentiallyWithJitterWithinBounds) {
  std::mt19937_64 rng(7);
  for (int attempt = 0; attempt < 12; ++attempt) {
    for (int i = 0; i < 50; ++i) {
      Millis d = BackoffDelay(attempt, Millis(1000), Millis(60000), rng);
      const int64_t base = std::min<int64_t>(60000, 1000LL << attempt);
      EXPECT_GE(d.count(), std::max<int64_t>(1000, base / 2)) << "attempt " << attempt;
      EXPECT_LE(d.count(), base) << "attempt " << attempt;
    }
  }
  // Jitter: not every delay of one attempt is the same.
  std::set<int64_t> seen;
  for (int i = 0; i < 20; ++i) seen.insert(BackoffDelay(5, Millis(1000), Millis(60000), rng).count());
  EXPECT_GT(seen.size(), 5u);
}

class ClientLinkTest : public ::testing::Test {
 protected:
  ClientLinkOptions Options(int port) {
    ClientLinkOptions o;
    o.session.link_name = "opa";
    o.session.operator_name = "operator_a";
    o.session.system_id = "opa";
    o.session.password = "secret";
    o.session.enquire_link_interval = 60s;
    o.session.response_timeout = 1000ms;
    o.session.unbind_timeout = 300ms;
    o.host = "127.0.0.1";
    o.port = static_cast<uint16_t>(port);
    o.backoff_min = 100ms;
    o.backoff_max = 800ms;
    return o;
  }
  void Create(ClientLinkOptions o) {
    metrics_ = std::make_shared<LinkMetrics>(registry_, o.session.link_name);
    link_ = SmppClientLink::Create(io_.executor(), std::move(o), &handler_, metrics_);
  }
  void TearDown() override {
    if (!link_) return;
    auto stopped = std::make_shared<std::promise<void>>();
    link_->Stop(200ms, [stopped] { stopped->set_value(); });
    EXPECT_EQ(stopped->get_future().wait_for(5s), std::future_status::ready);
  }
  std::string Metrics() { return prometheus::TextSerializer().Serialize(registry_.Collect()); }

  IoThreads io_;
  RecordingHandler handler_;
  prometheus::Registry registry_;
  std::shared_ptr<LinkMetrics> metrics_;
  std::shared_ptr<SmppClientLink> link_;
};

TEST_F(ClientLinkTest, ReconnectsWithGrowingBackoffWhileTheSmscIsDown) {
  TestPeer smsc;
  const int port = smsc.Listen();
  Create(Options(port));
  link_->Start();
  // Each accepted connection is dropped at once; record when the attempts arrive.
  std::vector<std::chrono::steady_clock::time_point> attempts;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(smsc.Accept(5s));
    attempts.push_back(std::chrono::steady_clock::now());
    smsc.CloseConnection();
  }
  // 100 ms min, doubling, upper half jitter: gaps >= 50, 100, 200 ms (after the first connect).
  EXPECT_GE(attempts[2] - attempts[1], 90ms);
  EXPECT_GE(attempts[3] - attempts[2], 190ms);
  EXPECT_NE(Metrics().find("donagate_link_reconnects_total{link=\"opa\"} 3"), std::string::npos)
      << Metrics();
  EXPECT_EQ(metrics_->up(), 0);
  // When the SMSC comes back the link binds and the backoff resets.
  ASSERT_TRUE(smsc.Accept(5s));
  ASSERT_TRUE(smsc.AnswerBind());
  ASSERT_TRUE(WaitUntil([&] { return link_->CanTransmit(); }));
  EXPECT_EQ(metrics_->up(), 1);
}

TEST_F(ClientLinkTest, RefusedBindIsRetriedOnlyAtTheMaximumBackoff) {
  TestPeer smsc;
  const int port = smsc.Listen();
  Create(Options(port));  // max backoff 800 ms
  link_->Start();
  ASSERT_TRUE(smsc.Accept());
  auto bind = smsc.AnswerBind(st::kInvPaswd);
  ASSERT_TRUE(bind);
  const auto refused_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitUntil([&] { return link_->Status().state == LinkState::kBindRefused; }));
  EXPECT_NE(link_->Status().last_error.find("ESME_RINVPASWD"), std::string::npos)
      << link_->Status().last_error;
  ASSERT_TRUE(smsc.Accept(5s));
  EXPECT_GE(std::chrono::steady_clock::now() - refused_at, 750ms)
      << "a refused bind must not be retried at the short backoff";
  ASSERT_TRUE(smsc.AnswerBind(st::kOk));
  ASSERT_TRUE(WaitUntil([&] { return link_->CanTransmit(); }));
  EXPECT_NE(Metrics().find("donagate_link_bind_failures_total{link=\"opa\",status=\"ESME_RINVPASWD\"} 1"),
            std::string::npos);
}

TEST_F(ClientLinkTest, ReceiverTransmitterPairBindsTwoConnections) {
  TestPeer listener;
  const int port = listener.Listen();
  auto o = Options(port);
  o.receiver_transmitter_pair = true;
  Create(o);
  link_->Start();
  TestPeer first, second;
  ASSERT_TRUE(listener.Accept());
  auto b1 = listener.AnswerBind();
  ASSERT_TRUE(b1);
  listener.MoveConnectionTo(first);
  ASSERT_TRUE(listener.Accept());
  auto b2 = listener.AnswerBind();
  ASSERT_TRUE(b2);
  listener.MoveConnectionTo(second);
  std::set<CommandId> kinds{b1->header.command_id, b2->header.command_id};
  EXPECT_EQ(kinds, (std::set<CommandId>{CommandId::kBindReceiver, CommandId::kBindTransmitter}));
  TestPeer& rx = b1->header.command_id == CommandId::kBindReceiver ? first : second;
  TestPeer& tx = b1->header.command_id == CommandId::kBindReceiver ? second : first;
  ASSERT_TRUE(WaitUntil([&] { return link_->Status().bound_sessions == 2; }));
  EXPECT_TRUE(link_->CanTransmit());
  EXPECT_EQ(metrics_->up(), 1);
  // MO arrive on the receiver, replies leave on the transmitter.
  rx.Write(MakeDeliverSm(1, "84912345678", "1407", "CV"));
  ASSERT_TRUE(handler_.WaitFor(1));
  handler_.Complete(0, st::kOk);
  auto ack = rx.ReadSkippingEnquire();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->header.command_id, CommandId::kDeliverSmResp);
  link_->Submit(MakeSubmit("84912345678", "Cam on"), [](const SubmitResult&) {});
  auto submit = tx.ReadSkippingEnquire();
  ASSERT_TRUE(submit);
  EXPECT_EQ(submit->header.command_id, CommandId::kSubmitSm);
  // deliver_sm on the transmitter bind is refused: it cannot receive.
  tx.Write(MakeDeliverSm(2, "84912345678", "1407", "CV"));
  auto refused = tx.ReadSkippingEnquire();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->header.command_id, CommandId::kDeliverSmResp);
  EXPECT_EQ(refused->header.command_status, st::kInvBndSts);
  // Losing the receiver takes the link down (up = 0) but the transmitter keeps sending.
  rx.CloseConnection();
  ASSERT_TRUE(WaitUntil([&] { return metrics_->up() == 0; }));
  EXPECT_TRUE(link_->CanTransmit());
}

// Runs the smsc_sim program; returns its pid and the port it listens on.
struct SimProcess {
  pid_t pid = -1;
  int port = 0;
  std::string report;
};

SimProcess StartSim(const std::vector<std::string>& args, const std::string& dir) {
  SimProcess sim;
  sim.report = dir + "/report.json";
  const std::string out = dir + "/sim.out";
  std::vector<std::string> argv = {donagate::testing::BinaryPath("tools/smsc_sim/smsc_sim"),
                                   "--listen", "127.0.0.1:0", "--report", sim.report};
  argv.insert(argv.end(), args.begin(), args.end());
  sim.pid = fork();
  if (sim.pid == 0) {
    FILE* f = std::freopen(out.c_str(), "w", stdout);
    (void)f;
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  WaitUntil([&] {
    std::ifstream in(out);
    std::string word;
    in >> word >> sim.port;
    return sim.port > 0;
  });
  return sim;
}

nlohmann::json StopSim(SimProcess& sim) {
  kill(sim.pid, SIGTERM);
  int status = 0;
  waitpid(sim.pid, &status, 0);
  std::ifstream in(sim.report);
  nlohmann::json report;
  in >> report;
  return report;
}

TEST_F(ClientLinkTest, AgainstSmscSimNothingAcknowledgedIsLostAcrossADroppedConnection) {
  const std::string sim_path = donagate::testing::BinaryPath("tools/smsc_sim/smsc_sim");
  if (!std::filesystem::exists(sim_path)) GTEST_SKIP() << "build smsc_sim first: " << sim_path;
  const std::string dir = donagate::testing::MakeTempDir("client_link_sim");
  SimProcess sim = StartSim({"--system-id", "opa", "--password", "secret", "--mo-count", "200",
                             "--window", "20", "--drop-after-mo", "60", "--redeliver-unacked",
                             "--redeliver-delay-ms", "100", "--receipts", "--receipt-delay-ms",
                             "50", "--enquire-link-interval", "1"},
                            dir);
  ASSERT_GT(sim.port, 0);
  // The "pipeline": acknowledge every other message at once, the rest after a short delay,
  // and remember what was acknowledged.
  struct AckingHandler : InboundHandler {
    std::mutex mu;
    std::set<std::string> acked_sources;
    std::atomic<int> seen{0};
    std::atomic<int> receipts{0};
    void OnMessage(const LinkInfo&, const smpp::Pdu& pdu, InboundCompletion done) override {
      const auto& d = std::get<smpp::DeliverSm>(pdu.body);
      ++seen;
      if (d.esm_class & 0x04) {
        ++receipts;
        done(st::kOk);
        return;
      }
      {
        std::lock_guard lock(mu);
        acked_sources.insert(d.source_addr);
      }
      done(st::kOk);
    }
  } handler;
  auto o = Options(sim.port);
  o.session.window = 5;
  metrics_ = std::make_shared<LinkMetrics>(registry_, "opa");
  link_ = SmppClientLink::Create(io_.executor(), o, &handler, metrics_);
  link_->Start();
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard lock(handler.mu);
    return handler.acked_sources.size() == 200;
  }, 20s)) << "acked " << handler.acked_sources.size();
  // A reply with a receipt on the re-established session.
  std::promise<SubmitResult> submitted;
  link_->Submit(MakeSubmit("84900000001", "Cam on"),
                [&](const SubmitResult& r) { submitted.set_value(r); });
  auto r = submitted.get_future().get();
  EXPECT_EQ(r.outcome, SubmitOutcome::kOk);
  EXPECT_FALSE(r.message_id.empty());
  ASSERT_TRUE(WaitUntil([&] { return handler.receipts.load() == 1; }, 5s));
  auto stopped = std::make_shared<std::promise<void>>();
  link_->Stop(500ms, [stopped] { stopped->set_value(); });
  ASSERT_EQ(stopped->get_future().wait_for(5s), std::future_status::ready);
  link_.reset();
  auto report = StopSim(sim);
  EXPECT_EQ(report["mo_total"], 200);
  EXPECT_EQ(report["mo_acked"], 200) << report.dump();
  EXPECT_EQ(report["connections_dropped"], 1);
  EXPECT_GE(report["binds_ok"].get<int>(), 2) << "the link must have reconnected";
  EXPECT_EQ(report["receipts_acked"], 1);
  EXPECT_EQ(report["unbinds_received"], 1) << "graceful stop unbinds";
  EXPECT_GE(report["enquire_links_received"].get<int>(), 0);
}

}  // namespace
}  // namespace donagate::daemon
