// The per-connection engine, seen from the wire: a client link bound to a scripted SMSC over
// real loopback TCP. Every expectation is about bytes the SMSC receives (or does not).
#include "daemon/smpp_session.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <future>

#include "daemon/smpp_client_link.h"
#include "tests/daemon/smpp_test_peer.h"

namespace donagate::daemon {
namespace {

using namespace donagate::daemon::testing;
using smpp::CommandId;
namespace st = smpp::status;

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override { port_ = smsc_.Listen(); }
  void TearDown() override { StopLink(); }

  // Stops the link and waits, so that no callback outlives the test body's locals.
  void StopLink() {
    if (!link_) return;
    auto stopped = std::make_shared<std::promise<void>>();
    link_->Stop(200ms, [stopped] { stopped->set_value(); });
    EXPECT_EQ(stopped->get_future().wait_for(5s), std::future_status::ready);
    link_.reset();
  }

  ClientLinkOptions Options() {
    ClientLinkOptions o;
    o.session.link_name = "opa";
    o.session.operator_name = "operator_a";
    o.session.system_id = "donagate";
    o.session.password = "secret";
    o.session.enquire_link_interval = 60s;
    o.session.response_timeout = 1000ms;
    o.session.pdu_read_timeout = 1000ms;
    o.session.window = 10;
    o.session.throttle_pause = 300ms;
    o.session.throttle_max_retries = 2;
    o.session.unbind_timeout = 300ms;
    o.host = "127.0.0.1";
    o.port = static_cast<uint16_t>(port_);
    o.backoff_min = 50ms;
    o.backoff_max = 200ms;
    return o;
  }

  // Starts the link and completes the bind on the SMSC side.
  void StartBound(ClientLinkOptions o) {
    metrics_ = std::make_shared<LinkMetrics>(registry_, o.session.link_name);
    link_ = SmppClientLink::Create(io_.executor(), std::move(o), &handler_, metrics_);
    link_->Start();
    ASSERT_TRUE(smsc_.Accept());
    auto bind = smsc_.AnswerBind();
    ASSERT_TRUE(bind);
    ASSERT_EQ(bind->header.command_id, CommandId::kBindTransceiver);
    ASSERT_TRUE(WaitUntil([&] { return link_->CanTransmit(); }));
  }

  std::string Metrics() {
    return prometheus::TextSerializer().Serialize(registry_.Collect());
  }

  IoThreads io_;
  TestPeer smsc_;
  int port_ = 0;
  RecordingHandler handler_;
  prometheus::Registry registry_;
  std::shared_ptr<LinkMetrics> metrics_;
  std::shared_ptr<SmppClientLink> link_;
};

TEST_F(SessionTest, BindCarriesCredentialsAndLinkBecomesUp) {
  metrics_ = std::make_shared<LinkMetrics>(registry_, "opa");
  link_ = SmppClientLink::Create(io_.executor(), Options(), &handler_, metrics_);
  link_->Start();
  ASSERT_TRUE(smsc_.Accept());
  auto bind = smsc_.AnswerBind();
  ASSERT_TRUE(bind);
  const auto& body = std::get<smpp::BindBody>(bind->body);
  EXPECT_EQ(body.system_id, "donagate");
  EXPECT_EQ(body.password, "secret");
  EXPECT_EQ(body.interface_version, 0x34);
  ASSERT_TRUE(WaitUntil([&] { return link_->CanTransmit(); }));
  EXPECT_EQ(link_->Status().state, LinkState::kBound);
  EXPECT_EQ(metrics_->up(), 1);
  EXPECT_NE(Metrics().find("donagate_link_binds_total{link=\"opa\"} 1"), std::string::npos);
}

TEST_F(SessionTest, DeliverSmIsNotAcknowledgedUntilTheHandlerCompletes) {
  StartBound(Options());
  smsc_.Write(MakeDeliverSm(7, "84912345678", "1407", "CV 2"));
  ASSERT_TRUE(handler_.WaitFor(1));
  const auto got = handler_.at(0);
  EXPECT_EQ(got.pdu.header.command_id, CommandId::kDeliverSm);
  EXPECT_EQ(std::get<smpp::DeliverSm>(got.pdu.body).short_message, "CV 2");
  EXPECT_EQ(got.link.link_name, "opa");
  EXPECT_EQ(got.link.operator_name, "operator_a");
  // The pipeline has not committed: nothing may reach the SMSC.
  auto early = smsc_.ReadSkippingEnquire(700ms);
  EXPECT_FALSE(early) << "link acknowledged on its own: command_id=0x" << std::hex
                      << static_cast<uint32_t>(early->header.command_id);
  EXPECT_EQ(link_->Status().pending_inbound, 1);
  handler_.Complete(0, st::kOk);
  auto resp = smsc_.ReadSkippingEnquire();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->header.command_id, CommandId::kDeliverSmResp);
  EXPECT_EQ(resp->header.sequence_number, 7u);
  EXPECT_EQ(resp->header.command_status, st::kOk);
  // A second completion of the same message sends nothing more.
  handler_.Complete(0, st::kOk);
  EXPECT_FALSE(smsc_.ReadSkippingEnquire(300ms));
}

