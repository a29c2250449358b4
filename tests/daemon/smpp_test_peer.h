// Test helpers for the SMPP link tests: a scripted peer speaking raw SMPP over a real loopback
// socket (blocking, poll-based timeouts), an io_context running on two threads, and an
// InboundHandler that records what the link hands to the pipeline.
//
// The peer uses the protocol codec only to build and parse bytes; every behaviour under test
// (binds, windows, timers, answers to bad input) is the link's.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/link.h"
#include "protocol/pdu.h"

namespace donagate::daemon::testing {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

class IoThreads {
 public:
  explicit IoThreads(int n = 2) : guard_(io_.get_executor()) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~IoThreads() {
    guard_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  boost::asio::io_context& io() { return io_; }
  boost::asio::any_io_executor executor() { return io_.get_executor(); }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

// Polls `condition` until true or `timeout`.
template <typename F>
bool WaitUntil(F condition, Millis timeout = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

class RecordingHandler : public InboundHandler {
 public:
  struct Received {
    LinkInfo link;
    smpp::Pdu pdu;
    InboundCompletion done;
  };
  // When set, every message is completed at once with this status.
  std::optional<uint32_t> auto_status;

  void OnMessage(const LinkInfo& link, const smpp::Pdu& pdu, InboundCompletion done) override {
    std::lock_guard lock(mu_);
    if (auto_status) done(*auto_status);
    received_.push_back(Received{link, pdu, auto_status ? nullptr : std::move(done)});
    cv_.notify_all();
  }
  bool WaitFor(size_t n, Millis timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return received_.size() >= n; });
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return received_.size();
  }
  // Completes message i (0-based) with `status`.
  void Complete(size_t i, uint32_t status) {
    InboundCompletion done;
    {
      std::lock_guard lock(mu_);
      done = received_.at(i).done;
    }
    done(status);
  }
  Received at(size_t i) {
    std::lock_guard lock(mu_);
    return received_.at(i);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Received> received_;
};

// One end of an SMPP connection driven by the test.
class TestPeer {
 public:
  TestPeer() = default;
  ~TestPeer() {
    CloseConnection();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  TestPeer(const TestPeer&) = delete;
  TestPeer& operator=(const TestPeer&) = delete;

  // Listens on 127.0.0.1 (any port); returns the port.
  int Listen() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
  }
  // Accepts one connection (closing the previous one).
  bool Accept(Millis timeout = 5000ms) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    CloseConnection();
    fd_ = ::accept(listen_fd_, nullptr, nullptr);
    buffer_.clear();
    eof_ = false;
    return fd_ >= 0;
  }
  bool Connect(int port, const char* ip = "127.0.0.1") {
    CloseConnection();
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, ip, &addr.sin_addr);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    buffer_.clear();
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  void CloseConnection() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return fd_ >= 0; }
  // Hands the current connection to `other` (so one listener can serve several connections).
  void MoveConnectionTo(TestPeer& other) {
    other.CloseConnection();
    other.fd_ = fd_;
    other.buffer_ = std::move(buffer_);
    other.eof_ = eof_;
    fd_ = -1;
    buffer_.clear();
    eof_ = false;
  }

  void WriteRaw(std::string_view bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  void Write(const smpp::Pdu& pdu) {
    std::string wire;
    smpp::Encode(pdu, &wire);
    WriteRaw(wire);
  }

  // The next PDU, or nullopt on timeout / EOF (eof() tells which).
  std::optional<smpp::Pdu> Read(Millis timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      smpp::FrameCheck f = smpp::CheckFrame(buffer_, {1 << 20});
      if (f.state == smpp::FrameState::kReady) {
        smpp::Pdu pdu;
        smpp::Decode(std::string_view(buffer_).substr(0, f.command_length), &pdu, {1 << 20});
        buffer_.erase(0, f.command_length);
        return pdu;
      }
      auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || fd_ < 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) != 1) return std::nullopt;
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) {
        eof_ = true;
        return std::nullopt;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  // Like Read, but answers (and skips) enquire_link from the link.
  std::optional<smpp::Pdu> ReadSkippingEnquire(Millis timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto pdu = Read(left);
      if (!pdu) return pdu;
      if (pdu->header.command_id == smpp::CommandId::kEnquireLink) {
        Write(smpp::MakeResponseFor(pdu->header, smpp::status::kOk));
        continue;
      }
      return pdu;
    }
  }
  // True when the other side closed the connection within `timeout` (PDUs are discarded).
  bool WaitClosed(Millis timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (eof_) return true;
      auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
      Read(left);
      if (eof_) return true;
    }
    return eof_;
  }
  bool eof() const { return eof_; }

  // Acting as the SMSC: reads the bind and answers it.
  std::optional<smpp::Pdu> AnswerBind(uint32_t status = smpp::status::kOk, Millis timeout = 5000ms) {
    auto bind = Read(timeout);
    if (!bind) return bind;
    smpp::Pdu resp = smpp::MakeResponseFor(bind->header, status);
    if (auto* body = std::get_if<smpp::BindRespBody>(&resp.body); body && status == 0) {
      body->system_id = "testsmsc";
    }
    Write(resp);
    return bind;
  }
  // Acting as the ESME: sends a bind and returns the answer.
  std::optional<smpp::Pdu> Bind(const std::string& system_id, const std::string& password,
                                smpp::CommandId kind = smpp::CommandId::kBindTransceiver,
                                uint32_t sequence = 1, Millis timeout = 5000ms) {
    smpp::Pdu bind = smpp::MakePdu(kind, sequence);
    auto& body = std::get<smpp::BindBody>(bind.body);
    body.system_id = system_id;
    body.password = password;
    Write(bind);
    return Read(timeout);
  }

 private:
  int listen_fd_ = -1;
  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

inline smpp::Pdu MakeDeliverSm(uint32_t sequence, const std::string& from, const std::string& to,
                               const std::string& text) {
  smpp::Pdu pdu = smpp::MakePdu(smpp::CommandId::kDeliverSm, sequence);
  auto& body = std::get<smpp::DeliverSm>(pdu.body);
  body.source_addr_ton = 1;
  body.source_addr_npi = 1;
  body.source_addr = from;
  body.destination_addr = to;
  body.short_message = text;
  return pdu;
}

inline smpp::SubmitSm MakeSubmit(const std::string& to, const std::string& text) {
  smpp::SubmitSm s;
  s.source_addr = "1407";
  s.dest_addr_ton = 1;
  s.dest_addr_npi = 1;
  s.destination_addr = to;
  s.registered_delivery = 1;
  s.short_message = text;
  return s;
}

}  // namespace donagate::daemon::testing
