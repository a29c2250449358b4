// Server mode over real loopback TCP: a scripted ESME (the operator's system) binds to us.
#include "daemon/smpp_server.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <future>
#include <set>

#include "daemon/smpp_client_link.h"
#include "tests/daemon/smpp_test_peer.h"

namespace donagate::daemon {
namespace {

using namespace donagate::daemon::testing;
using smpp::CommandId;
namespace st = smpp::status;

TEST(ConstantTimeEqualsTest, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("secret\0", 7), "secret"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals(std::string(80, 'a'), std::string(80, 'a')));
}

TEST(IpAllowlistTest, AddressesAndCidrBlocks) {
  std::string error;
  auto list = IpAllowlist::Parse({"10.1.2.3", "192.168.0.0/16", "2001:db8::/32"}, &error);
  ASSERT_TRUE(list) << error;
  auto a = [](const char* s) { return boost::asio::ip::make_address(s); };
  EXPECT_TRUE(list->Allows(a("10.1.2.3")));
  EXPECT_FALSE(list->Allows(a("10.1.2.4")));
  EXPECT_TRUE(list->Allows(a("192.168.77.1")));
  EXPECT_FALSE(list->Allows(a("192.169.0.1")));
  EXPECT_TRUE(list->Allows(a("::ffff:10.1.2.3")));
  EXPECT_TRUE(list->Allows(a("2001:db8::1")));
  EXPECT_FALSE(list->Allows(a("2001:db9::1")));
  EXPECT_FALSE(IpAllowlist::Parse({"10.0.0.0/40"}, &error));
  EXPECT_NE(error.find("10.0.0.0/40"), std::string::npos);
  EXPECT_FALSE(IpAllowlist::Parse({"example.com"}, &error));
  EXPECT_TRUE(IpAllowlist::Parse({}, &error)->Allows(a("8.8.8.8")));
}

TEST(FailedBindTrackerTest, SlowsAnAddressAfterTooManyFailuresAndForgets) {
  using Clock = FailedBindTracker::Clock;
  FailedBindTracker tracker(3, Millis(1000));
  const auto t0 = Clock::now();
  for (int i = 0; i < 3; ++i) tracker.RecordFailure("1.2.3.4", t0);
  EXPECT_EQ(tracker.DelayFor("1.2.3.4", t0), Millis(0));
  tracker.RecordFailure("1.2.3.4", t0);
  EXPECT_EQ(tracker.DelayFor("1.2.3.4", t0), Millis(1000));
  tracker.RecordFailure("1.2.3.4", t0);
  EXPECT_EQ(tracker.DelayFor("1.2.3.4", t0), Millis(2000));
  EXPECT_EQ(tracker.DelayFor("5.6.7.8", t0), Millis(0));
  EXPECT_EQ(tracker.DelayFor("1.2.3.4", t0 + std::chrono::seconds(61)), Millis(0));
  for (int i = 0; i < 50; ++i) tracker.RecordFailure("9.9.9.9", t0);
  EXPECT_EQ(tracker.DelayFor("9.9.9.9", t0), Millis(6000)) << "capped at 6 units";
  tracker.RecordSuccess("9.9.9.9");
  EXPECT_EQ(tracker.DelayFor("9.9.9.9", t0), Millis(0));
}

class ServerTest : public ::testing::Test {
 protected:
  ServerOptions Options() {
    ServerOptions o;
    o.session.link_name = "opb";
    o.session.operator_name = "operator_b";
    o.session.system_id = "donagate";
    o.session.enquire_link_interval = 60s;
    o.session.response_timeout = 1000ms;
    o.session.pdu_read_timeout = 1000ms;
    o.session.bind_timeout = 1000ms;
    o.session.idle_timeout = 0ms;
    o.session.unbind_timeout = 300ms;
    o.listen_host = "127.0.0.1";
    o.port = 0;
    o.account_system_id = "opb";
    o.account_password = "s3cret";
    o.max_binds_per_account = 2;
    o.max_failed_binds_per_ip = 3;
    o.failed_bind_delay = 400ms;
    return o;
  }
  void Start(ServerOptions o) {
    metrics_ = std::make_shared<LinkMetrics>(registry_, o.session.link_name);
    std::string error;
    server_ = SmppServer::Create(io_.executor(), std::move(o), &handler_, metrics_, &error);
    ASSERT_TRUE(server_) << error;
    ASSERT_TRUE(server_->StartListening(&error)) << error;
    port_ = server_->bound_port();
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (!server_) return;
    auto stopped = std::make_shared<std::promise<void>>();
    server_->Stop(200ms, [stopped] { stopped->set_value(); });
    EXPECT_EQ(stopped->get_future().wait_for(5s), std::future_status::ready);
  }
  std::string Metrics() { return prometheus::TextSerializer().Serialize(registry_.Collect()); }

