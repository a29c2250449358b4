#include "tools/loadgen/loadgen.h"

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol/pdu.h"
#include "protocol/delivery_receipt.h"
#include "protocol/text_codec.h"

namespace donagate::loadgen {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using smpp::CommandId;
namespace st = smpp::status;
using Clock = std::chrono::steady_clock;

namespace {

void Log(const std::string& line) { std::cerr << "loadgen: " << line << std::endl; }

bool IsTemporary(uint32_t status) {
  return status == st::kThrottled || status == st::kXTAppn || status == st::kMsgQFul;
}

// The text mix. Valid forms carry n; invalid texts are fixed, each with the reason the
// gateway should give (for the reader: the generator itself only needs "valid or not").
constexpr std::array<const char*, 4> kValidForms = {"CV %d", "cv %d", "Cv %d", "CV-%d"};
struct InvalidText {
  const char* utf8;
  bool ucs2;
};
constexpr std::array<InvalidText, 8> kInvalidTexts = {{
    {"HELLO", false},
    {"CV abc", false},
    {"CV 0", false},
    {"Ung ho CV 5", false},
    {"CV 5 ung ho", false},
    {"CV 101", false},  // more than max_units_per_message (100)
    {"Xin ch\xC3\xA0o", true},
    {"\xE1\xBB\xA6ng h\xE1\xBB\x99", true},  // "Ủng hộ"
}};

// UTF-8 (BMP only, as the texts above) -> UTF-16BE.
std::string Ucs2(std::string_view utf8) {
  std::string out;
  for (size_t i = 0; i < utf8.size();) {
    auto c = static_cast<unsigned char>(utf8[i]);
    uint32_t cp = c;
    size_t len = 1;
    if (c >= 0xE0 && i + 2 < utf8.size() + 0) {
      cp = ((c & 0x0Fu) << 12) | ((static_cast<unsigned char>(utf8[i + 1]) & 0x3Fu) << 6) |
           (static_cast<unsigned char>(utf8[i + 2]) & 0x3Fu);
      len = 3;
    } else if (c >= 0xC0 && i + 1 < utf8.size()) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(utf8[i + 1]) & 0x3Fu);
      len = 2;
    }
    out.push_back(static_cast<char>(cp >> 8));
    out.push_back(static_cast<char>(cp & 0xFF));
    i += len;
  }
  return out;
}

double Percentile(std::vector<int64_t>& values_us, double p) {
  if (values_us.empty()) return 0;
  size_t k = static_cast<size_t>(p * static_cast<double>(values_us.size() - 1) + 0.5);
  std::nth_element(values_us.begin(), values_us.begin() + static_cast<std::ptrdiff_t>(k), values_us.end());
  return static_cast<double>(values_us[k]) / 1000.0;
}

double Round3(double v) { return static_cast<double>(static_cast<int64_t>(v * 1000 + 0.5)) / 1000; }

enum class MoState : uint8_t { kInFlight, kWaiting, kAcked, kRejected };

struct Mo {
  uint64_t msisdn = 0;
  int64_t first_sent_us = -1;
  int64_t sent_us = -1;
  int64_t ack_us = -1;
  int64_t reply_us = -1;
  uint16_t attempts = 0;
  uint8_t form = 0;   // index into kValidForms or kInvalidTexts
  uint8_t units = 0;  // n for a valid text, 0 for an invalid one
  bool ucs2 = false;
  MoState state = MoState::kInFlight;
};

struct Receipt {
  std::string message_id;
  std::string subscriber;  // the reply's destination: the receipt's source
  std::string shortcode;
  int64_t due_us = 0;      // not sent before (submit_sm time + receipt_delay_ms)
};

// One in-flight deliver_sm: an MO (index) or a receipt.
struct Pending {
  int64_t mo = -1;
  Receipt receipt;
};

enum class Phase { kWaitingForBinds, kSending, kDraining, kWaitingForReplies, kDone };

