// interop_link_peer: one real donagate link driven from the command line. See CMakeLists.txt.
//
// stdout: one JSON object per line:
//   {"event":"state","state":"bound",...}            on every link state change
//   {"event":"mo",...}                               for every deliver_sm / data_sm, printed and
//                                                    flushed BEFORE it is acknowledged
//   {"event":"submit_result","outcome":"ok",...}     for every submit_sm we sent
//   {"event":"stopped"}                              after a graceful stop
// stdin: one command per line:
//   submit <destination> <text...>                   send a submit_sm (registered_delivery=1)
//   stop                                             unbind and exit
#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <fstream>
#include <thread>

#include "daemon/link_manager.h"
#include "daemon/link_metrics.h"
#include "daemon/logging.h"
#include "daemon/smpp_client_link.h"
#include "daemon/smpp_server.h"
#include "protocol/delivery_receipt.h"
#include "protocol/text_codec.h"
#include "protocol/udh.h"

namespace asio = boost::asio;
using namespace donagate;
using namespace donagate::daemon;

namespace {

std::mutex out_mu;
void Emit(const nlohmann::json& j) {
  std::lock_guard lock(out_mu);
  std::cout << j.dump() << std::endl;  // endl flushes: the line is out before the ack
}

std::string Hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

class PrintingHandler : public InboundHandler {
 private:
  std::mutex slow_mu_;
  std::chrono::steady_clock::time_point next_ack_{};

 public:
  uint32_t ack_status = 0;
  int ack_interval_ms = 0;  // > 0: a slow "pipeline" acknowledging one message per interval
  asio::io_context* io = nullptr;
  std::string reply_text;
  std::function<void(const std::string&, const std::string&)> reply;

