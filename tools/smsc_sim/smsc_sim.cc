#include "tools/smsc_sim/smsc_sim.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>

#include "protocol/delivery_receipt.h"
#include "protocol/text_codec.h"

namespace donagate::smsc_sim {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using smpp::CommandId;
namespace st = smpp::status;
using Clock = std::chrono::steady_clock;

namespace {

void Log(const std::string& line) { std::cerr << "smsc_sim: " << line << std::endl; }

}  // namespace

struct Simulator::Part {
  int mo_index = -1;         // index into options.mos, -1 for a receipt
  std::string receipt_for;   // message id, for receipts
  int part_no = 1;
  int total = 1;
  smpp::Pdu pdu;
  int attempts = 0;
  bool acked = false;
  bool in_flight = false;
  bool gave_up = false;
  uint32_t last_status = 0;
  std::vector<uint32_t> statuses;  // every answer received, in order
  int timeouts = 0;                // attempts that got no answer within --response-timeout-ms
};

struct Simulator::Session : std::enable_shared_from_this<Simulator::Session> {
  Session(Simulator* sim, tcp::socket socket)
      : sim(sim), socket(std::move(socket)), enquire_timer(sim->io_), timeout_timer(sim->io_) {}

  void Start() {
    boost::system::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    remote = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    Read();
    if (sim->options_.enquire_link_interval_s > 0) ArmEnquire();
    if (sim->options_.response_timeout_ms > 0) ArmTimeouts();
  }

  // A real SMSC gives up on an unanswered deliver_sm after its response timeout and
  // redelivers it later (as a new PDU); an answer that comes after that is ignored.
  void ArmTimeouts() {
    const int timeout = sim->options_.response_timeout_ms;
    timeout_timer.expires_after(std::chrono::milliseconds(std::clamp(timeout / 4, 10, 100)));
    timeout_timer.async_wait([self = shared_from_this(), timeout](const boost::system::error_code& ec) {
      if (ec || self->closed) return;
      const auto now = Clock::now();
      std::vector<uint32_t> expired;
      for (const auto& [seq, at] : self->sent_at) {
        if (now - at >= std::chrono::milliseconds(timeout)) expired.push_back(seq);
      }
      for (uint32_t seq : expired) {
        self->sent_at.erase(seq);
        auto it = self->in_flight.find(seq);
        if (it == self->in_flight.end()) continue;
        auto part = it->second;
        self->in_flight.erase(it);
        part->in_flight = false;
        part->timeouts++;
        self->sim->Requeue(part, true);
      }
      if (!expired.empty()) self->sim->Pump();
      self->ArmTimeouts();
    });
  }

