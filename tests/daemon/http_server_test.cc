// The HTTP endpoints over real loopback TCP, with a Beast client.
#include "daemon/http_server.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "config/loader.h"
#include "daemon/health.h"
#include "daemon/logging.h"
#include "daemon/metrics.h"
#include "tests/common/metrics_text.h"
#include "tests/common/test_env.h"

namespace donagate::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::string_view kToken = "adm1n-T0ken-9f8e7d6c";

struct Reply {
  int status = 0;
  std::string content_type;
  std::string body;
  std::string www_authenticate;
};

Reply Fetch(uint16_t port, http::verb method, const std::string& target,
            const std::string& bearer = {}) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(5));
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, "127.0.0.1");
  if (!bearer.empty()) request.set(http::field::authorization, "Bearer " + bearer);
  request.prepare_payload();
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return {static_cast<int>(response.result_int()), std::string(response[http::field::content_type]),
          response.body(), std::string(response[http::field::www_authenticate])};
}

// Writes raw bytes and returns everything the server sends back before closing.
std::string RawExchange(uint16_t port, const std::string& bytes, std::chrono::milliseconds wait) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(wait);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  if (!bytes.empty()) asio::write(stream.socket(), asio::buffer(bytes));
  std::string received;
  char buf[4096];
  beast::error_code ec;
  while (!ec) {
    const size_t n = stream.read_some(asio::buffer(buf), ec);
    received.append(buf, n);
  }
  if (ec == beast::error::timeout) received += "<timeout>";
  return received;
}