  void OnMessage(const LinkInfo& link, const smpp::Pdu& pdu, InboundCompletion done) override {
    nlohmann::json j;
    j["event"] = "mo";
    j["link"] = link.link_name;
    j["session"] = link.session_id;
    j["command"] = std::string(smpp::CommandIdName(pdu.header.command_id));
    j["sequence"] = pdu.header.sequence_number;
    std::string source, destination, user_data;
    uint8_t esm_class = 0, data_coding = 0;
    const smpp::TlvList* tlvs = nullptr;
    if (auto* d = std::get_if<smpp::DeliverSm>(&pdu.body)) {
      source = d->source_addr;
      destination = d->destination_addr;
      esm_class = d->esm_class;
      data_coding = d->data_coding;
      user_data = d->short_message;
      tlvs = &d->tlvs;
    } else if (auto* d = std::get_if<smpp::DataSm>(&pdu.body)) {
      source = d->source_addr;
      destination = d->destination_addr;
      esm_class = d->esm_class;
      data_coding = d->data_coding;
      tlvs = &d->tlvs;
    }
    if (auto payload = tlvs->message_payload()) user_data = std::string(*payload);
    j["source"] = source;
    j["destination"] = destination;
    j["esm_class"] = esm_class;
    j["data_coding"] = data_coding;
    std::string_view text_bytes = user_data;
    smpp::DecodeOptions options;
    if (esm_class & 0x40) {
      auto udh = smpp::ParseUdh(user_data);
      if (udh.status == smpp::UdhStatus::kOk) {
        text_bytes = udh.user_data;
        options.udh_length = udh.header_length;
        if (udh.concat) {
          j["concat"] = {{"ref", udh.concat->ref}, {"total", udh.concat->total},
                         {"seq", udh.concat->seq}};
        }
      }
    } else if (auto ref = tlvs->sar_msg_ref_num()) {
      j["concat"] = {{"ref", *ref},
                     {"total", tlvs->sar_total_segments().value_or(0)},
                     {"seq", tlvs->sar_segment_seqnum().value_or(0)}};
    }
    auto decoded = smpp::DecodeSmsText(text_bytes, data_coding, options);
    j["text"] = decoded.utf8;
    j["text_ok"] = decoded.ok();
    j["raw_hex"] = Hex(user_data);
    const bool receipt = (esm_class & 0x04) != 0;
    j["receipt"] = receipt;
    if (receipt) {
      smpp::ReceiptTlvs rt;
      if (auto id = tlvs->receipted_message_id()) rt.receipted_message_id = *id;
      if (auto state = tlvs->message_state()) rt.message_state = *state;
      auto parsed = smpp::ParseDeliveryReceipt(user_data, rt);
      j["receipt_status"] = smpp::ToString(parsed.status);
      j["receipt_id"] = parsed.receipt.message_id;
      j["receipt_stat"] = smpp::ToString(parsed.receipt.state);
    }
    j["ack_status"] = ack_status;
    Emit(j);
    if (ack_interval_ms <= 0) {
      done(ack_status);
    } else {
      // Strictly one acknowledgement per interval, in arrival order.
      std::lock_guard lock(slow_mu_);
      const auto now = std::chrono::steady_clock::now();
      next_ack_ = std::max(next_ack_, now) + std::chrono::milliseconds(ack_interval_ms);
      auto timer = std::make_shared<asio::steady_timer>(*io, next_ack_);
      timer->async_wait([timer, done, status = ack_status](const boost::system::error_code&) {
        done(status);
      });
    }
    if (!receipt && !reply_text.empty() && reply) reply(source, reply_text);
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Runs one donagate SMPP link for interop tests"};
  std::string mode = "client", host = "127.0.0.1", system_id, password, bind = "transceiver";
  int port = 0, window = 10, tps = 0, throttle_max_retries = 3, max_pdu_size = 65536;
  int enquire_ms = 30000, response_ms = 5000, throttle_pause_ms = 1000;
  int backoff_min_ms = 200, backoff_max_ms = 2000, bind_timeout_ms = 5000, idle_ms = 0;
  uint32_t ack_status = 0;
  std::string reply_text, metrics_file, log_level = "info";
  std::vector<std::string> allowed_ips;
  app.add_option("--mode", mode, "client | server")->check(CLI::IsMember({"client", "server"}));
  app.add_option("--host", host, "client: SMSC host; server: listen address");
  app.add_option("--port", port, "client: SMSC port; server: listen port (0 = any)")->required();
  app.add_option("--system-id", system_id)->required();
  app.add_option("--password", password)->required();
  app.add_option("--bind", bind, "transceiver | receiver_transmitter")
      ->check(CLI::IsMember({"transceiver", "receiver_transmitter"}));
  app.add_option("--window", window);
  app.add_option("--tps", tps);
  app.add_option("--enquire-link-interval-ms", enquire_ms);
  app.add_option("--response-timeout-ms", response_ms);
  app.add_option("--throttle-pause-ms", throttle_pause_ms);
  app.add_option("--throttle-max-retries", throttle_max_retries);
  app.add_option("--backoff-min-ms", backoff_min_ms);
  app.add_option("--backoff-max-ms", backoff_max_ms);
  app.add_option("--bind-timeout-ms", bind_timeout_ms);
  app.add_option("--idle-timeout-ms", idle_ms);
  app.add_option("--max-pdu-size", max_pdu_size);
  app.add_option("--allowed-ip", allowed_ips, "server: allowlist entry (repeatable)");
  app.add_option("--ack-status", ack_status, "command_status for every deliver_sm_resp");
  int ack_interval_ms = 0;
  app.add_option("--ack-interval-ms", ack_interval_ms,
                 "acknowledge one MO per interval (a slow pipeline), 0 = at once");
  app.add_option("--reply", reply_text, "submit this text back to the source of every MO");
  app.add_option("--metrics-file", metrics_file, "write the Prometheus text here on exit");
  app.add_option("--log-level", log_level, "debug | info | warn | error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  CLI11_PARSE(app, argc, argv);

  {
    config::LogConfig log;
    log.level = log_level == "debug" ? config::LogLevel::kDebug
                : log_level == "warn" ? config::LogLevel::kWarn
                : log_level == "error" ? config::LogLevel::kError
                                       : config::LogLevel::kInfo;
    std::string error;
    if (!SetupLogging(log, &error)) std::cerr << "interop_link_peer: " << error << "\n";
  }

  asio::io_context io;
  prometheus::Registry registry;
  PrintingHandler handler;
  handler.ack_status = ack_status;
  handler.reply_text = reply_text;
  handler.ack_interval_ms = ack_interval_ms;
  handler.io = &io;
  LinkManager manager(io.get_executor(), registry, handler);

  SessionOptions session;
  session.link_name = "probe";
  session.operator_name = "probe_operator";
  session.system_id = system_id;
  session.password = password;
  session.enquire_link_interval = Millis(enquire_ms);
  session.response_timeout = Millis(response_ms);
  session.pdu_read_timeout = Millis(response_ms);
  session.bind_timeout = Millis(bind_timeout_ms);
  session.idle_timeout = Millis(idle_ms);
  session.window = window;
  session.throttle_pause = Millis(throttle_pause_ms);
  session.throttle_max_retries = throttle_max_retries;
  session.max_pdu_size = static_cast<uint32_t>(max_pdu_size);
  auto metrics = std::make_shared<LinkMetrics>(registry, "probe");

  std::shared_ptr<Link> link;
  std::shared_ptr<SmppServer> server;
  if (mode == "client") {
    ClientLinkOptions o;
    o.session = session;
    o.host = host;
    o.port = static_cast<uint16_t>(port);
    o.receiver_transmitter_pair = bind == "receiver_transmitter";
    o.tps = tps;
    o.backoff_min = Millis(backoff_min_ms);
    o.backoff_max = Millis(backoff_max_ms);
    link = SmppClientLink::Create(io.get_executor(), o, &handler, metrics);
  } else {
    ServerOptions o;
    o.session = session;
    o.session.role = SessionRole::kSmsc;
    o.session.system_id = "donagate";
    o.listen_host = host;
    o.port = static_cast<uint16_t>(port);
    o.account_system_id = system_id;
    o.account_password = password;
    o.allowed_ips = allowed_ips;
    o.tps = tps;
    o.failed_bind_delay = Millis(200);
    std::string error;
    server = SmppServer::Create(io.get_executor(), o, &handler, metrics, &error);
    if (!server) {
      std::cerr << "interop_link_peer: " << error << "\n";
      return 2;
    }
    if (!server->StartListening(&error)) {
      std::cerr << "interop_link_peer: " << error << "\n";
      return 1;
    }
    Emit({{"event", "listening"}, {"port", server->bound_port()}});
    link = server;
  }
  manager.Add(link);

  auto submit = [&](const std::string& destination, const std::string& text) {
    auto encoded = smpp::EncodeForSms(text);
    smpp::SubmitSm s;
    s.source_addr = "1407";
    s.dest_addr_ton = 1;
    s.dest_addr_npi = 1;
    s.destination_addr = destination;
    s.registered_delivery = 1;
    s.data_coding = encoded.data_coding;
    if (encoded.payload.size() <= smpp::kMaxShortMessageLength) s.short_message = encoded.payload;
    else s.tlvs.set_message_payload(encoded.payload);
    link->Submit(std::move(s), [destination](const SubmitResult& r) {
      Emit({{"event", "submit_result"}, {"destination", destination},
            {"outcome", std::string(ToString(r.outcome))}, {"status", r.command_status},
            {"message_id", r.message_id}, {"attempts", r.attempts}, {"sent", r.sent}});
    });
  };
  handler.reply = submit;

  bool stopping = false;
  auto stop = [&] {
    if (stopping) return;
    stopping = true;
    manager.StopAll(Millis(2000), [&] {
      Emit({{"event", "stopped"}});
      io.stop();
    });
  };

  // State changes, polled (Link has no state callback; /status polls the same way).
  asio::steady_timer poll(io);
  std::string last_state;
  std::function<void()> watch = [&] {
    auto status = link->Status();
    std::string state(ToString(status.state));
    if (state != last_state) {
      last_state = state;
      Emit({{"event", "state"}, {"state", state}, {"bound_sessions", status.bound_sessions},
            {"can_transmit", status.can_transmit}, {"last_error", status.last_error}});
    }
    poll.expires_after(Millis(20));
    poll.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) watch();
    });
  };

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) stop();
  });

  std::thread stdin_reader([&] {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.rfind("submit ", 0) == 0) {
        auto rest = line.substr(7);
        auto space = rest.find(' ');
        std::string destination = rest.substr(0, space);
        std::string text = space == std::string::npos ? "" : rest.substr(space + 1);
        asio::post(io, [&, destination, text] { submit(destination, text); });
      } else if (line == "stop") {
        asio::post(io, [&] { stop(); });
      }
    }
  });
  stdin_reader.detach();

  manager.StartAll();
  watch();
  std::vector<std::thread> threads;
  threads.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();

  if (!metrics_file.empty()) {
    std::ofstream out(metrics_file);
    out << prometheus::TextSerializer().Serialize(registry.Collect());
  }
  std::_Exit(0);  // the stdin reader may still be blocked in getline
}