  void ArmEnquire() {
    enquire_timer.expires_after(std::chrono::seconds(sim->options_.enquire_link_interval_s));
    enquire_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->closed) return;
      if (self->bound) self->Send(smpp::MakePdu(CommandId::kEnquireLink, self->next_seq++));
      self->ArmEnquire();
    });
  }

  void Read() {
    if (closed) return;
    socket.async_read_some(asio::buffer(chunk), [self = shared_from_this()](
                                                    const boost::system::error_code& ec, size_t n) {
      if (ec) {
        self->Close("read: " + ec.message());
        return;
      }
      self->buffer.append(self->chunk.data(), n);
      for (;;) {
        auto frame = smpp::CheckFrame(self->buffer);
        if (frame.state == smpp::FrameState::kNeedMore) break;
        if (frame.state == smpp::FrameState::kInvalid) {
          if (auto a = smpp::AnswerFor(frame.error)) self->Send(*a);
          self->Close("bad command_length");
          return;
        }
        smpp::Pdu pdu;
        auto r = smpp::Decode(std::string_view(self->buffer).substr(0, frame.command_length), &pdu);
        self->buffer.erase(0, frame.command_length);
        if (!r.ok()) {
          Log("malformed PDU from " + self->remote + ": " +
              std::string(smpp::DecodeErrorName(r.error)));
          if (auto a = smpp::AnswerFor(r)) self->Send(*a);
          if (r.close_connection) {
            self->Close("framing lost");
            return;
          }
          continue;
        }
        self->Handle(pdu);
        if (self->closed) return;
      }
      self->Read();
    });
  }

  void Handle(const smpp::Pdu& pdu) {
    const auto& h = pdu.header;
    switch (h.command_id) {
      case CommandId::kBindTransceiver:
      case CommandId::kBindReceiver:
      case CommandId::kBindTransmitter: {
        const auto& b = std::get<smpp::BindBody>(pdu.body);
        uint32_t status = st::kOk;
        if (bound) status = st::kAlyBnd;
        else if (b.system_id != sim->options_.system_id) status = st::kInvSysId;
        else if (b.password != sim->options_.password) status = st::kInvPaswd;
        smpp::Pdu resp = smpp::MakeResponseFor(h, status);
        if (status == st::kOk) {
          std::get<smpp::BindRespBody>(resp.body).system_id = "smsc_sim";
          bound = true;
          receives = h.command_id != CommandId::kBindTransmitter;
          transmits = h.command_id != CommandId::kBindReceiver;
          ++sim->binds_ok_;
          Log("bound " + std::string(smpp::CommandIdName(h.command_id)) + " system_id=" +
              b.system_id + " from " + remote);
        } else {
          ++sim->binds_failed_;
          Log("bind refused (" + smpp::FormatCommandStatus(status) + ") system_id=" + b.system_id);
        }
        Send(resp);
        if (status != st::kOk && status != st::kAlyBnd) CloseAfterWrite("bind refused");
        sim->Pump();
        return;
      }
      case CommandId::kEnquireLink:
        ++sim->enquire_links_received_;
        Send(smpp::MakeResponseFor(h, st::kOk));
        return;
      case CommandId::kUnbind:
        ++sim->unbinds_received_;
        Send(smpp::MakeResponseFor(h, st::kOk));
        CloseAfterWrite("unbind");
        return;
      case CommandId::kSubmitSm:
        if (!bound || !transmits) {
          Send(smpp::MakeResponseFor(h, st::kInvBndSts));
          return;
        }
        sim->OnSubmit(*this, pdu);
        return;
      case CommandId::kDeliverSmResp:
      case CommandId::kGenericNack: {
        auto it = in_flight.find(h.sequence_number);
        if (it == in_flight.end()) return;  // unknown, or answered after its timeout: ignored
        sent_at.erase(h.sequence_number);
        auto part = it->second;
        in_flight.erase(it);
        part->in_flight = false;
        sim->OnPartAcked(part, h.command_status == st::kOk &&
                                       h.command_id == CommandId::kGenericNack
                                   ? st::kSysErr
                                   : h.command_status);
        sim->Pump();
        return;
      }
      case CommandId::kEnquireLinkResp:
      case CommandId::kUnbindResp:
        return;
      default:
        if (auto resp_id = smpp::ResponseIdFor(h.command_id)) {
          (void)resp_id;
          Send(smpp::MakeResponseFor(h, st::kInvCmdId));
        }
        return;
    }
  }

  void Send(const smpp::Pdu& pdu) {
    if (closed) return;
    std::string wire;
    smpp::Encode(pdu, &wire);
    outq.push_back(std::move(wire));
    Flush();
  }

  void Flush() {
    if (writing || outq.empty() || closed) return;
    writing = true;
    current = std::move(outq.front());
    outq.pop_front();
    asio::async_write(socket, asio::buffer(current), [self = shared_from_this()](
                                                         const boost::system::error_code& ec, size_t) {
      self->writing = false;
      if (ec) {
        self->Close("write: " + ec.message());
        return;
      }
      if (self->outq.empty() && self->close_after_write) {
        self->Close(self->close_reason);
        return;
      }
      self->Flush();
    });
  }

  void CloseAfterWrite(const std::string& reason) {
    close_after_write = true;
    close_reason = reason;
    bound = false;
    if (!writing && outq.empty()) Close(reason);
  }

  void Close(const std::string& reason) {
    if (closed) return;
    closed = true;
    bound = false;
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    enquire_timer.cancel();
    timeout_timer.cancel();
    sent_at.clear();
    Log("connection " + remote + " closed: " + reason);
    auto parts = std::move(in_flight);
    in_flight.clear();
    for (auto& [seq, part] : parts) {
      part->in_flight = false;
      sim->Requeue(part, false);
    }
    std::erase_if(sim->sessions_, [this](const auto& s) { return s.get() == this; });
    sim->Pump();
  }

  Simulator* sim;
  tcp::socket socket;
  asio::steady_timer enquire_timer;
  asio::steady_timer timeout_timer;
  std::map<uint32_t, Clock::time_point> sent_at;  // in-flight deliver_sm by sequence number
  std::string remote;
  std::array<char, 8192> chunk{};
  std::string buffer;
  std::deque<std::string> outq;
  std::string current;
  bool writing = false;
  bool close_after_write = false;
  std::string close_reason;
  bool closed = false;
  bool bound = false;
  bool receives = false;
  bool transmits = false;
  uint32_t next_seq = 1;
  std::map<uint32_t, std::shared_ptr<Part>> in_flight;
};