class Generator;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Generator* gen, tcp::socket socket) : gen_(gen), socket_(std::move(socket)) {}
  void Start() { Read(); }
  bool CanDeliver() const { return bound_ && receives_ && !closed_; }
  size_t InFlight() const { return pending_.size(); }
  void SendDeliver(int64_t mo_index, const Mo& mo, Receipt receipt);
  void SendUnbind() {
    if (!bound_ || closed_) return;
    Queue(smpp::MakePdu(CommandId::kUnbind, next_seq_++));
    Flush();
  }
  void Flush();
  void Close(const std::string& why);
  bool closed() const { return closed_; }

 private:
  void Read();
  void Handle(const smpp::Pdu& pdu);
  void Queue(const smpp::Pdu& pdu) { smpp::Encode(pdu, &out_); }

  Generator* gen_;
  tcp::socket socket_;
  std::array<char, 64 * 1024> chunk_{};
  std::string in_;
  std::string out_, writing_buf_;
  bool writing_ = false;
  bool bound_ = false, receives_ = false, transmits_ = false, closed_ = false;
  bool close_after_write_ = false;
  uint32_t next_seq_ = 1;
  std::unordered_map<uint32_t, Pending> pending_;
  smpp::Pdu rx_;
  friend class Generator;
};

class Generator {
 public:
  Generator(asio::io_context& io, const Options& options)
      : io_(io), options_(options), tick_(io), rng_(options.seed), start_(Clock::now()) {}