  IoThreads io_;
  RecordingHandler handler_;
  prometheus::Registry registry_;
  std::shared_ptr<LinkMetrics> metrics_;
  std::shared_ptr<SmppServer> server_;
  int port_ = 0;
};

TEST_F(ServerTest, GoodBindThenMoFlowsAndIsAckedOnlyOnCompletion) {
  Start(Options());
  TestPeer esme;
  ASSERT_TRUE(esme.Connect(port_));
  auto resp = esme.Bind("opb", "s3cret");
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->header.command_id, CommandId::kBindTransceiverResp);
  EXPECT_EQ(resp->header.command_status, st::kOk);
  EXPECT_EQ(std::get<smpp::BindRespBody>(resp->body).system_id, "donagate");
  ASSERT_TRUE(WaitUntil([&] { return server_->CanTransmit(); }));
  EXPECT_EQ(server_->Status().state, LinkState::kBound);

  esme.Write(MakeDeliverSm(2, "84987654321", "1407", "CV 5"));
  ASSERT_TRUE(handler_.WaitFor(1));
  EXPECT_EQ(handler_.at(0).link.system_id, "opb");
  EXPECT_FALSE(esme.ReadSkippingEnquire(400ms)) << "no ack before the pipeline completes";
  handler_.Complete(0, st::kOk);
  auto ack = esme.ReadSkippingEnquire();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->header.command_id, CommandId::kDeliverSmResp);
  EXPECT_EQ(ack->header.sequence_number, 2u);

  // Replies go back to the operator as submit_sm on the same session.
  std::promise<SubmitResult> result;
  server_->Submit(MakeSubmit("84987654321", "Cam on"),
                  [&](const SubmitResult& r) { result.set_value(r); });
  auto submit = esme.ReadSkippingEnquire();
  ASSERT_TRUE(submit);
  ASSERT_EQ(submit->header.command_id, CommandId::kSubmitSm);
  smpp::Pdu sresp = smpp::MakeResponseFor(submit->header, st::kOk);
  std::get<smpp::SubmitSmResp>(sresp.body).message_id = "X1";
  esme.Write(sresp);
  auto r = result.get_future().get();
  EXPECT_EQ(r.outcome, SubmitOutcome::kOk);
  EXPECT_EQ(r.message_id, "X1");
}

TEST_F(ServerTest, WrongPasswordAndUnknownSystemIdAreRefusedAndClosed) {
  Start(Options());
  TestPeer a;
  ASSERT_TRUE(a.Connect(port_));
  auto r1 = a.Bind("opb", "wrong");
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->header.command_status, st::kInvPaswd);
  EXPECT_TRUE(a.WaitClosed());
  TestPeer b;
  ASSERT_TRUE(b.Connect(port_));
  auto r2 = b.Bind("someone", "s3cret");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->header.command_status, st::kInvSysId);
  EXPECT_FALSE(server_->CanTransmit());
  EXPECT_NE(Metrics().find("donagate_link_bind_failures_total{link=\"opb\",status=\"ESME_RINVPASWD\"} 1"),
            std::string::npos);
}

TEST_F(ServerTest, RepeatedFailuresFromOneAddressAreAnsweredSlowly) {
  Start(Options());  // 3 failures allowed per minute, then 400 ms per extra failure
  for (int i = 0; i < 3; ++i) {
    TestPeer p;
    ASSERT_TRUE(p.Connect(port_));
    auto r = p.Bind("opb", "bad");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header.command_status, st::kInvPaswd);
  }
  TestPeer slow;
  ASSERT_TRUE(slow.Connect(port_));
  auto fourth = slow.Bind("opb", "bad");
  ASSERT_TRUE(fourth);  // no delay yet: 3 failures is the limit
  TestPeer slower;
  ASSERT_TRUE(slower.Connect(port_));
  const auto start = std::chrono::steady_clock::now();
  auto fifth = slower.Bind("opb", "bad", CommandId::kBindTransceiver, 1, 5s);
  ASSERT_TRUE(fifth);
  EXPECT_EQ(fifth->header.command_status, st::kInvPaswd);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 350ms);
}