// The pipeline's role, played by a recorder: what did the server ask for?
class RecordingAdmin : public AdminActions {
 public:
  AdminResult PauseCharging() override { return Record("pause", AdminResult::Ok("charging paused")); }
  AdminResult ResumeCharging() override { return Record("resume", AdminResult::Ok("charging resumed")); }
  AdminResult StopLink(std::string_view name) override {
    if (name != "opa-1") return Record("stop " + std::string(name), AdminResult::Of(AdminResult::Code::kNotFound, "no link " + std::string(name)));
    return Record("stop opa-1", AdminResult::Ok("stopping"));
  }
  AdminResult StartLink(std::string_view name) override {
    return Record("start " + std::string(name), AdminResult::Ok("starting"));
  }
  AdminResult ReloadTemplates() override {
    return Record("reload", AdminResult::Of(AdminResult::Code::kInvalid, "reply.help: unknown placeholder {x}"));
  }
  std::vector<LinkStatus> Links() override {
    LinkStatus link;
    link.name = "opa-1";
    link.operator_name = "opa";
    link.mode = "client";
    link.state = LinkState::kBound;
    return {link};
  }
  std::vector<std::string> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  AdminResult Record(std::string call, AdminResult result) {
    std::lock_guard lock(mu_);
    calls_.push_back(std::move(call));
    return result;
  }
  std::mutex mu_;
  std::vector<std::string> calls_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_dir_ = testing::MakeTempDir("http_server_test");
    config::LogConfig log;
    log.file = log_dir_ + "/donagated.log";
    log.max_repeats_per_minute = 0;
    std::string error;
    ASSERT_TRUE(SetupLogging(log, &error)) << error;
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (server_) server_->Stop();
    work_.reset();
    io_.stop();
    thread_.join();
    server_.reset();
  }

  void StartServer(HttpServerOptions options = {}) {
    options.listen = "127.0.0.1:0";
    options.admin_enabled = true;
    options.admin_listen = "127.0.0.1:0";
    if (options.admin_token.empty()) options.admin_token = std::string(kToken);
    HttpServerHandlers handlers;
    handlers.registry = &registry_;
    handlers.readiness = health_.Probe();
    handlers.status = [this] {
      StatusSnapshot s;
      s.version = "1.2.3-test";
      s.started_at = std::chrono::system_clock::now() - std::chrono::seconds(42);
      s.instance_id = "test-1";
      s.links = admin_.Links();
      s.queues = {{"outbox_backlog", 7}};
      s.unknown_charges = 2;
      s.readiness = health_.Evaluate();
      std::lock_guard lock(status_mu_);
      if (status_override_) return status_override_();
      return s;
    };
    handlers.admin = &admin_;
    handlers.metrics = &metrics_;
    server_ = std::make_unique<HttpServer>(io_, options, handlers);
    std::string error;
    ASSERT_TRUE(server_->Start(&error)) << error;
    ASSERT_NE(server_->port(), 0);
    ASSERT_NE(server_->admin_port(), 0);
  }

  std::string LogText() {
    FlushLogs();
    std::ifstream in(log_dir_ + "/donagated.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread thread_;
  prometheus::Registry registry_;
  Metrics metrics_{registry_, "1.2.3-test"};
  std::atomic<int> bound_links_{0};
  HealthMonitor health_{[this] { return bound_links_.load(); }};
  RecordingAdmin admin_;
  std::mutex status_mu_;
  std::function<StatusSnapshot()> status_override_;
  std::unique_ptr<HttpServer> server_;
  std::string log_dir_;
};

TEST_F(HttpServerTest, MetricsServesPrometheusText) {
  StartServer();
  metrics_.ForLink("opa-1").mo_received.Increment(5);
  const Reply r = Fetch(server_->port(), http::verb::get, "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  const auto m = testing::MetricsText::Parse(r.body);
  EXPECT_TRUE(m.errors().empty());
  EXPECT_EQ(m.Value("donagate_mo_received_total", {{"link", "opa-1"}}), 5);
  EXPECT_EQ(m.Value("donagate_build_info", {{"version", "1.2.3-test"}}), 1);
  // A query string (some scrapers add one) does not change the answer.
  EXPECT_EQ(Fetch(server_->port(), http::verb::get, "/metrics?x=1").status, 200);
}

TEST_F(HttpServerTest, HealthzIsAlwaysOk) {
  StartServer();
  const Reply r = Fetch(server_->port(), http::verb::get, "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
}

TEST_F(HttpServerTest, ReadyzFollowsTheProbes) {
  StartServer();
  Reply r = Fetch(server_->port(), http::verb::get, "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.content_type, "application/json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["ready"], false);
  EXPECT_EQ(j["reasons"].size(), 3u) << r.body;

  health_.SetDatabase(true);
  health_.SetMigrations(true);
  bound_links_ = 1;
  r = Fetch(server_->port(), http::verb::get, "/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body)["ready"], true);

  health_.SetDatabase(false, "connection refused");
  r = Fetch(server_->port(), http::verb::get, "/readyz");
  EXPECT_EQ(r.status, 503);
  j = nlohmann::json::parse(r.body);
  ASSERT_EQ(j["reasons"].size(), 1u);
  EXPECT_EQ(j["reasons"][0], "database unreachable: connection refused");
  health_.SetDatabase(false, "database unreachable: timeout");
  r = Fetch(server_->port(), http::verb::get, "/readyz");
  EXPECT_EQ(nlohmann::json::parse(r.body)["reasons"][0], "database unreachable: timeout")
      << "a reporter's own prefix is not repeated";

  health_.SetDatabase(true);
  bound_links_ = 0;
  r = Fetch(server_->port(), http::verb::get, "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(nlohmann::json::parse(r.body)["reasons"][0], "no link bound");

  bound_links_ = 2;
  health_.SetMigrations(false, "schema version 1, binary expects 2");
  r = Fetch(server_->port(), http::verb::get, "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(nlohmann::json::parse(r.body)["reasons"][0], "migrations not current: schema version 1, binary expects 2");
}

TEST_F(HttpServerTest, StatusReportsLinksQueuesAndUptime) {
  StartServer();
  const Reply r = Fetch(server_->port(), http::verb::get, "/status");
  ASSERT_EQ(r.status, 200);
  const auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["version"], "1.2.3-test");
  EXPECT_GE(j["uptime_seconds"].get<int>(), 42);
  EXPECT_EQ(j["unknown_charges"], 2);
  EXPECT_EQ(j["queues"]["outbox_backlog"], 7);
  ASSERT_EQ(j["links"].size(), 1u);
  EXPECT_EQ(j["links"][0]["name"], "opa-1");
  EXPECT_EQ(j["links"][0]["state"], "bound");
}

TEST_F(HttpServerTest, NoSecretFromTheConfigurationReachesAnyEndpoint) {
  const std::map<std::string, std::string> env = {
      {"DONAGATE_DEMO_SMSC_PASSWORD", "Sm5c#q81"},
      {"DONAGATE_DEMO_CB_SECRET", "Cb-Secr3t-77q"},
      {"DONAGATE_DATABASE_URL", "host=127.0.0.1 dbname=donagate user=donagate password=pg-Pa55-zx42"},
      {"DONAGATE_ADMIN_TOKEN", std::string(kToken)}};
  std::ifstream in(testing::SourcePath("config/donagate.demo.toml"));
  std::stringstream toml;
  toml << in.rdbuf()
       << "\n[admin]\nenabled = true\nlisten = \"127.0.0.1:9465\"\ntoken_env = \"DONAGATE_ADMIN_TOKEN\"\n";
  config::LoadOptions load_options;
  load_options.getenv = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  const auto loaded = config::LoadConfigFromString(toml.str(), "demo+admin.toml",
                                                   testing::SourcePath("config"), load_options);
  ASSERT_TRUE(loaded.ok()) << loaded.diagnostics.front().ToString();
  const config::Config& cfg = loaded.config;
  ASSERT_EQ(cfg.admin.token.Reveal(), kToken);

  // The status the daemon builds from that configuration: every configured link, bind failure
  // text included.
  {
    std::lock_guard lock(status_mu_);
    status_override_ = [&cfg] {
      StatusSnapshot s;
      s.version = "1.2.3-test";
      s.instance_id = cfg.pipeline.instance_id;
      for (const auto& link : cfg.links) {
        LinkStatus ls;
        ls.name = link.name;
        ls.operator_name = link.operator_name;
        ls.mode = "client";
        ls.state = LinkState::kBindRefused;
        ls.last_error = "bind refused: ESME_RINVPASWD (0x0000000E)";
        s.links.push_back(ls);
      }
      return s;
    };
  }
  HttpServerOptions options;
  options.admin_token = cfg.admin.token.Reveal();
  StartServer(options);

  std::string everything;
  for (const char* path : {"/status", "/metrics", "/readyz", "/healthz", "/nope"}) {
    everything += Fetch(server_->port(), http::verb::get, path).body;
  }
  everything += Fetch(server_->admin_port(), http::verb::get, "/admin/links", cfg.admin.token.Reveal()).body;
  everything += Fetch(server_->admin_port(), http::verb::get, "/admin/links", "wrong-token").body;
  everything += Fetch(server_->admin_port(), http::verb::post, "/admin/charging/pause", cfg.admin.token.Reveal()).body;
  const std::string logs = LogText();
  EXPECT_NE(everything.find("opa-1"), std::string::npos) << "the status did list the links";
  for (const auto& [name, secret] : env) {
    EXPECT_EQ(everything.find(secret), std::string::npos) << name << " leaked in a response";
    EXPECT_EQ(logs.find(secret), std::string::npos) << name << " leaked in the log";
  }
  EXPECT_EQ(everything.find("pg-Pa55"), std::string::npos);
}

TEST_F(HttpServerTest, AdminRequiresTheBearerToken) {
  StartServer();
  Reply r = Fetch(server_->admin_port(), http::verb::post, "/admin/charging/pause");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.www_authenticate, "Bearer realm=\"donagate-admin\"");
  r = Fetch(server_->admin_port(), http::verb::post, "/admin/charging/pause", "adm1n-T0ken-9f8e7d6");
  EXPECT_EQ(r.status, 401) << "a prefix of the token is not the token";
  r = Fetch(server_->admin_port(), http::verb::post, "/admin/charging/pause", std::string(kToken) + "x");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Fetch(server_->admin_port(), http::verb::get, "/admin/nope").status, 401)
      << "unauthenticated callers learn nothing about which paths exist";
  EXPECT_TRUE(admin_.calls().empty());
  const auto m = testing::MetricsText::Parse(Fetch(server_->port(), http::verb::get, "/metrics").body);
  EXPECT_EQ(m.Sum("donagate_admin_actions_total"), 0);
  EXPECT_NE(LogText().find("event=admin_unauthorized remote=127.0.0.1 "), std::string::npos);
}

TEST_F(HttpServerTest, AdminActionsAreDispatchedLoggedAndCounted) {
  StartServer();
  const uint16_t port = server_->admin_port();
  const std::string token(kToken);
  Reply r = Fetch(port, http::verb::post, "/admin/charging/pause", token);
  EXPECT_EQ(r.status, 200);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["message"], "charging paused");
  EXPECT_EQ(Fetch(port, http::verb::post, "/admin/charging/resume", token).status, 200);
  EXPECT_EQ(Fetch(port, http::verb::post, "/admin/links/opa-1/stop", token).status, 200);
  EXPECT_EQ(Fetch(port, http::verb::post, "/admin/links/opa-1/start", token).status, 200);
  r = Fetch(port, http::verb::post, "/admin/links/nosuch/stop", token);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(nlohmann::json::parse(r.body)["message"], "no link nosuch");
  r = Fetch(port, http::verb::post, "/admin/templates/reload", token);
  EXPECT_EQ(r.status, 400) << "the implementation's kInvalid becomes 400 with its diagnostics";
  EXPECT_EQ(nlohmann::json::parse(r.body)["message"], "reply.help: unknown placeholder {x}");
  r = Fetch(port, http::verb::get, "/admin/links", token);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body)[0]["name"], "opa-1");

  EXPECT_EQ(admin_.calls(), (std::vector<std::string>{"pause", "resume", "stop opa-1", "start opa-1",
                                                      "stop nosuch", "reload"}));
  const auto m = testing::MetricsText::Parse(Fetch(server_->port(), http::verb::get, "/metrics").body);
  EXPECT_EQ(m.Value("donagate_admin_actions_total", {{"action", "pause_charging"}}), 1);
  EXPECT_EQ(m.Value("donagate_admin_actions_total", {{"action", "stop_link"}}), 2);
  EXPECT_EQ(m.Value("donagate_admin_actions_total", {{"action", "start_link"}}), 1);
  EXPECT_EQ(m.Value("donagate_admin_actions_total", {{"action", "reload_templates"}}), 1);
  EXPECT_EQ(m.Value("donagate_admin_actions_total", {{"action", "list_links"}}), 1);

  const std::string logs = LogText();
  EXPECT_NE(logs.find("component=admin event=admin_action action=pause_charging remote=127.0.0.1:"),
            std::string::npos) << logs;
  EXPECT_NE(logs.find("event=admin_action action=stop_link link=nosuch remote=127.0.0.1:"), std::string::npos);
  EXPECT_NE(logs.find("result=not_found"), std::string::npos);
  EXPECT_EQ(logs.find(kToken), std::string::npos);
}