  bool Listen(std::string* error) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(options_.host, ec);
    if (ec || !address.is_loopback()) {
      *error = "--host must be a loopback address (got '" + options_.host + "')";
      return false;
    }
    std::string ports;
    for (int i = 0; i < std::max(1, options_.listeners); ++i) {
      uint16_t port = options_.port == 0 ? 0 : static_cast<uint16_t>(options_.port + i);
      auto acceptor = std::make_unique<tcp::acceptor>(io_);
      tcp::endpoint ep(address, port);
      acceptor->open(ep.protocol(), ec);
      if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) acceptor->bind(ep, ec);
      if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        *error = "listen on " + options_.host + ":" + std::to_string(port) + ": " + ec.message();
        return false;
      }
      if (!ports.empty()) ports += ",";
      ports += std::to_string(acceptor->local_endpoint().port());
      acceptors_.push_back(std::move(acceptor));
    }
    for (auto& a : acceptors_) Accept(*a);
    std::cout << "loadgen listening on " << options_.host << " ports " << ports << std::endl;
    if (!options_.ready_file.empty()) {
      std::string tmp = options_.ready_file + ".tmp";
      std::ofstream(tmp) << ports << "\n";
      std::rename(tmp.c_str(), options_.ready_file.c_str());
    }
    if (options_.count > 0) {
      mos_.reserve(options_.count);
      by_msisdn_.reserve(options_.count * 2);
    }
    ArmTick();
    return true;
  }

  int64_t NowUs() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_).count();
  }

  void OnBound() {
    ++binds_;
    if (phase_ == Phase::kWaitingForBinds && BoundCount() >= options_.expect_binds) {
      phase_ = Phase::kSending;
      send_start_us_ = NowUs();
      last_token_us_ = send_start_us_;
      Log("all " + std::to_string(options_.expect_binds) + " binds up, sending");
    }
    Pump();
  }

  int BoundCount() const {
    int n = 0;
    for (auto& s : sessions_) n += s->CanDeliver() ? 1 : 0;
    return n;
  }

  // Fills every session's window from: receipts, due redeliveries, then new MOs.
  void Pump() {
    if (phase_ == Phase::kWaitingForBinds || phase_ == Phase::kDone) return;
    bool progress = true;
    while (progress) {
      progress = false;
      for (size_t k = 0; k < sessions_.size(); ++k) {
        auto& s = sessions_[(rr_ + k) % sessions_.size()];
        if (!s->CanDeliver() || s->InFlight() >= static_cast<size_t>(options_.window)) continue;
        // FIFO with one fixed delay: the front is always the first one due.
        if (!receipts_.empty() && receipts_.front().due_us <= NowUs()) {
          Receipt r = std::move(receipts_.front());
          receipts_.pop_front();
          s->SendDeliver(-1, Mo{}, std::move(r));
          ++receipts_sent_;
          progress = true;
          continue;
        }
        int64_t index = -1;
        if (!ready_.empty()) {
          index = ready_.front();
          ready_.pop_front();
          ++redeliveries_;
        } else if (MayGenerate()) {
          index = NewMo();
        }
        if (index < 0) continue;
        Mo& mo = mos_[static_cast<size_t>(index)];
        mo.state = MoState::kInFlight;
        mo.sent_us = NowUs();
        if (mo.first_sent_us < 0) mo.first_sent_us = mo.sent_us;
        ++mo.attempts;
        s->SendDeliver(index, mo, Receipt{});
        progress = true;
      }
    }
    if (!sessions_.empty()) rr_ = (rr_ + 1) % sessions_.size();
    for (auto& s : sessions_) s->Flush();
  }

  void OnDeliverResp(Pending pending, uint32_t status) {
    int64_t now = NowUs();
    if (pending.mo < 0) {  // a receipt
      if (status == st::kOk) {
        ++receipts_acked_;
      } else if (IsTemporary(status)) {
        receipts_.push_back(std::move(pending.receipt));
      } else {
        ++receipts_rejected_;
      }
      return;
    }
    Mo& mo = mos_[static_cast<size_t>(pending.mo)];
    if (status == st::kOk) {
      mo.state = MoState::kAcked;
      mo.ack_us = now;
      last_ack_us_ = now;
      ++acked_;
      return;
    }
    if (IsTemporary(status)) {
      ++temp_errors_;
      mo.state = MoState::kWaiting;
      delayed_.push_back({now + options_.redeliver_ms * 1000LL, pending.mo});
      return;
    }
    mo.state = MoState::kRejected;
    ++rejected_;
    if (rejected_ <= 5) Log("MO " + std::to_string(pending.mo) + " rejected: " + smpp::FormatCommandStatus(status));
  }

  // A connection dropped with these deliver_sm unanswered: redeliver them, as an SMSC does.
  void OnLost(std::unordered_map<uint32_t, Pending>& pending) {
    for (auto& [seq, p] : pending) {
      if (p.mo < 0) {
        receipts_.push_back(std::move(p.receipt));
      } else {
        mos_[static_cast<size_t>(p.mo)].state = MoState::kWaiting;
        ready_.push_back(p.mo);
      }
    }
    pending.clear();
  }

  // Returns the submit_sm_resp message id.
  std::string OnSubmit(const smpp::SubmitSm& submit) {
    ++submits_;
    int64_t now = NowUs();
    std::string_view dst = submit.destination_addr;
    if (!dst.empty() && dst.front() == '+') dst.remove_prefix(1);
    std::string digits(dst);
    if (digits.rfind("00", 0) == 0) digits.erase(0, 2);
    else if (digits.rfind('0', 0) == 0) digits = "84" + digits.substr(1);
    uint64_t number = 0;
    bool numeric = !digits.empty() && digits.size() <= 15;
    for (char c : digits) {
      if (c < '0' || c > '9') numeric = false;
      else number = number * 10 + static_cast<uint64_t>(c - '0');
    }
    auto it = numeric ? by_msisdn_.find(number) : by_msisdn_.end();
    if (it == by_msisdn_.end()) {
      ++unmatched_submits_;
    } else {
      Mo& mo = mos_[it->second];
      if (mo.reply_us < 0) {
        mo.reply_us = now;
        last_reply_us_ = now;
        ++replies_;
        if (mo.units > 0) ++valid_replies_;
      }
    }
    char id[24];
    std::snprintf(id, sizeof id, "%llX", static_cast<unsigned long long>(next_message_id_++));
    if (options_.receipts && (submit.registered_delivery & 0x03) != 0) {
      receipts_.push_back(Receipt{id, submit.destination_addr, submit.source_addr,
                                  NowUs() + int64_t{options_.receipt_delay_ms} * 1000});
    }
    return id;
  }

  void Finish() {
    if (phase_ == Phase::kDone) return;
    phase_ = Phase::kDone;
    for (auto& s : sessions_) s->SendUnbind();
    // Give the unbinds a moment on the wire, then stop.
    tick_.expires_after(std::chrono::milliseconds(300));
    tick_.async_wait([this](const boost::system::error_code&) {
      for (auto& s : sessions_) s->Close("finished");
      for (auto& a : acceptors_) {
        boost::system::error_code ec;
        a->close(ec);
      }
      io_.stop();
    });
  }

  nlohmann::json Summary() {
    std::vector<int64_t> ack, e2e, e2e_valid;
    ack.reserve(mos_.size());
    uint64_t valid_acked = 0, expected_units = 0, outstanding = 0;
    for (const Mo& mo : mos_) {
      if (mo.state == MoState::kAcked) {
        ack.push_back(mo.ack_us - mo.sent_us);
        if (mo.units > 0) {
          ++valid_acked;
          expected_units += mo.units;
        }
      } else if (mo.state != MoState::kRejected) {
        ++outstanding;
      }
      if (mo.reply_us >= 0) {
        e2e.push_back(mo.reply_us - mo.first_sent_us);
        if (mo.units > 0) e2e_valid.push_back(mo.reply_us - mo.first_sent_us);
      }
    }
    double elapsed = send_start_us_ >= 0 && last_ack_us_ > send_start_us_
                         ? static_cast<double>(last_ack_us_ - send_start_us_) / 1e6
                         : 0;
    double e2e_elapsed = send_start_us_ >= 0 && last_reply_us_ > send_start_us_
                             ? static_cast<double>(last_reply_us_ - send_start_us_) / 1e6
                             : 0;
    nlohmann::json j;
    j["messages"] = mos_.size();
    j["acked"] = acked_;
    j["rejected"] = rejected_;
    j["outstanding"] = outstanding;
    j["temp_errors"] = temp_errors_;
    j["redeliveries"] = redeliveries_;
    j["valid_acked"] = valid_acked;
    j["expected_units"] = expected_units;
    j["replies"] = replies_;
    j["valid_replies"] = valid_replies_;
    j["submit_sm"] = submits_;
    j["unmatched_submits"] = unmatched_submits_;
    j["receipts_sent"] = receipts_sent_;
    j["receipts_acked"] = receipts_acked_;
    j["binds"] = binds_;
    j["ack_p50_ms"] = Round3(Percentile(ack, 0.50));
    j["ack_p99_ms"] = Round3(Percentile(ack, 0.99));
    j["ack_max_ms"] = Round3(Percentile(ack, 1.0));
    j["e2e_p50_ms"] = Round3(Percentile(e2e, 0.50));
    j["e2e_p99_ms"] = Round3(Percentile(e2e, 0.99));
    j["e2e_valid_p99_ms"] = Round3(Percentile(e2e_valid, 0.99));
    j["elapsed_s"] = Round3(elapsed);
    j["acked_per_s"] = elapsed > 0 ? Round3(static_cast<double>(acked_) / elapsed) : 0.0;
    j["e2e_elapsed_s"] = Round3(e2e_elapsed);
    j["replies_per_s"] = e2e_elapsed > 0 ? Round3(static_cast<double>(replies_) / e2e_elapsed) : 0.0;
    j["valid_replies_per_s"] =
        e2e_elapsed > 0 ? Round3(static_cast<double>(valid_replies_) / e2e_elapsed) : 0.0;
    return j;
  }

  bool WriteAcked(std::string* error) const {
    if (options_.acked_file.empty()) return true;
    std::ofstream out(options_.acked_file);
    out << "seq,source,units,text\n";
    for (size_t i = 0; i < mos_.size(); ++i) {
      const Mo& mo = mos_[i];
      if (mo.state != MoState::kAcked) continue;
      out << i << ',' << mo.msisdn << ',' << static_cast<int>(mo.units) << ',' << TextOf(mo) << '\n';
    }
    out.flush();
    if (!out) {
      *error = "cannot write " + options_.acked_file;
      return false;
    }
    return true;
  }

  bool AllSettled() const { return acked_ + rejected_ == mos_.size() && !mos_.empty(); }

  static std::string TextOf(const Mo& mo) {
    if (mo.units > 0) {
      char buf[32];
      std::snprintf(buf, sizeof buf, kValidForms[mo.form], mo.units);
      return buf;
    }
    return kInvalidTexts[mo.form].utf8;
  }

  std::string MsisdnText(const Mo& mo) const { return std::to_string(mo.msisdn); }
  const Options& options() const { return options_; }
  void AddSession(std::shared_ptr<Session> s) { sessions_.push_back(std::move(s)); }
  void RemoveClosed() {
    sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                   [](const auto& s) { return s->closed(); }),
                    sessions_.end());
  }

 private:
  void Accept(tcp::acceptor& acceptor) {
    acceptor.async_accept([this, &acceptor](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec) return;  // closed at the end
      if (phase_ == Phase::kDone) return;
      socket.set_option(tcp::no_delay(true));
      auto s = std::make_shared<Session>(this, std::move(socket));
      sessions_.push_back(s);
      s->Start();
      Accept(acceptor);
    });
  }

  bool MayGenerate() {
    if (phase_ != Phase::kSending) return false;
    if (options_.count > 0 && mos_.size() >= options_.count) return false;
    if (options_.duration_s > 0 &&
        NowUs() - send_start_us_ >= static_cast<int64_t>(options_.duration_s * 1e6))
      return false;
    if (options_.rate > 0) {
      if (tokens_ < 1) return false;
      tokens_ -= 1;
    }
    return true;
  }

  int64_t NewMo() {
    Mo mo;
    uint64_t i = mos_.size();
    // A permutation of 0..10^8-1 (the multiplier is coprime with 10^8): unique subscribers
    // that look random.
    mo.msisdn = 84900000000ULL + (i * 2654435761ULL + options_.seed * 7919ULL) % 100000000ULL;
    std::uniform_real_distribution<double> u(0, 1);
    if (u(rng_) < options_.valid_share) {
      mo.form = static_cast<uint8_t>(rng_() % kValidForms.size());
      mo.units = static_cast<uint8_t>(1 + rng_() % 10);
      mo.ucs2 = u(rng_) < options_.ucs2_share;
    } else {
      mo.form = static_cast<uint8_t>(rng_() % kInvalidTexts.size());
      mo.ucs2 = kInvalidTexts[mo.form].ucs2;
    }
    by_msisdn_.emplace(mo.msisdn, static_cast<uint32_t>(i));
    mos_.push_back(mo);
    return static_cast<int64_t>(i);
  }

  void ArmTick() {
    tick_.expires_after(std::chrono::milliseconds(1));
    tick_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || phase_ == Phase::kDone) return;
      OnTick();
      if (phase_ != Phase::kDone) ArmTick();
    });
  }

  void OnTick() {
    int64_t now = NowUs();
    RemoveClosed();
    if (phase_ == Phase::kWaitingForBinds) {
      if (now > options_.bind_wait_s * 1000000LL) {
        Log("only " + std::to_string(BoundCount()) + " of " + std::to_string(options_.expect_binds) +
            " binds after " + std::to_string(options_.bind_wait_s) + " s; giving up");
        bind_failed_ = true;
        Finish();
      }
      return;
    }
    if (options_.rate > 0) {
      tokens_ = std::min(tokens_ + options_.rate * static_cast<double>(now - last_token_us_) / 1e6,
                         std::max(1.0, options_.rate * 0.02));
      last_token_us_ = now;
    }
    while (!delayed_.empty() && delayed_.front().first <= now) {
      ready_.push_back(delayed_.front().second);
      delayed_.pop_front();
    }
    Pump();
    if (options_.progress_s > 0 && now - last_progress_us_ >= options_.progress_s * 1000000LL) {
      last_progress_us_ = now;
      std::cerr << "loadgen: t=" << (now - send_start_us_) / 1000000 << "s sent=" << mos_.size()
                << " acked=" << acked_ << " temp_errors=" << temp_errors_ << " replies=" << replies_
                << " binds=" << BoundCount() << std::endl;
    }
    if (phase_ == Phase::kSending && !MayGenerateIgnoringRate()) {
      phase_ = Phase::kDraining;
      stop_us_ = now;
    }
    if (phase_ == Phase::kDraining) {
      if (AllSettled() || mos_.empty() || now - stop_us_ > static_cast<int64_t>(options_.drain_s * 1e6)) {
        phase_ = Phase::kWaitingForReplies;
        replies_start_us_ = now;
      }
    }
    if (phase_ == Phase::kWaitingForReplies) {
      int64_t last = std::max(last_reply_us_, replies_start_us_);
      size_t receipts_pending = receipts_.size();
      for (auto& s : sessions_) receipts_pending += s->InFlight();
      if ((replies_ >= acked_ && receipts_pending == 0) ||
          now - last > static_cast<int64_t>(options_.reply_idle_s * 1e6) ||
          now - replies_start_us_ > static_cast<int64_t>(options_.reply_wait_s * 1e6)) {
        Finish();
      }
    }
  }

  bool MayGenerateIgnoringRate() const {
    if (options_.count > 0 && mos_.size() >= options_.count) return false;
    if (options_.duration_s > 0 &&
        NowUs() - send_start_us_ >= static_cast<int64_t>(options_.duration_s * 1e6))
      return false;
    return true;
  }

 public:
  bool bind_failed_ = false;

 private:
  asio::io_context& io_;
  Options options_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  std::vector<std::shared_ptr<Session>> sessions_;
  asio::steady_timer tick_;
  std::mt19937_64 rng_;
  Clock::time_point start_;
  Phase phase_ = Phase::kWaitingForBinds;
  std::vector<Mo> mos_;
  std::unordered_map<uint64_t, uint32_t> by_msisdn_;
  std::deque<int64_t> ready_;                          // due for redelivery
  std::deque<std::pair<int64_t, int64_t>> delayed_;    // (due_us, mo), in due order
  std::deque<Receipt> receipts_;
  size_t rr_ = 0;
  double tokens_ = 0;
  int64_t last_token_us_ = 0;
  int64_t send_start_us_ = -1, stop_us_ = 0, replies_start_us_ = 0;
  int64_t last_ack_us_ = -1, last_reply_us_ = -1, last_progress_us_ = 0;
  uint64_t next_message_id_ = 0x10000;
  uint64_t acked_ = 0, rejected_ = 0, temp_errors_ = 0, redeliveries_ = 0;
  uint64_t replies_ = 0, valid_replies_ = 0, submits_ = 0, unmatched_submits_ = 0;
  uint64_t receipts_sent_ = 0, receipts_acked_ = 0, receipts_rejected_ = 0;
  int binds_ = 0;
};

