// Test helper (header-only, not part of any library): runs tools/charging_sim as a real child
// process on a free loopback port and talks to its admin endpoints with a tiny synchronous
// Beast client. Used by tests/billing/* and tests/tools/charging_sim_test.cc.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace donagate::testing {

class ChargingSimProcess {
 public:
  struct HttpAnswer {
    int status = 0;  // 0: no answer (connection failed/closed)
    nlohmann::json body;
  };

  // Starts `binary` with --listen 127.0.0.1:<port> plus `args`; waits until it accepts
  // connections (throws after 10 s or if it exits).
  ChargingSimProcess(const std::string& binary, int port, std::vector<std::string> args, bool tls = false)
      : port_(port), tls_(tls) {
    std::vector<std::string> argv_strings = {binary, "--listen", "127.0.0.1:" + std::to_string(port)};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("cannot fork for " + binary);
    if (pid_ == 0) {
      // Die with the test: a crashed test must not leave a simulator holding its port and pipes.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (true) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("charging_sim exited at start (status " + std::to_string(status) + ")");
      }
      if (Connectable()) return;
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("charging_sim did not start listening");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  ~ChargingSimProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  ChargingSimProcess(const ChargingSimProcess&) = delete;
  ChargingSimProcess& operator=(const ChargingSimProcess&) = delete;

  int port() const { return port_; }
  std::string url() const { return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_); }

  // SIGTERM and wait; returns the exit status (-1 if not running).
  int Terminate() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // One request on a fresh connection; bearer token optional.
  HttpAnswer Request(boost::beast::http::verb method, const std::string& target, const std::string& body = {},
                     const std::string& token = {}) const {
    namespace beast = boost::beast;
    namespace http = beast::http;
    namespace ssl = boost::asio::ssl;
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    auto endpoints = resolver.resolve("127.0.0.1", std::to_string(port_));
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::response<http::string_body> res;
    beast::flat_buffer buffer;
    beast::error_code ec;
    if (tls_) {
      ssl::context ctx(ssl::context::tls_client);
      ctx.set_verify_mode(ssl::verify_none);  // the admin side of a test sim; the client under test verifies
      beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
      beast::get_lowest_layer(stream).connect(endpoints, ec);
      if (!ec) stream.handshake(ssl::stream_base::client, ec);
      if (!ec) http::write(stream, req, ec);
      if (!ec) http::read(stream, buffer, res, ec);
    } else {
      beast::tcp_stream stream(io);
      stream.expires_after(std::chrono::seconds(5));
      stream.connect(endpoints, ec);
      if (!ec) http::write(stream, req, ec);
      if (!ec) http::read(stream, buffer, res, ec);
    }
    HttpAnswer answer;
    if (ec) return answer;
    answer.status = static_cast<int>(res.result_int());
    answer.body = nlohmann::json::parse(res.body(), nullptr, false);
    return answer;
  }

  nlohmann::json Debits(const std::string& token = {}) const {
    return Request(boost::beast::http::verb::get, "/v1/debits", {}, token).body;
  }
  // Number of debits of `key` in the simulator's log.
  int DebitsFor(const std::string& key, const std::string& token = {}) const {
    int n = 0;
    const nlohmann::json log = Debits(token);  // keep alive: range-for does not extend a member of a temporary
    if (!log.contains("debits")) return -1;
    for (const auto& d : log["debits"]) n += d["key"] == key ? 1 : 0;
    return n;
  }
  bool SetConfig(const nlohmann::json& settings, const std::string& token = {}) const {
    return Request(boost::beast::http::verb::post, "/v1/admin/config", settings.dump(), token).status == 200;
  }
  bool SetBalance(const std::string& msisdn, int64_t balance, const std::string& token = {}) const {
    nlohmann::json body = {{"msisdn", msisdn}, {"balance_vnd", balance}};
    return Request(boost::beast::http::verb::post, "/v1/admin/balances", body.dump(), token).status == 200;
  }
  int64_t Balance(const std::string& msisdn, const std::string& token = {}) const {
    auto a = Request(boost::beast::http::verb::get, "/v1/admin/balances/" + msisdn, {}, token);
    return a.status == 200 ? a.body["balance_vnd"].get<int64_t>() : -1;
  }

 private:
  bool Connectable() const {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    boost::system::error_code ec;
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)}, ec);
    return !ec;
  }

  int port_;
  bool tls_;
  pid_t pid_ = -1;
};

}  // namespace donagate::testing