TEST_F(HttpServerTest, AdminRejectsWrongMethodsUnknownPathsAndBadNames) {
  StartServer();
  const uint16_t port = server_->admin_port();
  const std::string token(kToken);
  EXPECT_EQ(Fetch(port, http::verb::get, "/admin/charging/pause", token).status, 405);
  EXPECT_EQ(Fetch(port, http::verb::post, "/admin/links", token).status, 405);
  EXPECT_EQ(Fetch(port, http::verb::post, "/admin/charging/explode", token).status, 404);
  EXPECT_EQ(Fetch(port, http::verb::post, "/admin/links/opa-1/reboot", token).status, 404);
  EXPECT_EQ(Fetch(port, http::verb::post, "/admin/links/a%20b/stop", token).status, 400);
  EXPECT_EQ(Fetch(port, http::verb::post, "/admin/links//stop", token).status, 400);
  EXPECT_TRUE(admin_.calls().empty());
  // Admin paths do not exist on the public listener, token or not.
  EXPECT_EQ(Fetch(server_->port(), http::verb::post, "/admin/charging/pause", token).status, 404);
  EXPECT_TRUE(admin_.calls().empty());
}

TEST_F(HttpServerTest, MainListenerAnswersUnknownPathsAndMethods) {
  StartServer();
  EXPECT_EQ(Fetch(server_->port(), http::verb::get, "/").status, 404);
  EXPECT_EQ(Fetch(server_->port(), http::verb::post, "/metrics").status, 405);
  EXPECT_EQ(Fetch(server_->port(), http::verb::delete_, "/status").status, 405);
}