void Session::SendDeliver(int64_t mo_index, const Mo& mo, Receipt receipt) {
  uint32_t seq = next_seq_++;
  if (next_seq_ > 0x7FFFFFFF) next_seq_ = 1;
  smpp::Pdu pdu = smpp::MakePdu(CommandId::kDeliverSm, seq);
  auto& d = std::get<smpp::DeliverSm>(pdu.body);
  if (mo_index >= 0) {
    d.source_addr_ton = 1;
    d.source_addr_npi = 1;
    d.source_addr = gen_->MsisdnText(mo);
    d.dest_addr_npi = 1;
    d.destination_addr = gen_->options().shortcode;
    std::string text = Generator::TextOf(mo);
    if (mo.ucs2) {
      d.data_coding = 0x08;
      d.short_message = Ucs2(text);
    } else {
      d.data_coding = 0x00;
      smpp::Utf8ToGsm7(text, &d.short_message);
    }
    if (gen_->options().mo_id_tlv != 0) {
      d.tlvs.Append(gen_->options().mo_id_tlv, "lg-" + std::to_string(mo_index));
    }
  } else {
    d.source_addr_ton = 1;
    d.source_addr_npi = 1;
    d.source_addr = receipt.subscriber;
    d.destination_addr = receipt.shortcode;
    d.esm_class = 0x04;
    d.short_message = smpp::FormatReceiptText(receipt.message_id, "DELIVRD", smpp::ReceiptDate10Now());
    d.tlvs.set_receipted_message_id(receipt.message_id);
    d.tlvs.set_message_state(2);  // DELIVERED
  }
  Queue(pdu);
  pending_.emplace(seq, Pending{mo_index, std::move(receipt)});
}

