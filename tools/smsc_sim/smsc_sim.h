// The SMSC simulator: accepts ESME binds, delivers MO traffic as deliver_sm within a window and
// at a rate, answers submit_sm (optionally throttling a fraction), sends delivery receipts, and
// redelivers MOs that were not acknowledged with ESME_ROK, like a real SMSC. README.md beside
// this file documents the command line and the report.
#pragma once

#include <utility>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/pdu.h"

namespace donagate::smsc_sim {

struct MoSpec {
  std::string source;
  std::string destination;
  std::string text;  // UTF-8
};

struct SimOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 2775;
  std::string system_id = "smsc";
  std::string password = "secret";
  std::vector<MoSpec> mos;
  double mo_rate = 0;               // deliver_sm per second (0 = as fast as the window allows)
  int window = 10;                  // unacknowledged deliver_sm per session
  bool receipts = false;
  int receipt_delay_ms = 200;
  std::string receipt_stat = "DELIVRD";
  bool message_id_hex = true;       // submit_sm_resp id format
  std::string receipt_id_format = "same";  // same | hex | decimal
  double throttle_rate = 0;         // fraction of submit_sm answered ESME_RTHROTTLED
  bool redeliver_unacked = false;
  int redeliver_delay_ms = 1000;
  int max_attempts = 0;             // 0 = unlimited
  int response_timeout_ms = 0;      // an unanswered deliver_sm counts as failed after this (0 = never);
                                    // a late answer to it is ignored, as real SMSCs do
  int enquire_link_interval_s = 0;  // 0 = never send enquire_link
  int drop_after_mo = 0;            // close the connection once after this many deliver_sm sent
  int mo_id_tlv = 0;                // TLV tag carrying a unique MO id (0 = none)
  bool payload_in_tlv = false;      // long MO as one deliver_sm with message_payload
  double duration_s = 0;            // exit after this long (0 = until signal / done)
  bool exit_when_done = false;      // exit once every MO and receipt is acknowledged
  int expect_submits = 0;           // with exit_when_done: also wait for this many submit_sm
  std::string report_path;
  uint32_t seed = 1;
};

class Simulator {
 public:
  Simulator(boost::asio::io_context& io, SimOptions options);
  ~Simulator();
  bool Start(std::string* error);
  uint16_t port() const { return port_; }
  // Called on exit: writes the report (if configured) and returns it.
  nlohmann::json Report() const;
  void Shutdown();
  bool done() const;

 private:
  struct Part;       // one deliver_sm to deliver (an MO part or a receipt)
  struct Session;
  friend struct Session;

  void Accept();
  void Pump();
  void ArmPump(std::chrono::steady_clock::duration wait);
  void Requeue(std::shared_ptr<Part> part, bool failed_now);
  void OnPartAcked(const std::shared_ptr<Part>& part, uint32_t status);
  void OnSubmit(Session& session, const donagate::smpp::Pdu& pdu);
  void QueueReceipt(const std::string& message_id, const donagate::smpp::SubmitSm& submit);
  void CheckDone();
  std::string NextMessageId();

  boost::asio::io_context& io_;
  SimOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::vector<std::shared_ptr<Session>> sessions_;
  std::deque<std::shared_ptr<Part>> queue_;
  std::vector<std::shared_ptr<Part>> all_parts_;
  boost::asio::steady_timer pump_timer_;
  bool pump_armed_ = false;
  std::chrono::steady_clock::time_point next_send_{};
  std::mt19937 rng_;
  uint64_t next_message_id_ = 0x1000;
  uint64_t deliver_sent_ = 0;
  bool dropped_once_ = false;
  size_t rr_ = 0;

  // Report.
  int binds_ok_ = 0;
  int binds_failed_ = 0;
  int enquire_links_received_ = 0;
  int unbinds_received_ = 0;
  int throttled_ = 0;
  int receipts_acked_ = 0;
  int receipts_queued_ = 0;
  int connections_dropped_ = 0;
  nlohmann::json submits_ = nlohmann::json::array();
};

// Parses an MO file: one MO per line, "source,destination,text" (text is the rest of the line,
// commas allowed; "\n" in text is a newline). Blank lines and lines starting with # are skipped.
bool LoadMoFile(const std::string& path, std::vector<MoSpec>* out, std::string* error);

}  // namespace donagate::smsc_sim