bool LoadMoFile(const std::string& path, std::vector<MoSpec>* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read " + path;
    return false;
  }
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    auto c1 = line.find(',');
    auto c2 = c1 == std::string::npos ? c1 : line.find(',', c1 + 1);
    if (c2 == std::string::npos) {
      *error = path + ":" + std::to_string(n) + ": expected source,destination,text";
      return false;
    }
    MoSpec mo{line.substr(0, c1), line.substr(c1 + 1, c2 - c1 - 1), line.substr(c2 + 1)};
    for (size_t p; (p = mo.text.find("\\n")) != std::string::npos;) mo.text.replace(p, 2, "\n");
    out->push_back(std::move(mo));
  }
  return true;
}

Simulator::Simulator(asio::io_context& io, SimOptions options)
    : io_(io), options_(std::move(options)), acceptor_(io), pump_timer_(io), rng_(options_.seed) {
  uint8_t ref = 1;
  for (size_t i = 0; i < options_.mos.size(); ++i) {
    const MoSpec& mo = options_.mos[i];
    std::vector<std::string> parts;
    uint8_t data_coding = 0;
    uint8_t esm_flags = 0;
    if (options_.payload_in_tlv) {
      auto enc = smpp::EncodeForSms(mo.text);
      data_coding = enc.data_coding;
      parts.push_back(enc.payload);
    } else {
      auto split = smpp::SplitForSms(mo.text, ref++);
      data_coding = split.data_coding;
      esm_flags = split.esm_class_flags;
      parts = split.parts;
    }
    for (size_t p = 0; p < parts.size(); ++p) {
      auto part = std::make_shared<Part>();
      part->mo_index = static_cast<int>(i);
      part->part_no = static_cast<int>(p + 1);
      part->total = static_cast<int>(parts.size());
      part->pdu = smpp::MakePdu(CommandId::kDeliverSm, 0);
      auto& body = std::get<smpp::DeliverSm>(part->pdu.body);
      body.source_addr_ton = 1;
      body.source_addr_npi = 1;
      body.source_addr = mo.source;
      body.destination_addr = mo.destination;
      body.data_coding = data_coding;
      body.esm_class = esm_flags;
      if (options_.payload_in_tlv) body.tlvs.set_message_payload(parts[p]);
      else body.short_message = parts[p];
      if (options_.mo_id_tlv > 0) {
        std::string id = "mo" + std::to_string(i) + "p" + std::to_string(p + 1);
        body.tlvs.Set(static_cast<uint16_t>(options_.mo_id_tlv), id + std::string(1, '\0'));
      }
      all_parts_.push_back(part);
      queue_.push_back(part);
    }
  }
}

Simulator::~Simulator() = default;

bool Simulator::Start(std::string* error) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options_.listen_host, ec);
  if (ec) {
    *error = "bad listen address " + options_.listen_host;
    return false;
  }
  tcp::endpoint ep(address, options_.listen_port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "listen " + options_.listen_host + ":" + std::to_string(options_.listen_port) + ": " +
             ec.message();
    return false;
  }
  port_ = acceptor_.local_endpoint().port();
  Log("listening on " + options_.listen_host + ":" + std::to_string(port_) + " mo=" +
      std::to_string(options_.mos.size()) + " parts=" + std::to_string(all_parts_.size()));
  Accept();
  return true;
}

void Simulator::Accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec) return;
    socket.set_option(tcp::no_delay(true));
    auto session = std::make_shared<Session>(this, std::move(socket));
    sessions_.push_back(session);
    session->Start();
    Accept();
  });
}

void Simulator::Shutdown() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  pump_timer_.cancel();
  auto sessions = sessions_;
  for (auto& s : sessions) s->Close("shutdown");
}

void Simulator::ArmPump(Clock::duration wait) {
  if (pump_armed_) return;
  pump_armed_ = true;
  pump_timer_.expires_after(wait);
  pump_timer_.async_wait([this](const boost::system::error_code& ec) {
    pump_armed_ = false;
    if (!ec) Pump();
  });
}