TEST_F(ServerTest, BindLimitPerAccount) {
  auto o = Options();
  o.max_binds_per_account = 1;
  Start(o);
  TestPeer first;
  ASSERT_TRUE(first.Connect(port_));
  ASSERT_EQ(first.Bind("opb", "s3cret")->header.command_status, st::kOk);
  TestPeer second;
  ASSERT_TRUE(second.Connect(port_));
  auto r = second.Bind("opb", "s3cret");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header.command_status, st::kBindFail);
  EXPECT_TRUE(second.WaitClosed());
  // After the first unbinds, a new bind is admitted.
  first.Write(smpp::MakePdu(CommandId::kUnbind, 9));
  auto ur = first.Read();
  ASSERT_TRUE(ur);
  EXPECT_EQ(ur->header.command_id, CommandId::kUnbindResp);
  ASSERT_TRUE(WaitUntil([&] { return server_->Status().bound_sessions == 0; }));
  TestPeer third;
  ASSERT_TRUE(third.Connect(port_));
  EXPECT_EQ(third.Bind("opb", "s3cret")->header.command_status, st::kOk);
}

TEST_F(ServerTest, SecondBindOnABoundSessionIsAlreadyBound) {
  Start(Options());
  TestPeer p;
  ASSERT_TRUE(p.Connect(port_));
  ASSERT_EQ(p.Bind("opb", "s3cret")->header.command_status, st::kOk);
  auto again = p.Bind("opb", "s3cret", CommandId::kBindTransceiver, 2);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->header.command_status, st::kAlyBnd);
}

TEST_F(ServerTest, PdusBeforeBindGetInvalidBindStatus) {
  Start(Options());
  TestPeer p;
  ASSERT_TRUE(p.Connect(port_));
  p.Write(MakeDeliverSm(4, "84912345678", "1407", "CV"));
  auto r = p.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header.command_id, CommandId::kDeliverSmResp);
  EXPECT_EQ(r->header.command_status, st::kInvBndSts);
  EXPECT_EQ(handler_.count(), 0u);
  // enquire_link is answered in any state.
  p.Write(smpp::MakePdu(CommandId::kEnquireLink, 5));
  auto e = p.Read();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->header.command_id, CommandId::kEnquireLinkResp);
  EXPECT_EQ(e->header.command_status, st::kOk);
}

TEST_F(ServerTest, ConnectionThatNeverBindsIsClosed) {
  Start(Options());  // bind_timeout 1 s
  TestPeer p;
  ASSERT_TRUE(p.Connect(port_));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(p.WaitClosed(4s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
}

TEST_F(ServerTest, IdleBoundSessionIsClosed) {
  auto o = Options();
  o.session.idle_timeout = 500ms;
  Start(o);
  TestPeer p;
  ASSERT_TRUE(p.Connect(port_));
  ASSERT_EQ(p.Bind("opb", "s3cret")->header.command_status, st::kOk);
  EXPECT_TRUE(p.WaitClosed(4s));
}

TEST_F(ServerTest, SlowLorisSenderIsCutOffWhileOthersKeepWorking) {
  Start(Options());  // pdu_read_timeout 1 s
  TestPeer good;
  ASSERT_TRUE(good.Connect(port_));
  ASSERT_EQ(good.Bind("opb", "s3cret")->header.command_status, st::kOk);
  TestPeer loris;
  ASSERT_TRUE(loris.Connect(port_));
  std::string bind;
  smpp::Pdu pdu = smpp::MakePdu(CommandId::kBindTransceiver, 1);
  std::get<smpp::BindBody>(pdu.body).system_id = "opb";
  smpp::Encode(pdu, &bind);
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < bind.size() - 1 && !loris.eof(); ++i) {
    loris.WriteRaw(bind.substr(i, 1));
    loris.Read(150ms);
    // Meanwhile the bound session is unaffected.
    if (i == 3) {
      good.Write(smpp::MakePdu(CommandId::kEnquireLink, 77));
      auto r = good.Read();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->header.command_id, CommandId::kEnquireLinkResp);
    }
  }
  EXPECT_TRUE(loris.WaitClosed(3s));
  EXPECT_LE(std::chrono::steady_clock::now() - start, 3500ms);
}