TEST_F(SessionTest, TemporaryErrorStatusIsPassedThroughAndDataSmIsHandedOver) {
  StartBound(Options());
  smpp::Pdu data = smpp::MakePdu(CommandId::kDataSm, 9);
  auto& body = std::get<smpp::DataSm>(data.body);
  body.source_addr = "84912345678";
  body.destination_addr = "1407";
  body.tlvs.set_message_payload("CV 3");
  smsc_.Write(data);
  ASSERT_TRUE(handler_.WaitFor(1));
  EXPECT_EQ(handler_.at(0).pdu.header.command_id, CommandId::kDataSm);
  handler_.Complete(0, st::kXTAppn);
  auto resp = smsc_.ReadSkippingEnquire();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->header.command_id, CommandId::kDataSmResp);
  EXPECT_EQ(resp->header.sequence_number, 9u);
  EXPECT_EQ(resp->header.command_status, st::kXTAppn);
}

TEST_F(SessionTest, CompletionAfterTheConnectionDroppedSendsNothingAndDoesNotCrash) {
  StartBound(Options());
  smsc_.Write(MakeDeliverSm(3, "84912345678", "1407", "CV"));
  ASSERT_TRUE(handler_.WaitFor(1));
  smsc_.CloseConnection();
  ASSERT_TRUE(WaitUntil([&] { return !link_->CanTransmit(); }));
  handler_.Complete(0, st::kOk);
  // The link reconnects; the new connection sees a bind, not a stale deliver_sm_resp.
  ASSERT_TRUE(smsc_.Accept());
  auto bind = smsc_.Read();
  ASSERT_TRUE(bind);
  EXPECT_EQ(bind->header.command_id, CommandId::kBindTransceiver);
}

TEST_F(SessionTest, AnswersEnquireLinkFromThePeer) {
  StartBound(Options());
  smsc_.Write(smpp::MakePdu(CommandId::kEnquireLink, 42));
  auto resp = smsc_.Read();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->header.command_id, CommandId::kEnquireLinkResp);
  EXPECT_EQ(resp->header.sequence_number, 42u);
}

TEST_F(SessionTest, SendsEnquireLinkAndDeclaresTheLinkDeadWhenItIsNotAnswered) {
  auto o = Options();
  o.session.enquire_link_interval = 200ms;
  o.session.response_timeout = 300ms;
  StartBound(o);
  auto enquire = smsc_.Read(2s);
  ASSERT_TRUE(enquire);
  EXPECT_EQ(enquire->header.command_id, CommandId::kEnquireLink);
  smsc_.Write(smpp::MakeResponseFor(enquire->header, st::kOk));
  auto second = smsc_.Read(2s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->header.command_id, CommandId::kEnquireLink);
  // Not answered: the link closes the connection and reconnects.
  EXPECT_TRUE(smsc_.WaitClosed(3s));
  ASSERT_TRUE(smsc_.Accept(3s));
  auto bind = smsc_.Read();
  ASSERT_TRUE(bind);
  EXPECT_EQ(bind->header.command_id, CommandId::kBindTransceiver);
  EXPECT_NE(Metrics().find("donagate_link_reconnects_total{link=\"opa\"} 1"), std::string::npos);
}