TEST_F(HttpServerTest, MalformedOversizedAndSilentRequestsAreRefused) {
  HttpServerOptions options;
  options.max_request_bytes = 1024;
  options.request_timeout = std::chrono::milliseconds(300);
  StartServer(options);
  const uint16_t port = server_->port();

  std::string answer = RawExchange(port, "GARBAGE\r\n\r\n", std::chrono::seconds(3));
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;

  answer = RawExchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n",
                       std::chrono::seconds(3));
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer.substr(0, 80);

  answer = RawExchange(port,
                       "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + std::string(2000, 'b'),
                       std::chrono::seconds(3));
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer.substr(0, 80);

  // Slow loris: a request that never completes is cut off after request_timeout.
  const auto start = std::chrono::steady_clock::now();
  answer = RawExchange(port, "GET /metrics HTTP/1.1\r\nHo", std::chrono::seconds(3));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(answer, "") << "closed without an answer";
  EXPECT_LT(elapsed, std::chrono::seconds(2));

  // The server still serves after all that.
  EXPECT_EQ(Fetch(port, http::verb::get, "/healthz").status, 200);
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(5));
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  beast::flat_buffer buffer;
  for (int i = 0; i < 3; ++i) {
    http::request<http::empty_body> request{http::verb::get, "/healthz", 11};
    request.keep_alive(true);
    http::write(stream, request);
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    EXPECT_EQ(response.result_int(), 200u);
    EXPECT_TRUE(response.keep_alive());
  }
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitAreClosed) {
  HttpServerOptions options;
  options.max_connections = 2;
  StartServer(options);
  asio::io_context io;
  std::vector<std::unique_ptr<beast::tcp_stream>> idle;
  for (int i = 0; i < 2; ++i) {
    idle.push_back(std::make_unique<beast::tcp_stream>(io));
    idle.back()->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const std::string answer = RawExchange(server_->port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                                         std::chrono::seconds(3));
  EXPECT_EQ(answer, "") << "the third connection is closed unanswered";
  idle.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(Fetch(server_->port(), http::verb::get, "/healthz").status, 200);
}

TEST(HttpServerStart, ReportsBindErrorsAndMissingToken) {
  asio::io_context io;
  prometheus::Registry registry;
  HttpServerHandlers handlers;
  handlers.registry = &registry;

  HttpServerOptions first;
  first.listen = "127.0.0.1:0";
  HttpServer a(io, first, handlers);
  std::string error;
  ASSERT_TRUE(a.Start(&error)) << error;

  HttpServerOptions clash;
  clash.listen = "127.0.0.1:" + std::to_string(a.port());
  HttpServer b(io, clash, handlers);
  EXPECT_FALSE(b.Start(&error));
  EXPECT_NE(error.find("Address already in use"), std::string::npos) << error;

  HttpServerOptions no_token;
  no_token.listen = "127.0.0.1:0";
  no_token.admin_enabled = true;
  HttpServer c(io, no_token, handlers);
  EXPECT_FALSE(c.Start(&error));
  EXPECT_EQ(error, "admin enabled without a token");

  HttpServerOptions bad;
  bad.listen = "localhost";
  HttpServer d(io, bad, handlers);
  EXPECT_FALSE(d.Start(&error));
  EXPECT_EQ(error, "listen localhost: expected host:port or [v6]:port");
}

TEST(ParseListenAddress, AcceptsHostPortAndBracketedV6) {
  std::string host;
  uint16_t port = 0;
  EXPECT_TRUE(ParseListenAddress("127.0.0.1:9464", &host, &port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 9464);
  EXPECT_TRUE(ParseListenAddress("[::1]:80", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_FALSE(ParseListenAddress("::1:80", &host, &port));
  EXPECT_FALSE(ParseListenAddress("host:99999", &host, &port));
  EXPECT_FALSE(ParseListenAddress("host:", &host, &port));
  EXPECT_FALSE(ParseListenAddress(":80", &host, &port));
}

}  // namespace
}  // namespace donagate::daemon

namespace donagate::daemon {
namespace {

// Where the daemon writes (failover): the tracker follows the latest accepted connection,
// counts refused standbys, and /status and donagate_db_server_info say the same.
TEST(DbServerTrackerTest, FollowsTheLatestPrimaryAndCountsRefusedStandbys) {
  prometheus::Registry registry;
  Metrics metrics(registry, "test");
  DbServerTracker tracker(&metrics);
  auto info_series = [&] {
    std::vector<std::map<std::string, std::string>> series;
    for (const auto& family : registry.Collect()) {
      if (family.name != "donagate_db_server_info") continue;
      for (const auto& m : family.metric) {
        std::map<std::string, std::string> labels;
        for (const auto& l : m.label) labels[l.name] = l.value;
        labels["value"] = std::to_string(static_cast<int>(m.gauge.value));
        series.push_back(labels);
      }
    }
    return series;
  };
  EXPECT_TRUE(tracker.Snapshot().host.empty());
  tracker.OnConnect("donagated-ingest", billing::DbServer{"db1", "5432", false}, billing::StoreStatus::Ok());
  tracker.OnConnect("donagated-ingest", billing::DbServer{"db2", "5432", true},
                    billing::StoreStatus::Transient("refusing to write to a standby"));
  DbServerStatus s = tracker.Snapshot();
  EXPECT_EQ(s.host, "db1") << "a refused standby is not where we write";
  EXPECT_EQ(s.role, "primary");
  EXPECT_EQ(s.standby_refusals, 1);
  ASSERT_EQ(info_series().size(), 1u);
  EXPECT_EQ(info_series()[0]["host"], "db1");

  // The failover: db2 promoted, the next connection lands there.
  tracker.OnConnect("donagated-charging", billing::DbServer{"db2", "5432", false}, billing::StoreStatus::Ok());
  s = tracker.Snapshot();
  EXPECT_EQ(s.host, "db2");
  EXPECT_EQ(s.connects, 2);
  const auto series = info_series();
  ASSERT_EQ(series.size(), 1u) << "the dead primary's series is removed";
  EXPECT_EQ(series[0].at("host"), "db2");
  EXPECT_EQ(series[0].at("role"), "primary");
  EXPECT_EQ(series[0].at("value"), "1");

  StatusSnapshot snapshot;
  snapshot.database = s;
  const auto j = nlohmann::json::parse(StatusJson(snapshot));
  EXPECT_EQ(j["database"]["host"], "db2");
  EXPECT_EQ(j["database"]["port"], "5432");
  EXPECT_EQ(j["database"]["role"], "primary");
  EXPECT_EQ(j["database"]["standby_refusals"], 1);
  EXPECT_FALSE(j["database"]["since"].get<std::string>().empty());
}

}  // namespace
}  // namespace donagate::daemon