TEST_F(ServerTest, GarbageAndOversizedLengthsAreRefusedWithoutHarm) {
  Start(Options());
  TestPeer garbage;
  ASSERT_TRUE(garbage.Connect(port_));
  garbage.WriteRaw(std::string("\x00\x00\x00\x03GARBAGEGARBAGE!!", 20));
  auto nack = garbage.Read();
  ASSERT_TRUE(nack);
  EXPECT_EQ(nack->header.command_id, CommandId::kGenericNack);
  EXPECT_EQ(nack->header.command_status, st::kInvCmdLen);
  EXPECT_TRUE(garbage.WaitClosed());

  TestPeer huge;
  ASSERT_TRUE(huge.Connect(port_));
  huge.WriteRaw(std::string("\xFF\xFF\xFF\xF0\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00\x00\x01", 16));
  auto nack2 = huge.Read();
  ASSERT_TRUE(nack2);
  EXPECT_EQ(nack2->header.command_status, st::kInvCmdLen);
  EXPECT_EQ(nack2->header.sequence_number, 1u);
  EXPECT_TRUE(huge.WaitClosed());

  TestPeer fine;
  ASSERT_TRUE(fine.Connect(port_));
  EXPECT_EQ(fine.Bind("opb", "s3cret")->header.command_status, st::kOk);
}

TEST_F(ServerTest, AllowlistRefusesOtherAddressesBeforeReading) {
  auto o = Options();
  o.allowed_ips = {"127.0.0.2"};
  Start(o);
  TestPeer p;
  ASSERT_TRUE(p.Connect(port_));
  p.Bind("opb", "s3cret", CommandId::kBindTransceiver, 1, 2s);
  EXPECT_TRUE(p.WaitClosed(2s));
  EXPECT_FALSE(server_->CanTransmit());
  EXPECT_NE(Metrics().find("status=\"ip_not_allowed\""), std::string::npos);
}

TEST_F(ServerTest, AllowlistAdmitsListedAddress) {
  auto o = Options();
  o.allowed_ips = {"127.0.0.0/8"};
  Start(o);
  TestPeer p;
  ASSERT_TRUE(p.Connect(port_));
  EXPECT_EQ(p.Bind("opb", "s3cret")->header.command_status, st::kOk);
}

TEST_F(ServerTest, OurClientLinkBindsToOurServer) {
  Start(Options());
  ClientLinkOptions co;
  co.session.link_name = "loop";
  co.session.operator_name = "operator_b";
  co.session.system_id = "opb";
  co.session.password = "s3cret";
  co.session.enquire_link_interval = 100ms;
  co.session.response_timeout = 1000ms;
  co.session.unbind_timeout = 500ms;
  co.host = "127.0.0.1";
  co.port = static_cast<uint16_t>(port_);
  co.backoff_min = 50ms;
  co.backoff_max = 100ms;
  RecordingHandler client_handler;
  auto client = SmppClientLink::Create(io_.executor(), co,
                                       &client_handler,
                                       std::make_shared<LinkMetrics>(registry_, "loop"));
  client->Start();
  ASSERT_TRUE(WaitUntil([&] { return client->CanTransmit() && server_->CanTransmit(); }));
  // enquire_link both ways keeps both bound.
  std::this_thread::sleep_for(400ms);
  EXPECT_TRUE(client->CanTransmit());
  EXPECT_TRUE(server_->CanTransmit());
  // Server stop unbinds the client, which then retries in the background.
  auto stopped = std::make_shared<std::promise<void>>();
  server_->Stop(200ms, [stopped] { stopped->set_value(); });
  ASSERT_EQ(stopped->get_future().wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(WaitUntil([&] { return !client->CanTransmit(); }));
  auto client_stopped = std::make_shared<std::promise<void>>();
  client->Stop(100ms, [client_stopped] { client_stopped->set_value(); });
  EXPECT_EQ(client_stopped->get_future().wait_for(5s), std::future_status::ready);
}

}  // namespace
}  // namespace donagate::daemon