void Simulator::Pump() {
  while (!queue_.empty()) {
    // Pick a bound receiving session with window space, round-robin.
    std::shared_ptr<Session> target;
    for (size_t i = 0; i < sessions_.size(); ++i) {
      auto& s = sessions_[(rr_ + i) % sessions_.size()];
      if (s->bound && s->receives && !s->closed &&
          static_cast<int>(s->in_flight.size()) < options_.window) {
        target = s;
        rr_ = (rr_ + i + 1) % sessions_.size();
        break;
      }
    }
    if (!target) return;
    if (options_.mo_rate > 0) {
      auto now = Clock::now();
      if (now < next_send_) {
        ArmPump(next_send_ - now);
        return;
      }
      next_send_ = std::max(next_send_, now - std::chrono::milliseconds(100)) +
                   std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(1.0 / options_.mo_rate));
    }
    auto part = queue_.front();
    queue_.pop_front();
    part->attempts++;
    part->in_flight = true;
    smpp::Pdu pdu = part->pdu;
    pdu.header.sequence_number = target->next_seq++;
    target->in_flight[pdu.header.sequence_number] = part;
    if (options_.response_timeout_ms > 0) target->sent_at[pdu.header.sequence_number] = Clock::now();
    target->Send(pdu);
    ++deliver_sent_;
    if (options_.drop_after_mo > 0 && !dropped_once_ &&
        deliver_sent_ >= static_cast<uint64_t>(options_.drop_after_mo)) {
      dropped_once_ = true;
      ++connections_dropped_;
      // Let the write reach the socket, then cut the connection without unbind.
      auto victim = target;
      asio::post(io_, [victim] { victim->Close("dropped on purpose (--drop-after-mo)"); });
      return;
    }
  }
  CheckDone();
}

void Simulator::Requeue(std::shared_ptr<Part> part, bool failed_now) {
  if (part->acked) return;
  if (!options_.redeliver_unacked ||
      (options_.max_attempts > 0 && part->attempts >= options_.max_attempts)) {
    part->gave_up = true;
    CheckDone();
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(
      io_, std::chrono::milliseconds(failed_now ? options_.redeliver_delay_ms : 0));
  timer->async_wait([this, timer, part](const boost::system::error_code& ec) {
    if (ec) return;
    queue_.push_back(part);
    Pump();
  });
}

void Simulator::OnPartAcked(const std::shared_ptr<Part>& part, uint32_t status) {
  part->last_status = status;
  part->statuses.push_back(status);
  if (status == st::kOk) {
    part->acked = true;
    if (part->mo_index < 0) ++receipts_acked_;
    CheckDone();
    return;
  }
  Requeue(part, true);
}

std::string Simulator::NextMessageId() {
  const uint64_t id = next_message_id_++;
  if (options_.message_id_hex) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08llx", static_cast<unsigned long long>(id));
    return buf;
  }
  return std::to_string(id);
}

void Simulator::OnSubmit(Session& session, const smpp::Pdu& pdu) {
  const auto& submit = std::get<smpp::SubmitSm>(pdu.body);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  nlohmann::json record;
  record["source"] = submit.source_addr;
  record["destination"] = submit.destination_addr;
  record["data_coding"] = submit.data_coding;
  record["esm_class"] = submit.esm_class;
  record["registered_delivery"] = submit.registered_delivery;
  std::string_view user_data = submit.short_message;
  if (auto payload = submit.tlvs.message_payload()) user_data = *payload;
  std::string udh_note;
  if (submit.esm_class & 0x40) {
    // Report the text after the UDH.
    if (!user_data.empty() && static_cast<size_t>(user_data[0]) + 1 <= user_data.size()) {
      user_data.remove_prefix(static_cast<uint8_t>(user_data[0]) + 1);
    }
  }
  record["text"] = smpp::DecodeSmsText(user_data, submit.data_coding).utf8;
  if (options_.throttle_rate > 0 && coin(rng_) < options_.throttle_rate) {
    ++throttled_;
    record["status"] = "ESME_RTHROTTLED";
    submits_.push_back(record);
    session.Send(smpp::MakeResponseFor(pdu.header, st::kThrottled));
    return;
  }
  const std::string id = NextMessageId();
  smpp::Pdu resp = smpp::MakeResponseFor(pdu.header, st::kOk);
  std::get<smpp::SubmitSmResp>(resp.body).message_id = id;
  session.Send(resp);
  record["status"] = "ESME_ROK";
  record["message_id"] = id;
  submits_.push_back(record);
  if (options_.receipts && (submit.registered_delivery & 0x03) != 0) QueueReceipt(id, submit);
  CheckDone();
}