TEST_F(SessionTest, SubmitReturnsTheMessageIdAndWindowLimitsUnansweredSubmits) {
  auto o = Options();
  o.session.window = 3;
  StartBound(o);
  std::mutex mu;
  std::vector<SubmitResult> results;
  for (int i = 0; i < 5; ++i) {
    link_->Submit(MakeSubmit("84912345678", "reply " + std::to_string(i)),
                  [&](const SubmitResult& r) {
                    std::lock_guard lock(mu);
                    results.push_back(r);
                  });
  }
  std::vector<smpp::Pdu> seen;
  while (auto pdu = smsc_.ReadSkippingEnquire(500ms)) seen.push_back(*pdu);
  ASSERT_EQ(seen.size(), 3u) << "window of 3 must hold back the other submits";
  EXPECT_EQ(link_->Status().window_in_use, 3);
  EXPECT_EQ(link_->Status().queued_submits, 2);
  // Answering one frees one slot.
  smpp::Pdu resp = smpp::MakeResponseFor(seen[0].header, st::kOk);
  std::get<smpp::SubmitSmResp>(resp.body).message_id = "abc123";
  smsc_.Write(resp);
  auto fourth = smsc_.ReadSkippingEnquire();
  ASSERT_TRUE(fourth);
  EXPECT_EQ(fourth->header.command_id, CommandId::kSubmitSm);
  EXPECT_FALSE(smsc_.ReadSkippingEnquire(300ms));
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard lock(mu);
    return results.size() == 1;
  }));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(results[0].outcome, SubmitOutcome::kOk);
    EXPECT_EQ(results[0].message_id, "abc123");
    EXPECT_EQ(results[0].attempts, 1);
  }
  StopLink();
  std::lock_guard lock(mu);
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results[4].outcome, SubmitOutcome::kLinkDown);
}

TEST_F(SessionTest, TpsLimitHoldsOverASecond) {
  auto o = Options();
  o.tps = 20;
  o.session.window = 100;
  StartBound(o);
  for (int i = 0; i < 100; ++i) link_->Submit(MakeSubmit("84912345678", "x"), [](auto&) {});
  int count = 0;
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 1000ms) {
    auto pdu = smsc_.ReadSkippingEnquire(50ms);
    if (pdu && pdu->header.command_id == CommandId::kSubmitSm) {
      ++count;
      smsc_.Write(smpp::MakeResponseFor(pdu->header, st::kOk));
    }
  }
  // 20/s plus the initial burst of 2; generous upper bound, and proof it is not stalled.
  EXPECT_LE(count, 26);
  EXPECT_GE(count, 5);
}

TEST_F(SessionTest, ThrottledSubmitIsPausedAndRetriedThenReportedThrottled) {
  StartBound(Options());  // throttle_pause 300 ms, 2 retries
  std::promise<SubmitResult> result;
  link_->Submit(MakeSubmit("84912345678", "hi"),
                [&](const SubmitResult& r) { result.set_value(r); });
  auto first = smsc_.ReadSkippingEnquire();
  ASSERT_TRUE(first);
  smsc_.Write(smpp::MakeResponseFor(first->header, st::kThrottled));
  const auto throttled_at = std::chrono::steady_clock::now();
  auto second = smsc_.ReadSkippingEnquire(3s);
  ASSERT_TRUE(second);
  EXPECT_GE(std::chrono::steady_clock::now() - throttled_at, 250ms) << "retry must wait the pause";
  EXPECT_EQ(std::get<smpp::SubmitSm>(second->body).short_message, "hi");
  EXPECT_NE(second->header.sequence_number, first->header.sequence_number);
  smsc_.Write(smpp::MakeResponseFor(second->header, st::kMsgQFul));
  auto third = smsc_.ReadSkippingEnquire(3s);
  ASSERT_TRUE(third);
  smsc_.Write(smpp::MakeResponseFor(third->header, st::kThrottled));
  auto fut = result.get_future();
  ASSERT_EQ(fut.wait_for(3s), std::future_status::ready);
  auto r = fut.get();
  EXPECT_EQ(r.outcome, SubmitOutcome::kThrottled);
  EXPECT_EQ(r.command_status, st::kThrottled);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_NE(Metrics().find("donagate_link_throttled_total{link=\"opa\"} 3"), std::string::npos);
}

TEST_F(SessionTest, ThrottleThenSuccessReportsOk) {
  StartBound(Options());
  std::promise<SubmitResult> result;
  link_->Submit(MakeSubmit("84912345678", "hi"),
                [&](const SubmitResult& r) { result.set_value(r); });
  auto first = smsc_.ReadSkippingEnquire();
  ASSERT_TRUE(first);
  smsc_.Write(smpp::MakeResponseFor(first->header, st::kThrottled));
  EXPECT_TRUE(WaitUntil([&] { return link_->Status().throttled; }));
  auto second = smsc_.ReadSkippingEnquire(3s);
  ASSERT_TRUE(second);
  smpp::Pdu resp = smpp::MakeResponseFor(second->header, st::kOk);
  std::get<smpp::SubmitSmResp>(resp.body).message_id = "77";
  smsc_.Write(resp);
  auto r = result.get_future().get();
  EXPECT_EQ(r.outcome, SubmitOutcome::kOk);
  EXPECT_EQ(r.message_id, "77");
  EXPECT_EQ(r.attempts, 2);
}

