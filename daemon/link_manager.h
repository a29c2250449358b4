// Owns every configured link and answers the pipeline's questions about them.
//
// Contract: links are added before StartAll() and never removed (stop/start instead), so the
// lookups below read an immutable list without locks. PickTransmitter round-robins over the
// operator's links that can transmit right now. StopAll() stops every link gracefully (see
// Link::Stop) in parallel and calls `done` once when all are closed.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <prometheus/registry.h>

#include "config/config.h"
#include "daemon/link.h"

namespace donagate::daemon {

class LinkManager {
 public:
  // `registry` and `handler` must outlive the manager.
  LinkManager(boost::asio::any_io_executor executor, prometheus::Registry& registry,
              InboundHandler& handler);
  ~LinkManager();

  // Creates the client link or server for one [[smsc]] entry. False with *error (safe to log)
  // when its TLS files or allowed_ips are unusable.
  bool AddFromConfig(const config::SmscLink& link, std::string* error);
  // For tests and custom links.
  void Add(std::shared_ptr<Link> link);

  void StartAll();

  // A link of `operator_name` that can send submit_sm now, or nullptr.
  std::shared_ptr<Link> PickTransmitter(std::string_view operator_name);
  // Operators with at least one transmit-capable link (the reply sender claims their outbox).
  std::vector<std::string> OperatorsWithTransmitter() const;
  // True when at least one link is bound (readiness).
  bool AnyBound() const;

  std::shared_ptr<Link> Find(std::string_view name) const;
  const std::vector<std::shared_ptr<Link>>& links() const { return links_; }
  std::vector<LinkStatus> Statuses() const;

  // Graceful shutdown of every link; `done` runs once, on some link's strand, when all are
  // closed. Each link gives in-flight traffic up to `drain` before it unbinds.
  void StopAll(std::chrono::milliseconds drain, std::function<void()> done);
  // Blocking form for main(): needs the io_context running on other threads. Returns false if
  // the links were not all closed within `timeout`.
  bool StopAllAndWait(std::chrono::milliseconds drain, std::chrono::milliseconds timeout);

 private:
  boost::asio::any_io_executor executor_;
  prometheus::Registry& registry_;
  InboundHandler& handler_;
  std::vector<std::shared_ptr<Link>> links_;
  std::atomic<uint64_t> round_robin_{0};
};

}  // namespace donagate::daemon