void Session::Flush() {
  if (writing_ || out_.empty() || closed_) return;
  writing_ = true;
  writing_buf_.swap(out_);
  out_.clear();
  asio::async_write(socket_, asio::buffer(writing_buf_),
                    [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                      self->writing_ = false;
                      self->writing_buf_.clear();
                      if (ec) {
                        self->Close("write: " + ec.message());
                        return;
                      }
                      if (self->close_after_write_ && self->out_.empty()) {
                        self->Close("unbind");
                        return;
                      }
                      self->Flush();
                    });
}

void Session::Close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  if (!pending_.empty()) {
    Log("session closed (" + why + ") with " + std::to_string(pending_.size()) + " deliver_sm unanswered");
    gen_->OnLost(pending_);
  }
}

void Session::Read() {
  if (closed_) return;
  socket_.async_read_some(asio::buffer(chunk_), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                            size_t n) {
    if (ec) {
      self->Close("read: " + ec.message());
      return;
    }
    self->in_.append(self->chunk_.data(), n);
    size_t off = 0;
    for (;;) {
      std::string_view rest = std::string_view(self->in_).substr(off);
      auto frame = smpp::CheckFrame(rest);
      if (frame.state == smpp::FrameState::kNeedMore) break;
      if (frame.state == smpp::FrameState::kInvalid) {
        if (auto a = smpp::AnswerFor(frame.error)) self->Queue(*a);
        self->Flush();
        self->Close("bad command_length");
        return;
      }
      auto r = smpp::Decode(rest.substr(0, frame.command_length), &self->rx_);
      off += frame.command_length;
      if (!r.ok()) {
        Log("malformed PDU: " + smpp::Describe(r));
        if (auto a = smpp::AnswerFor(r)) self->Queue(*a);
        if (r.close_connection) {
          self->Flush();
          self->Close("framing lost");
          return;
        }
        continue;
      }
      self->Handle(self->rx_);
      if (self->closed_) return;
    }
    self->in_.erase(0, off);
    self->gen_->Pump();
    self->Flush();
    self->Read();
  });
}