void Simulator::QueueReceipt(const std::string& message_id, const smpp::SubmitSm& submit) {
  std::string receipt_id = message_id;
  if (options_.receipt_id_format == "decimal" && options_.message_id_hex) {
    receipt_id = std::to_string(std::stoull(message_id, nullptr, 16));
  } else if (options_.receipt_id_format == "hex" && !options_.message_id_hex) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%llX", std::stoull(message_id));
    receipt_id = buf;
  }
  auto part = std::make_shared<Part>();
  part->receipt_for = message_id;
  part->pdu = smpp::MakePdu(CommandId::kDeliverSm, 0);
  auto& body = std::get<smpp::DeliverSm>(part->pdu.body);
  body.source_addr_ton = submit.dest_addr_ton;
  body.source_addr_npi = submit.dest_addr_npi;
  body.source_addr = submit.destination_addr;
  body.dest_addr_ton = submit.source_addr_ton;
  body.dest_addr_npi = submit.source_addr_npi;
  body.destination_addr = submit.source_addr;
  body.esm_class = 0x04;
  const bool delivered = options_.receipt_stat == "DELIVRD";
  body.short_message = smpp::FormatReceiptText(receipt_id, options_.receipt_stat, smpp::ReceiptDate10Now());
  body.tlvs.set_receipted_message_id(receipt_id);
  body.tlvs.set_message_state(delivered ? 2 : 5);
  all_parts_.push_back(part);
  ++receipts_queued_;
  auto timer = std::make_shared<asio::steady_timer>(
      io_, std::chrono::milliseconds(options_.receipt_delay_ms));
  timer->async_wait([this, timer, part](const boost::system::error_code& ec) {
    if (ec) return;
    queue_.push_back(part);
    Pump();
  });
}

bool Simulator::done() const {
  for (const auto& p : all_parts_) {
    if (!p->acked && !p->gave_up) return false;
  }
  if (options_.expect_submits > 0 &&
      static_cast<int>(submits_.size()) - throttled_ < options_.expect_submits) {
    return false;
  }
  if (options_.receipts) {
    // Every accepted submit asking for a receipt has had it queued (QueueReceipt is immediate).
  }
  return true;
}

void Simulator::CheckDone() {
  if (options_.exit_when_done && done()) {
    Log("all traffic acknowledged; exiting");
    asio::post(io_, [this] {
      Shutdown();
      io_.stop();
    });
  }
}

nlohmann::json Simulator::Report() const {
  nlohmann::json mos = nlohmann::json::array();
  int acked = 0;
  int unacked = 0;
  int redeliveries = 0;
  int timeouts = 0;
  for (size_t i = 0; i < options_.mos.size(); ++i) {
    nlohmann::json mo;
    mo["index"] = i;
    mo["source"] = options_.mos[i].source;
    mo["destination"] = options_.mos[i].destination;
    mo["text"] = options_.mos[i].text;
    bool all_acked = true;
    int attempts = 0;
    nlohmann::json statuses = nlohmann::json::array();
    int parts = 0;
    int mo_timeouts = 0;
    for (const auto& p : all_parts_) {
      if (p->mo_index != static_cast<int>(i)) continue;
      ++parts;
      all_acked = all_acked && p->acked;
      attempts += p->attempts;
      redeliveries += std::max(0, p->attempts - 1);
      timeouts += p->timeouts;
      mo_timeouts += p->timeouts;
      for (uint32_t s : p->statuses) {
        auto name = smpp::CommandStatusName(s);
        statuses.push_back(name.empty() ? smpp::FormatCommandStatus(s) : std::string(name));
      }
    }
    mo["parts"] = parts;
    mo["acked"] = all_acked;
    mo["attempts"] = attempts;
    mo["statuses"] = statuses;
    mo["timeouts"] = mo_timeouts;
    (all_acked ? acked : unacked)++;
    mos.push_back(mo);
  }
  nlohmann::json report;
  report["mo_total"] = options_.mos.size();
  report["mo_acked"] = acked;
  report["mo_unacked"] = unacked;
  report["mo_redeliveries"] = redeliveries;
  report["mo_response_timeouts"] = timeouts;
  report["deliver_sm_sent"] = deliver_sent_;
  report["binds_ok"] = binds_ok_;
  report["binds_failed"] = binds_failed_;
  report["enquire_links_received"] = enquire_links_received_;
  report["unbinds_received"] = unbinds_received_;
  report["connections_dropped"] = connections_dropped_;
  report["submits_total"] = submits_.size();
  report["submits_throttled"] = throttled_;
  report["receipts_queued"] = receipts_queued_;
  report["receipts_acked"] = receipts_acked_;
  report["mos"] = mos;
  report["submits"] = submits_;
  return report;
}

}  // namespace donagate::smsc_sim
