#include "daemon/link_manager.h"

#include <spdlog/spdlog.h>

#include "daemon/logging.h"

#include <future>
#include <mutex>

#include "daemon/link_metrics.h"
#include "daemon/smpp_client_link.h"
#include "daemon/smpp_server.h"

namespace donagate::daemon {

std::string_view ToString(SubmitOutcome outcome) {
  switch (outcome) {
    case SubmitOutcome::kOk: return "ok";
    case SubmitOutcome::kRejected: return "rejected";
    case SubmitOutcome::kThrottled: return "throttled";
    case SubmitOutcome::kTimeout: return "timeout";
    case SubmitOutcome::kLinkDown: return "link_down";
    case SubmitOutcome::kBusy: return "busy";
  }
  return "?";
}

std::string_view ToString(LinkState state) {
  switch (state) {
    case LinkState::kStopped: return "stopped";
    case LinkState::kConnecting: return "connecting";
    case LinkState::kBinding: return "binding";
    case LinkState::kBound: return "bound";
    case LinkState::kBackoff: return "backoff";
    case LinkState::kBindRefused: return "bind_refused";
    case LinkState::kStopping: return "stopping";
  }
  return "?";
}

LinkManager::LinkManager(boost::asio::any_io_executor executor, prometheus::Registry& registry,
                         InboundHandler& handler)
    : executor_(std::move(executor)), registry_(registry), handler_(handler) {}

LinkManager::~LinkManager() = default;

bool LinkManager::AddFromConfig(const config::SmscLink& link, std::string* error) {
  auto metrics = std::make_shared<LinkMetrics>(registry_, link.name);
  if (link.mode == config::LinkMode::kClient) {
    ClientLinkOptions options;
    if (!ClientLinkOptionsFromConfig(link, &options, error)) return false;
    links_.push_back(SmppClientLink::Create(executor_, std::move(options), &handler_, metrics));
    return true;
  }
  ServerOptions options;
  if (!ServerOptionsFromConfig(link, &options, error)) return false;
  auto server = SmppServer::Create(executor_, std::move(options), &handler_, metrics, error);
  if (!server) return false;
  links_.push_back(std::move(server));
  return true;
}

void LinkManager::Add(std::shared_ptr<Link> link) { links_.push_back(std::move(link)); }

void LinkManager::StartAll() {
  for (auto& link : links_) link->Start();
}

std::shared_ptr<Link> LinkManager::PickTransmitter(std::string_view operator_name) {
  const size_t n = links_.size();
  if (n == 0) return nullptr;
  const uint64_t start = round_robin_.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    auto& link = links_[(start + i) % n];
    if (link->operator_name() == operator_name && link->CanTransmit()) return link;
  }
  return nullptr;
}

std::vector<std::string> LinkManager::OperatorsWithTransmitter() const {
  std::vector<std::string> out;
  for (const auto& link : links_) {
    if (!link->CanTransmit()) continue;
    if (std::find(out.begin(), out.end(), link->operator_name()) == out.end()) {
      out.push_back(link->operator_name());
    }
  }
  return out;
}

bool LinkManager::AnyBound() const {
  for (const auto& link : links_) {
    if (link->Status().state == LinkState::kBound) return true;
  }
  return false;
}

std::shared_ptr<Link> LinkManager::Find(std::string_view name) const {
  for (const auto& link : links_) {
    if (link->name() == name) return link;
  }
  return nullptr;
}

std::vector<LinkStatus> LinkManager::Statuses() const {
  std::vector<LinkStatus> out;
  out.reserve(links_.size());
  for (const auto& link : links_) out.push_back(link->Status());
  return out;
}

void LinkManager::StopAll(std::chrono::milliseconds drain, std::function<void()> done) {
  if (links_.empty()) {
    if (done) done();
    return;
  }
  struct Countdown {
    std::mutex mu;
    size_t remaining;
    std::function<void()> done;
  };
  auto countdown = std::make_shared<Countdown>();
  countdown->remaining = links_.size();
  countdown->done = std::move(done);
  LinkLog().info("event=links_stopping links={} drain_ms={}", links_.size(), drain.count());
  for (auto& link : links_) {
    link->Stop(drain, [countdown] {
      std::function<void()> finish;
      {
        std::lock_guard lock(countdown->mu);
        if (--countdown->remaining == 0) finish = std::move(countdown->done);
      }
      if (finish) finish();
    });
  }
}

bool LinkManager::StopAllAndWait(std::chrono::milliseconds drain,
                                 std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<void>>();
  auto future = promise->get_future();
  StopAll(drain, [promise] { promise->set_value(); });
  return future.wait_for(timeout) == std::future_status::ready;
}

}  // namespace donagate::daemon