void Session::Handle(const smpp::Pdu& pdu) {
  const auto& h = pdu.header;
  switch (h.command_id) {
    case CommandId::kBindTransceiver:
    case CommandId::kBindReceiver:
    case CommandId::kBindTransmitter: {
      const auto& b = std::get<smpp::BindBody>(pdu.body);
      const Options& o = gen_->options();
      uint32_t status = st::kOk;
      if (bound_) status = st::kAlyBnd;
      else if (!o.system_id.empty() && b.system_id != o.system_id) status = st::kInvSysId;
      else if (!o.password.empty() && b.password != o.password) status = st::kInvPaswd;
      smpp::Pdu resp = smpp::MakeResponseFor(h, status);
      if (status == st::kOk) {
        std::get<smpp::BindRespBody>(resp.body).system_id = "loadgen";
        bound_ = true;
        receives_ = h.command_id != CommandId::kBindTransmitter;
        transmits_ = h.command_id != CommandId::kBindReceiver;
      }
      Queue(resp);
      Flush();
      if (status == st::kOk) gen_->OnBound();
      return;
    }
    case CommandId::kEnquireLink:
      Queue(smpp::MakeResponseFor(h, st::kOk));
      return;
    case CommandId::kUnbind:
      Queue(smpp::MakeResponseFor(h, st::kOk));
      close_after_write_ = true;
      bound_ = false;
      return;
    case CommandId::kSubmitSm: {
      if (!bound_ || !transmits_) {
        Queue(smpp::MakeResponseFor(h, st::kInvBndSts));
        return;
      }
      smpp::Pdu resp = smpp::MakeResponseFor(h, st::kOk);
      std::get<smpp::SubmitSmResp>(resp.body).message_id = gen_->OnSubmit(std::get<smpp::SubmitSm>(pdu.body));
      Queue(resp);
      return;
    }
    case CommandId::kDeliverSmResp:
    case CommandId::kGenericNack: {
      auto it = pending_.find(h.sequence_number);
      if (it == pending_.end()) return;
      Pending p = std::move(it->second);
      pending_.erase(it);
      uint32_t status = h.command_status;
      if (h.command_id == CommandId::kGenericNack && status == st::kOk) status = st::kSysErr;
      gen_->OnDeliverResp(std::move(p), status);
      return;
    }
    case CommandId::kUnbindResp:
      Close("unbound");
      return;
    case CommandId::kEnquireLinkResp:
      return;
    default:
      if (!smpp::IsResponse(h.command_id)) Queue(smpp::MakeResponseFor(h, st::kInvCmdId));
      return;
  }
}

}  // namespace

int Run(const Options& options, nlohmann::json* summary) {
  asio::io_context io(1);
  Generator gen(io, options);
  std::string error;
  if (!gen.Listen(&error)) {
    Log(error);
    (*summary)["error"] = error;
    return 1;
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) gen.Finish();
  });
  io.run();
  *summary = gen.Summary();
  std::string write_error;
  bool wrote = gen.WriteAcked(&write_error);
  if (!wrote) Log(write_error);
  if (!options.summary_file.empty()) std::ofstream(options.summary_file) << summary->dump() << "\n";
  return gen.bind_failed_ || !wrote || !gen.AllSettled() ? 1 : 0;
}

}  // namespace donagate::loadgen