TEST_F(SessionTest, RejectedAndTimedOutSubmitsAreReported) {
  StartBound(Options());  // response_timeout 1 s
  std::promise<SubmitResult> rejected;
  link_->Submit(MakeSubmit("84912345678", "a"),
                [&](const SubmitResult& r) { rejected.set_value(r); });
  auto first = smsc_.ReadSkippingEnquire();
  ASSERT_TRUE(first);
  smsc_.Write(smpp::MakeResponseFor(first->header, st::kInvDstAdr));
  auto r1 = rejected.get_future().get();
  EXPECT_EQ(r1.outcome, SubmitOutcome::kRejected);
  EXPECT_EQ(r1.command_status, st::kInvDstAdr);

  std::promise<SubmitResult> timed_out;
  link_->Submit(MakeSubmit("84912345678", "b"),
                [&](const SubmitResult& r) { timed_out.set_value(r); });
  ASSERT_TRUE(smsc_.ReadSkippingEnquire());
  auto fut = timed_out.get_future();
  ASSERT_EQ(fut.wait_for(4s), std::future_status::ready);
  auto r2 = fut.get();
  EXPECT_EQ(r2.outcome, SubmitOutcome::kTimeout);
  EXPECT_TRUE(r2.sent);
  EXPECT_EQ(link_->Status().window_in_use, 0);
}

TEST_F(SessionTest, SubmitThatCannotBeEncodedIsRejectedWithoutBeingSent) {
  StartBound(Options());
  std::promise<SubmitResult> result;
  link_->Submit(MakeSubmit("84912345678", std::string(300, 'x')),
                [&](const SubmitResult& r) { result.set_value(r); });
  auto r = result.get_future().get();
  EXPECT_EQ(r.outcome, SubmitOutcome::kRejected);
  EXPECT_FALSE(r.sent);
  EXPECT_EQ(r.attempts, 0);
  EXPECT_FALSE(smsc_.ReadSkippingEnquire(300ms));
  EXPECT_EQ(link_->Status().window_in_use, 0);
}

TEST_F(SessionTest, PeerUnbindIsAnsweredAndTheLinkRebinds) {
  StartBound(Options());
  smsc_.Write(smpp::MakePdu(CommandId::kUnbind, 5));
  auto resp = smsc_.Read();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->header.command_id, CommandId::kUnbindResp);
  EXPECT_EQ(resp->header.sequence_number, 5u);
  EXPECT_TRUE(smsc_.WaitClosed());
  ASSERT_TRUE(smsc_.Accept(3s));
  auto bind = smsc_.Read();
  ASSERT_TRUE(bind);
  EXPECT_EQ(bind->header.command_id, CommandId::kBindTransceiver);
}

TEST_F(SessionTest, StopWaitsForInFlightThenUnbinds) {
  StartBound(Options());
  std::promise<SubmitResult> result;
  link_->Submit(MakeSubmit("84912345678", "a"), [&](const SubmitResult& r) { result.set_value(r); });
  auto submit = smsc_.ReadSkippingEnquire();
  ASSERT_TRUE(submit);
  std::promise<void> stopped;
  link_->Stop(3s, [&] { stopped.set_value(); });
  // No unbind while the submit is unanswered.
  EXPECT_FALSE(smsc_.ReadSkippingEnquire(300ms));
  smpp::Pdu resp = smpp::MakeResponseFor(submit->header, st::kOk);
  std::get<smpp::SubmitSmResp>(resp.body).message_id = "1";
  smsc_.Write(resp);
  auto unbind = smsc_.ReadSkippingEnquire();
  ASSERT_TRUE(unbind);
  EXPECT_EQ(unbind->header.command_id, CommandId::kUnbind);
  smsc_.Write(smpp::MakeResponseFor(unbind->header, st::kOk));
  auto fut = stopped.get_future();
  EXPECT_EQ(fut.wait_for(3s), std::future_status::ready);
  EXPECT_EQ(result.get_future().get().outcome, SubmitOutcome::kOk);
  EXPECT_EQ(link_->Status().state, LinkState::kStopped);
  EXPECT_TRUE(smsc_.WaitClosed());
  // New submits after stop are refused without being sent.
  std::promise<SubmitResult> after;
  link_->Submit(MakeSubmit("84912345678", "b"), [&](const SubmitResult& r) { after.set_value(r); });
  auto r = after.get_future().get();
  EXPECT_EQ(r.outcome, SubmitOutcome::kLinkDown);
  EXPECT_FALSE(r.sent);
  link_.reset();
}