// --- TLS, robustness, the link manager -------------------------------------------------------

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <random>

#include "daemon/link_manager.h"
#include "tests/common/test_env.h"

namespace donagate::daemon {
namespace {

// Writes a self-signed certificate for CN/SAN "localhost" + 127.0.0.1 and its key.
void MakeSelfSignedCert(const std::string& cert_path, const std::string& key_path) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  ASSERT_NE(key, nullptr);
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  X509_add_ext(cert, san, -1);
  X509_EXTENSION_free(san);
  X509_EXTENSION* bc = X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:TRUE");
  X509_add_ext(cert, bc, -1);
  X509_EXTENSION_free(bc);
  X509_sign(cert, key, EVP_sha256());
  FILE* f = std::fopen(cert_path.c_str(), "w");
  PEM_write_X509(f, cert);
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
}

class TlsTest : public ServerTest {
 protected:
  void SetUp() override {
    dir_ = donagate::testing::MakeTempDir("smpp_tls");
    cert_ = dir_ + "/cert.pem";
    key_ = dir_ + "/key.pem";
    MakeSelfSignedCert(cert_, key_);
  }
  ServerOptions TlsServerOptions() {
    auto o = Options();
    config::TlsConfig tls;
    tls.enabled = true;
    tls.cert_file = cert_;
    tls.key_file = key_;
    tls.verify_peer = false;  // no client certificates in this test
    std::string error;
    o.tls = MakeTlsContext(tls, TlsRole::kServer, &error);
    EXPECT_TRUE(o.tls) << error;
    return o;
  }
  std::shared_ptr<SmppClientLink> TlsClient(const std::string& server_name, bool with_ca,
                                            RecordingHandler* handler) {
    ClientLinkOptions co;
    co.session.link_name = "tls_client";
    co.session.operator_name = "operator_b";
    co.session.system_id = "opb";
    co.session.password = "s3cret";
    co.session.response_timeout = 1000ms;
    co.session.unbind_timeout = 300ms;
    co.host = "127.0.0.1";
    co.port = static_cast<uint16_t>(port_);
    co.backoff_min = 100ms;
    co.backoff_max = 200ms;
    config::TlsConfig tls;
    tls.enabled = true;
    if (with_ca) tls.ca_file = cert_;
    tls.verify_peer = true;
    std::string error;
    co.tls = MakeTlsContext(tls, TlsRole::kClient, &error);
    EXPECT_TRUE(co.tls) << error;
    co.tls_server_name = server_name;
    co.tls_verify_name = true;
    return SmppClientLink::Create(io_.executor(), co, handler,
                                  std::make_shared<LinkMetrics>(registry_, "tls_client"));
  }
  static void StopLink(const std::shared_ptr<Link>& link) {
    auto stopped = std::make_shared<std::promise<void>>();
    link->Stop(100ms, [stopped] { stopped->set_value(); });
    EXPECT_EQ(stopped->get_future().wait_for(5s), std::future_status::ready);
  }
  std::string dir_, cert_, key_;
};

TEST_F(TlsTest, ClientVerifiesTheServerCertificateAndBinds) {
  Start(TlsServerOptions());
  RecordingHandler client_handler;
  auto client = TlsClient("localhost", true, &client_handler);
  client->Start();
  ASSERT_TRUE(WaitUntil([&] { return client->CanTransmit() && server_->CanTransmit(); }));
  StopLink(client);
}

TEST_F(TlsTest, WrongServerNameOrUnknownCaIsRefused) {
  Start(TlsServerOptions());
  RecordingHandler h1, h2;
  auto wrong_name = TlsClient("smsc.example.com", true, &h1);
  auto unknown_ca = TlsClient("localhost", false, &h2);
  wrong_name->Start();
  unknown_ca->Start();
  std::this_thread::sleep_for(800ms);
  EXPECT_FALSE(wrong_name->CanTransmit());
  EXPECT_FALSE(unknown_ca->CanTransmit());
  EXPECT_EQ(server_->Status().bound_sessions, 0);
  StopLink(wrong_name);
  StopLink(unknown_ca);
}

TEST_F(TlsTest, PlainTextPeerCannotBindToATlsServer) {
  Start(TlsServerOptions());
  TestPeer plain;
  ASSERT_TRUE(plain.Connect(port_));
  plain.Bind("opb", "s3cret", CommandId::kBindTransceiver, 1, 1s);
  EXPECT_TRUE(plain.WaitClosed(3s));
  EXPECT_FALSE(server_->CanTransmit());
}

TEST_F(ServerTest, RandomGarbageNeverHurtsTheServer) {
  Start(Options());
  std::mt19937 rng(12345);
  for (int i = 0; i < 150; ++i) {
    TestPeer p;
    ASSERT_TRUE(p.Connect(port_));
    std::string junk(1 + rng() % 300, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (i % 3 == 0) {
      // A plausible header so the body parser is exercised too.
      const uint32_t len = 16 + rng() % 200;
      junk.insert(0, std::string{static_cast<char>(0), static_cast<char>(0),
                                 static_cast<char>(len >> 8), static_cast<char>(len & 0xFF),
                                 0, 0, 0, static_cast<char>(1 + rng() % 9)});
    }
    p.WriteRaw(junk);
    p.Read(20ms);
  }
  TestPeer fine;
  ASSERT_TRUE(fine.Connect(port_));
  auto r = fine.Bind("opb", "s3cret");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header.command_status, st::kOk);
}

TEST(LinkManagerTest, BuildsLinksFromConfigPicksTransmittersAndStopsAll) {
  IoThreads io;
  prometheus::Registry registry;
  RecordingHandler handler;
  LinkManager manager(io.executor(), registry, handler);

  config::SmscLink server;
  server.name = "opb_server";
  server.operator_name = "operator_b";
  server.mode = config::LinkMode::kServer;
  server.host = "127.0.0.1";
  server.port = static_cast<uint16_t>(donagate::testing::FreeTcpPort());
  server.system_id = "opb";
  server.password = config::Secret("env:TEST", "s3cret");
  std::string error;
  ASSERT_TRUE(manager.AddFromConfig(server, &error)) << error;

  config::SmscLink client;
  client.name = "opb_client";
  client.operator_name = "operator_b";
  client.mode = config::LinkMode::kClient;
  client.host = "127.0.0.1";
  client.port = server.port;
  client.system_id = "opb";
  client.password = config::Secret("env:TEST", "s3cret");
  ASSERT_TRUE(manager.AddFromConfig(client, &error)) << error;

  config::SmscLink broken = server;
  broken.name = "broken";
  broken.allowed_ips = {"not-an-ip"};
  EXPECT_FALSE(manager.AddFromConfig(broken, &error));
  EXPECT_NE(error.find("not-an-ip"), std::string::npos);

  EXPECT_EQ(manager.PickTransmitter("operator_b"), nullptr);
  manager.StartAll();
  ASSERT_TRUE(WaitUntil([&] {
    return manager.Find("opb_server")->CanTransmit() && manager.Find("opb_client")->CanTransmit();
  }, 10s));
  std::set<std::string> picked;
  for (int i = 0; i < 4; ++i) picked.insert(manager.PickTransmitter("operator_b")->name());
  EXPECT_EQ(picked, (std::set<std::string>{"opb_server", "opb_client"})) << "round-robin";
  EXPECT_EQ(manager.PickTransmitter("operator_x"), nullptr);
  EXPECT_EQ(manager.OperatorsWithTransmitter(), std::vector<std::string>{"operator_b"});
  EXPECT_TRUE(manager.AnyBound());
  auto statuses = manager.Statuses();
  ASSERT_EQ(statuses.size(), 2u);
  for (const auto& s : statuses) {
    EXPECT_EQ(s.state, LinkState::kBound) << s.name;
    EXPECT_EQ(s.last_error.find("s3cret"), std::string::npos);
  }
  EXPECT_TRUE(manager.StopAllAndWait(500ms, 10s));
  for (const auto& s : manager.Statuses()) EXPECT_EQ(s.state, LinkState::kStopped) << s.name;
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find("donagate_link_up{link=\"opb_client\"} 0"), std::string::npos);
  EXPECT_NE(text.find("donagate_link_binds_total{link=\"opb_server\"} 1"), std::string::npos);
  EXPECT_EQ(text.find("s3cret"), std::string::npos);
}

}  // namespace
}  // namespace donagate::daemon