TEST_F(SessionTest, UnknownCommandGetsGenericNackAndTheSessionSurvives) {
  StartBound(Options());
  // A well-framed PDU with command_id 0x00000999.
  std::string raw("\x00\x00\x00\x10\x00\x00\x09\x99\x00\x00\x00\x00\x00\x00\x00\x2A", 16);
  smsc_.WriteRaw(raw);
  auto nack = smsc_.Read();
  ASSERT_TRUE(nack);
  EXPECT_EQ(nack->header.command_id, CommandId::kGenericNack);
  EXPECT_EQ(nack->header.command_status, st::kInvCmdId);
  EXPECT_EQ(nack->header.sequence_number, 42u);
  // Still bound and working.
  smsc_.Write(smpp::MakePdu(CommandId::kEnquireLink, 43));
  auto resp = smsc_.Read();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->header.command_id, CommandId::kEnquireLinkResp);
  EXPECT_TRUE(link_->CanTransmit());
}

TEST_F(SessionTest, MalformedDeliverSmGetsItsErrorResponseAndNeverReachesThePipeline) {
  StartBound(Options());
  // deliver_sm whose sm_length (200) runs past the end of the PDU.
  smpp::Pdu good = MakeDeliverSm(11, "84912345678", "1407", "CV");
  std::string wire;
  smpp::Encode(good, &wire);
  const size_t sm_length_at = wire.size() - 1 - 2;  // "CV" is the last field
  wire[sm_length_at] = static_cast<char>(200);
  smsc_.WriteRaw(wire);
  auto resp = smsc_.Read();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->header.command_id, CommandId::kDeliverSmResp);
  EXPECT_EQ(resp->header.sequence_number, 11u);
  EXPECT_NE(resp->header.command_status, st::kOk);
  EXPECT_EQ(handler_.count(), 0u);
}

TEST_F(SessionTest, OversizedCommandLengthIsRefusedAndTheConnectionClosed) {
  auto o = Options();
  o.session.max_pdu_size = 4096;
  StartBound(o);
  std::string raw("\x7F\xFF\xFF\xFF\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x08", 16);
  smsc_.WriteRaw(raw);
  auto nack = smsc_.Read();
  ASSERT_TRUE(nack);
  EXPECT_EQ(nack->header.command_id, CommandId::kGenericNack);
  EXPECT_EQ(nack->header.command_status, st::kInvCmdLen);
  EXPECT_TRUE(smsc_.WaitClosed());
}

TEST_F(SessionTest, TruncatedPduIsClosedAfterTheReadTimeout) {
  StartBound(Options());  // pdu_read_timeout 1 s
  std::string wire;
  smpp::Encode(MakeDeliverSm(12, "84912345678", "1407", "CV 1"), &wire);
  smsc_.WriteRaw(wire.substr(0, wire.size() - 3));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(smsc_.WaitClosed(4s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
  EXPECT_EQ(handler_.count(), 0u);
}

TEST_F(SessionTest, SubmitSmFromTheSmscIsRefused) {
  StartBound(Options());
  smpp::Pdu submit = smpp::MakePdu(CommandId::kSubmitSm, 13);
  std::get<smpp::SubmitSm>(submit.body).destination_addr = "1407";
  smsc_.Write(submit);
  auto resp = smsc_.Read();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->header.command_id, CommandId::kSubmitSmResp);
  EXPECT_EQ(resp->header.command_status, st::kInvCmdId);
  EXPECT_EQ(handler_.count(), 0u);
}

TEST_F(SessionTest, PduMetricsUseCommandAndStatusNames) {
  StartBound(Options());
  smsc_.Write(smpp::MakePdu(CommandId::kEnquireLink, 50));
  ASSERT_TRUE(smsc_.Read());
  const std::string m = Metrics();
  EXPECT_NE(m.find("donagate_link_pdus_total{command=\"enquire_link\",direction=\"in\",link=\"opa\","
                   "status=\"ESME_ROK\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("command=\"enquire_link_resp\",direction=\"out\""), std::string::npos);
  EXPECT_NE(m.find("command=\"bind_transceiver\",direction=\"out\""), std::string::npos);
}

}  // namespace
}  // namespace donagate::daemon
