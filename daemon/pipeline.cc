#include "daemon/pipeline.h"

#include "daemon/reply_templates.h"

#include <fstream>
#include <functional>

#include <spdlog/spdlog.h>

#include "billing/domain/campaign.h"
#include "billing/domain/donation_parser.h"
#include "billing/domain/keywords.h"
#include "billing/domain/money.h"
#include "billing/domain/msisdn.h"
#include "billing/domain/reply_template.h"
#include "daemon/logging.h"
#include "daemon/metrics.h"
#include "daemon/receipts.h"
#include "protocol/message_id.h"
#include "protocol/text_codec.h"
#include "protocol/udh.h"

namespace donagate::daemon {

namespace {

using SysClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

constexpr uint8_t kEsmClassTypeMask = 0x3C;
constexpr uint8_t kEsmClassReceipt = 0x04;

smpp::MessageIdMode ToIdMode(config::MessageIdNormalization n) {
  switch (n) {
    case config::MessageIdNormalization::kExact: return smpp::MessageIdMode::kExact;
    case config::MessageIdNormalization::kTrimLeadingZeros: return smpp::MessageIdMode::kTrimLeadingZeros;
    case config::MessageIdNormalization::kResponseHexReceiptDecimal:
      return smpp::MessageIdMode::kResponseHexReceiptDecimal;
    case config::MessageIdNormalization::kResponseDecimalReceiptHex:
      return smpp::MessageIdMode::kResponseDecimalReceiptHex;
  }
  return smpp::MessageIdMode::kTrimLeadingZeros;
}

// A TLV value as a printable id: trailing NULs dropped; anything non-printable hex-encoded.
std::string PrintableId(std::string_view raw) {
  while (!raw.empty() && raw.back() == '\0') raw.remove_suffix(1);
  bool printable = !raw.empty();
  for (unsigned char c : raw) {
    if (c < 0x21 || c > 0x7e) printable = false;
  }
  if (printable) return std::string(raw);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

// The fields of deliver_sm and data_sm the pipeline reads, independent of the layout.
struct MoView {
  std::string source_addr;
  std::string dest_addr;
  uint8_t esm_class = 0;
  uint8_t data_coding = 0;
  std::string payload;  // short_message, or message_payload when short_message is empty
  const smpp::TlvList* tlvs = nullptr;
};

bool ViewOf(const smpp::Pdu& pdu, MoView* view) {
  if (const auto* d = std::get_if<smpp::ShortMessageBody>(&pdu.body)) {
    view->source_addr = d->source_addr;
    view->dest_addr = d->destination_addr;
    view->esm_class = d->esm_class;
    view->data_coding = d->data_coding;
    view->payload = d->short_message;
    if (view->payload.empty()) {
      if (auto p = d->tlvs.message_payload()) view->payload = std::string(*p);
    }
    view->tlvs = &d->tlvs;
    return true;
  }
  if (const auto* d = std::get_if<smpp::DataSmBody>(&pdu.body)) {
    view->source_addr = d->source_addr;
    view->dest_addr = d->destination_addr;
    view->esm_class = d->esm_class;
    view->data_coding = d->data_coding;
    if (auto p = d->tlvs.message_payload()) view->payload = std::string(*p);
    view->tlvs = &d->tlvs;
    return true;
  }
  return false;
}

TempErrorReason ReasonOf(const IngestOutcome& outcome) {
  switch (outcome.refused) {
    case IngestRefusal::kBackpressure: return TempErrorReason::kBackpressure;
    case IngestRefusal::kStopping: return TempErrorReason::kShuttingDown;
    case IngestRefusal::kDatabaseDown: return TempErrorReason::kStoreUnavailable;
    case IngestRefusal::kNone: break;
  }
  return outcome.status.permanent() ? TempErrorReason::kStoreError
                                    : TempErrorReason::kStoreUnavailable;
}

// An answer written this shortly before a session's unexpected close may not have reached
// the SMSC (it was in our socket buffer or in flight when the connection died).
constexpr auto kAckUncertainWindow = std::chrono::seconds(2);
// Completions for a closed session arrive within the commit latency; remember closes longer.
constexpr auto kClosedSessionMemory = std::chrono::seconds(120);

// The guard key of an item whose redelivery could be taken for a new MO: a complete
// (single-part) message without an SMSC MO id, not a receipt.
std::optional<std::string> GuardKeyOf(const billing::IngestItem& item) {
  if (!item.message || item.part || item.consume_set) return std::nullopt;
  const billing::InboundMessage& m = *item.message;
  if (!m.smsc_mo_id.empty() || m.outcome == billing::MessageOutcome::kReceipt || m.concat_total)
    return std::nullopt;
  return RedeliveryKey(m.operator_name, m.source_addr, m.dest_addr, m.data_coding, m.esm_class,
                       m.raw_payload);
}

size_t ReasonIndex(UncertainReason r) { return static_cast<size_t>(r); }

}  // namespace

bool LoadBlocklist(const std::string& path, std::set<std::string>* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    if (error) *error = "cannot read blocklist " + path;
    return false;
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    auto last = line.find_last_not_of(" \t\r");
    billing::NormalizedMsisdn m = billing::NormalizeMsisdn(line.substr(first, last - first + 1));
    if (!m.ok()) {
      if (error) *error = path + ":" + std::to_string(number) + ": not an MSISDN (" +
                          std::string(billing::ToString(m.status)) + ")";
      return false;
    }
    out->insert(m.msisdn);
  }
  return true;
}

Pipeline::Pipeline(const config::Config& config, IngestWriter& writer, Metrics* metrics,
                   std::set<std::string> blocklist)
    : config_(config), writer_(writer), metrics_(metrics), blocklist_(std::move(blocklist)),
      temp_error_status_(static_cast<uint32_t>(config.pipeline.temp_error_status)),
      reassembler_(smpp::ReassemblyOptions{std::chrono::seconds(config.pipeline.concat_timeout_s),
                                           10000}),
      guard_(std::chrono::seconds(config.pipeline.redelivery_window_s)),
      late_ack_(std::chrono::milliseconds(config.pipeline.late_ack_ms)),
      mo_window_(config.pipeline.max_mos_per_minute_per_msisdn, std::chrono::minutes(1)),
      reply_window_(config.pipeline.max_replies_per_hour_per_msisdn, std::chrono::hours(1)) {
  for (const config::SmscLink& l : config_.links) {
    LinkSettings s;
    s.alphabet = l.gsm_packed ? smpp::DefaultAlphabet::kGsm7Packed : smpp::DefaultAlphabet::kGsm7Unpacked;
    s.id_mode = ToIdMode(l.message_id_normalization);
    s.mo_id_tlv = l.mo_id_tlv;
    link_settings_[l.name] = s;
    link_operator_[l.name] = l.operator_name;
  }
  writer_.SetBatchFailedHook([this](int shard, const billing::StoreStatus&, billing::Store& store) {
    OnBatchFailed(shard, store);
  });
  writer_.SetInDoubtHook([this](const std::vector<billing::IngestItem>& items, bool resolved,
                                bool committed, const std::vector<billing::IngestResult>& results) {
    OnInDoubt(items, resolved, committed, results);
  });
}

Pipeline::~Pipeline() {
  writer_.SetBatchFailedHook(nullptr);
  writer_.SetInDoubtHook(nullptr);
}

void Pipeline::OnInDoubt(const std::vector<billing::IngestItem>& items, bool resolved,
                         bool committed, const std::vector<billing::IngestResult>& results) {
  for (size_t i = 0; i < items.size(); ++i) {
    std::optional<std::string> key = GuardKeyOf(items[i]);
    if (!key) continue;
    if (!resolved) {
      guard_.Hold(*key);
      continue;
    }
    int64_t id = committed && i < results.size() ? results[i].inbound_message_id : 0;
    // A recognised redelivery in doubt stands for its original.
    if (id != 0 && items[i].message->redelivery_of != 0) id = items[i].message->redelivery_of;
    guard_.Resolve(*key, committed && id != 0, id);
  }
  if (metrics_) metrics_->redelivery_guard_entries().Set(static_cast<double>(guard_.size()));
}

void Pipeline::AddUncertain(const std::vector<billing::UncertainMo>& mos) {
  for (const billing::UncertainMo& mo : mos) {
    guard_.AddCommitted(RedeliveryKey(mo.operator_name, mo.source_addr, mo.dest_addr, mo.data_coding,
                                      mo.esm_class, mo.raw_payload),
                        mo.inbound_message_id, UncertainReason::kAfterCrash);
  }
  if (metrics_) metrics_->redelivery_guard_entries().Set(static_cast<double>(guard_.size()));
}

void Pipeline::NoteCommitted(uint64_t session_id, std::string key, int64_t inbound_message_id) {
  const auto now = SteadyClock::now();
  std::lock_guard<std::mutex> lock(sessions_mu_);
  if (closed_sessions_.count(session_id) != 0) {
    // The session is gone: this answer will never be sent, and the SMSC will redeliver.
    guard_.AddCommitted(key, inbound_message_id, UncertainReason::kSessionClosed);
    if (metrics_) metrics_->redelivery_guard_entries().Set(static_cast<double>(guard_.size()));
    return;
  }
  auto& recent = recent_acks_[session_id];
  while (!recent.empty() && now - recent.front().at > kAckUncertainWindow) recent.pop_front();
  recent.push_back(RecentAck{now, std::move(key), inbound_message_id});
}

void Pipeline::OnSessionClosed(const LinkInfo& link, bool orderly) {
  const auto now = SteadyClock::now();
  std::lock_guard<std::mutex> lock(sessions_mu_);
  auto it = recent_acks_.find(link.session_id);
  if (it != recent_acks_.end()) {
    if (!orderly) {
      for (RecentAck& a : it->second) {
        if (now - a.at <= kAckUncertainWindow)
          guard_.AddCommitted(a.key, a.inbound_message_id, UncertainReason::kSessionClosed);
      }
    }
    recent_acks_.erase(it);
  }
  for (auto c = closed_sessions_.begin(); c != closed_sessions_.end();) {
    c = now - c->second > kClosedSessionMemory ? closed_sessions_.erase(c) : std::next(c);
  }
  closed_sessions_[link.session_id] = now;
  if (metrics_) metrics_->redelivery_guard_entries().Set(static_cast<double>(guard_.size()));
}

void Pipeline::LogUnanswered(const billing::InboundMessage& m) const {
  if (metrics_) metrics_->MoUnanswered(m.outcome);
  static const auto log = Logger("pipeline");
  log->info("event=mo_unanswered link={} source={} reason={} detail={}", m.link,
            Masked(m.source_addr), billing::ToString(m.outcome), Quote(m.outcome_detail));
}

const Pipeline::LinkSettings& Pipeline::SettingsFor(const std::string& link_name) const {
  static const LinkSettings kDefault;
  auto it = link_settings_.find(link_name);
  return it == link_settings_.end() ? kDefault : it->second;
}

size_t Pipeline::pending_concat_parts() const {
  std::lock_guard<std::mutex> lock(reassembly_mu_);
  return reassembler_.pending_parts();
}

uint64_t Pipeline::ShardKeyOf(const smpp::ConcatKey& key) const {
  return std::hash<std::string>{}(key.link + '\x1f' + key.source + '\x1f' + key.destination) ^
         (static_cast<uint64_t>(key.ref) * 0x9E3779B97F4A7C15ull);
}

billing::IngestItem Pipeline::BuildMessageItem(const LinkInfo& link, const std::string& source_addr,
                                               const std::string& dest_addr, uint8_t data_coding,
                                               uint8_t esm_class, const std::string& raw_payload,
                                               const std::string& decoded_text, bool text_ok,
                                               SysClock::time_point received_at) const {
  billing::IngestItem item;
  billing::InboundMessage m;
  m.link = link.link_name;
  m.operator_name = link.operator_name;
  m.source_addr = source_addr;
  m.dest_addr = dest_addr;
  m.data_coding = data_coding;
  m.esm_class = esm_class;
  m.raw_payload = raw_payload;
  m.text = decoded_text;
  m.received_at = received_at;

  billing::NormalizedMsisdn msisdn = billing::NormalizeMsisdn(source_addr);
  if (!msisdn.ok()) {
    m.outcome = billing::MessageOutcome::kInvalidMsisdn;
    m.outcome_detail = std::string(billing::ToString(msisdn.status));
    item.message = std::move(m);
    return item;  // nobody to answer
  }
  m.msisdn = msisdn.msisdn;

  if (blocklist_.count(m.msisdn) != 0) {
    m.outcome = billing::MessageOutcome::kBlocked;
    item.message = std::move(m);
    return item;  // recorded, never charged, never answered
  }

  // A "CV n" is recognised without folding anything (the hot path); only other texts are
  // compared with the keyword aliases (billing/domain/keywords.h).
  const billing::MoClassification match = billing::ClassifyMo(config_.campaigns, dest_addr, decoded_text);
  if (match.campaign == nullptr) {
    m.outcome = billing::MessageOutcome::kUnknownCampaign;
    m.outcome_detail = "no campaign on shortcode " + dest_addr;
    item.message = std::move(m);
    return item;
  }
  const config::Campaign& campaign = *match.campaign;
  const std::shared_ptr<const config::ReplyTemplates> templates = TemplatesFor(campaign);
  billing::ReplyValues values = billing::CampaignReplyValues(campaign);
  values.window_min = (campaign.confirm_window_s + 59) / 60;
  auto make_reply = [&](billing::ReplyKind kind, const billing::ReplyValues& v) {
    billing::ReplyDraft r;
    r.purpose = std::string(billing::ToString(kind));
    r.source_addr = campaign.shortcode;
    r.dest_addr = m.msisdn;
    r.text = billing::RenderReply(billing::TemplateFor(*templates, kind), v);
    return r;
  };

  if (!text_ok) {
    m.outcome = billing::MessageOutcome::kUndecodable;
    m.outcome_detail = "text could not be decoded cleanly";
    item.reply = make_reply(billing::ReplyKind::kSyntax, values);
    item.message = std::move(m);
    return item;
  }
  if (match.kind != billing::MoKind::kDonate && match.kind != billing::MoKind::kUnknown) {
    return BuildKeywordItem(std::move(item), std::move(m), match, values);
  }
  if (match.kind == billing::MoKind::kUnknown && billing::LooksLikeOwnReply(*templates, decoded_text)) {
    // One of our replies coming back (an echoing phone or gateway): answering it could start
    // a loop of replies. Recorded, never answered.
    m.outcome = billing::MessageOutcome::kReplyLoop;
    m.outcome_detail = "reads as one of our replies";
    if (metrics_) metrics_->ReplySuppressed(1);
    item.message = std::move(m);
    return item;
  }
  switch (match.parse.status) {
    case billing::DonationParseStatus::kOk:
      break;
    case billing::DonationParseStatus::kZeroUnits:
    case billing::DonationParseStatus::kTooManyUnits:
      m.outcome = billing::MessageOutcome::kTooManyUnits;
      m.outcome_detail = std::string(billing::ToString(match.parse.status));
      item.reply = make_reply(billing::ReplyKind::kSyntax, values);
      item.message = std::move(m);
      return item;
    default:
      m.outcome = billing::MessageOutcome::kSyntaxError;
      m.outcome_detail = std::string(billing::ToString(match.parse.status));
      item.reply = make_reply(billing::ReplyKind::kSyntax, values);
      item.message = std::move(m);
      return item;
  }

  const int32_t units = match.parse.units;
  std::optional<int64_t> amount = billing::CheckedMultiply(units, campaign.unit_price_vnd);
  values.units = units;
  values.amount_vnd = amount.value_or(0);
  if (!billing::IsActive(campaign, received_at)) {
    m.outcome = billing::MessageOutcome::kCampaignInactive;
    item.reply = make_reply(billing::ReplyKind::kInactive, values);
    item.message = std::move(m);
    return item;
  }
  if (!amount) {
    m.outcome = billing::MessageOutcome::kTooManyUnits;
    m.outcome_detail = "amount overflows";
    item.reply = make_reply(billing::ReplyKind::kSyntax, values);
    item.message = std::move(m);
    return item;
  }

  m.outcome = billing::MessageOutcome::kDonation;
  billing::DonationDraft d;
  d.campaign = campaign.name;
  d.shortcode = campaign.shortcode;
  d.units = units;
  d.unit_price_vnd = campaign.unit_price_vnd;
  d.amount_vnd = *amount;
  d.charging_mode = campaign.charging_mode;
  if (const config::ChargingBackendConfig* c = config::FindCharging(config_, link.operator_name)) {
    if (c->charging_mode) d.charging_mode = *c->charging_mode;
  }
  d.daily_cap_units = campaign.max_units_per_day_per_msisdn;
  if (billing::NeedsConfirmation(campaign, units)) {
    // Above confirm_above_units: stored awaiting confirmation, asked, charged only after a
    // confirming MO (docs/pipeline.md "Confirmation of large amounts").
    billing::KeywordAction await;
    await.kind = billing::KeywordAction::Kind::kAwaitConfirmation;
    await.shortcode = campaign.shortcode;
    await.confirm_window = std::chrono::seconds(campaign.confirm_window_s);
    item.keyword = std::move(await);
    item.reply = make_reply(billing::ReplyKind::kConfirmRequest, values);
    m.outcome_detail = "awaiting confirmation";
  }
  item.donation = std::move(d);
  item.message = std::move(m);
  return item;
}

billing::IngestItem Pipeline::BuildKeywordItem(billing::IngestItem item, billing::InboundMessage m,
                                               const billing::MoClassification& match,
                                               const billing::ReplyValues& values) const {
  const config::Campaign& campaign = *match.campaign;
  const std::shared_ptr<const config::ReplyTemplates> templates = TemplatesFor(campaign);
  auto make_reply = [&](billing::ReplyKind kind) {
    billing::ReplyDraft r;
    r.purpose = std::string(billing::ToString(kind));
    r.source_addr = campaign.shortcode;
    r.dest_addr = m.msisdn;
    r.text = billing::RenderReply(billing::TemplateFor(*templates, kind), values);
    return r;
  };
  billing::KeywordAction action;
  switch (match.kind) {
    case billing::MoKind::kHelp:
      m.outcome = billing::MessageOutcome::kHelp;
      item.reply = make_reply(billing::ReplyKind::kHelp);
      break;
    case billing::MoKind::kStop:
    case billing::MoKind::kStopAll: {
      const bool all = match.kind == billing::MoKind::kStopAll;
      m.outcome = billing::MessageOutcome::kStop;
      action.kind = billing::KeywordAction::Kind::kStop;
      action.all_campaigns = all;
      for (const config::Campaign* c : match.campaigns) {
        action.campaigns.push_back(c->name);
        if (!m.outcome_detail.empty()) m.outcome_detail += ", ";
        m.outcome_detail += c->name;
      }
      m.outcome_detail = (all ? "stop all: " : "stop: ") + m.outcome_detail;
      item.keyword = std::move(action);
      item.reply = make_reply(all ? billing::ReplyKind::kStopAll : billing::ReplyKind::kStop);
      break;
    }
    case billing::MoKind::kConfirm:
      m.outcome = billing::MessageOutcome::kConfirm;
      action.kind = billing::KeywordAction::Kind::kConfirm;
      action.shortcode = campaign.shortcode;
      // Queued only when nothing waits; a confirmed donation is answered after its charge.
      action.reply = make_reply(billing::ReplyKind::kConfirmNone);
      item.keyword = std::move(action);
      break;
    case billing::MoKind::kStatus: {
      m.outcome = billing::MessageOutcome::kStatus;
      action.kind = billing::KeywordAction::Kind::kStatus;
      action.campaigns.push_back(campaign.name);
      action.reply = make_reply(billing::ReplyKind::kStatus);
      // Rendered in the transaction that reads the figures; the campaign outlives the item.
      action.render_status = [templates, base = values](const billing::StatusFigures& f) {
        billing::ReplyValues v = base;
        v.today_count = f.today_count;
        v.today_amount_vnd = f.today_amount_vnd;
        v.total_count = f.total_count;
        v.total_amount_vnd = f.total_amount_vnd;
        return billing::RenderReply(templates->status, v);
      };
      item.keyword = std::move(action);
      break;
    }
    case billing::MoKind::kDonate:
    case billing::MoKind::kUnknown:
      break;
  }
  item.message = std::move(m);
  return item;
}

void Pipeline::ApplySubscriberLimits(billing::IngestItem& item) {
  if (!item.message || item.message->msisdn.empty()) return;
  billing::InboundMessage& m = *item.message;
  using O = billing::MessageOutcome;
  if (m.outcome == O::kReceipt || m.outcome == O::kRedelivery || m.outcome == O::kBlocked ||
      m.outcome == O::kInvalidMsisdn || m.outcome == O::kReplyLoop || m.outcome == O::kUnknownCampaign)
    return;
  const auto now = SteadyClock::now();
  const SubscriberWindow::Verdict verdict = mo_window_.Admit(m.msisdn, now);
  if (verdict != SubscriberWindow::Verdict::kAdmitted) {
    // Recorded, never charged or acted upon; the first one in the window is told why.
    m.outcome = O::kRateLimited;
    m.outcome_detail = "over " + std::to_string(config_.pipeline.max_mos_per_minute_per_msisdn) +
                       " MOs a minute from this number";
    item.donation.reset();
    item.keyword.reset();
    const bool tell = verdict == SubscriberWindow::Verdict::kFirstOver;
    if (!tell && metrics_) metrics_->ReplySuppressed(2);
    std::optional<billing::ReplyDraft> notice;
    if (tell) {
      for (const config::Campaign& c : config_.campaigns) {
        if (c.shortcode != m.dest_addr) continue;
        billing::ReplyDraft r;
        r.purpose = std::string(billing::ToString(billing::ReplyKind::kRateLimited));
        r.source_addr = c.shortcode;
        r.dest_addr = m.msisdn;
        r.text = billing::RenderReply(TemplatesFor(c)->rate_limited, billing::CampaignReplyValues(c));
        notice = std::move(r);
        break;
      }
    }
    item.reply = std::move(notice);
  }
  // The hourly reply budget covers every ingest-time reply (the keyword flows' replies too).
  const bool replies = item.reply.has_value() || (item.keyword && item.keyword->reply.has_value());
  if (replies && reply_window_.Admit(m.msisdn, now) != SubscriberWindow::Verdict::kAdmitted) {
    item.reply.reset();
    if (item.keyword) {
      item.keyword->reply.reset();
      item.keyword->render_status = nullptr;
    }
    m.outcome_detail += m.outcome_detail.empty() ? "" : "; ";
    m.outcome_detail += "reply withheld: over " +
                        std::to_string(config_.pipeline.max_replies_per_hour_per_msisdn) +
                        " replies an hour to this number";
    if (metrics_) metrics_->ReplySuppressed(0);
  }
}

void Pipeline::OnMessage(const LinkInfo& link, const smpp::Pdu& pdu, InboundCompletion done) {
  const auto started = SteadyClock::now();
  const auto received_at = SysClock::now();
  counters_.received.fetch_add(1);
  if (metrics_) metrics_->ForLink(link.link_name).mo_received.Increment();

  if (!accepting_.load()) {
    counters_.temp_errors.fetch_add(1);
    if (metrics_) metrics_->MoTempError(TempErrorReason::kShuttingDown);
    done(temp_error_status_);
    return;
  }

  MoView mo;
  if (!ViewOf(pdu, &mo)) {
    // Not a layout the link should hand us; refuse rather than guess.
    done(smpp::status::kSysErr);
    return;
  }
  const LinkSettings& settings = SettingsFor(link.link_name);
  std::string smsc_mo_id;
  if (settings.mo_id_tlv) {
    if (const std::string* v = mo.tlvs->Find(*settings.mo_id_tlv)) smsc_mo_id = PrintableId(*v);
  }

  // --- delivery receipt
  if ((mo.esm_class & kEsmClassTypeMask) == kEsmClassReceipt) {
    ReceiptFields fields;
    fields.text = mo.payload;
    fields.receipted_message_id = mo.tlvs->receipted_message_id();
    fields.message_state = mo.tlvs->message_state();
    if (const std::string* nec = mo.tlvs->Find(smpp::tlv_tag::kNetworkErrorCode)) {
      fields.network_error_code = std::string_view(*nec);
    }
    billing::ReceiptInfo receipt;
    std::string problem;
    const bool receipt_ok =
        ParseReceiptForStore(fields, link.operator_name, settings.id_mode, &receipt, &problem);
    billing::IngestItem item;
    billing::InboundMessage m;
    m.link = link.link_name;
    m.operator_name = link.operator_name;
    m.source_addr = mo.source_addr;
    m.msisdn = billing::NormalizeMsisdn(mo.source_addr).msisdn;
    m.dest_addr = mo.dest_addr;
    m.data_coding = mo.data_coding;
    m.esm_class = mo.esm_class;
    m.raw_payload = mo.payload;
    smpp::DecodedText text = smpp::DecodeSmsText(mo.payload, mo.data_coding, {settings.alphabet, 0});
    m.text = text.utf8;
    m.smsc_mo_id = smsc_mo_id;
    m.received_at = received_at;
    m.outcome = billing::MessageOutcome::kReceipt;
    if (receipt_ok) {
      if (metrics_) metrics_->Receipt(receipt.stat);
      item.receipt = std::move(receipt);
    } else {
      m.outcome_detail = "unparsable receipt: " + problem;
      if (metrics_) metrics_->Receipt("other");
    }
    item.message = std::move(m);
    Submit(std::move(item), round_robin_.fetch_add(1), &link, std::move(done), started);
    return;
  }

  // --- part of a concatenated message?
  // Money moves only on a message that decoded cleanly (design invariant 9): a UDH or a
  // concatenation that does not parse makes the message undecodable — recorded, answered at
  // most with the help text, never re-read another way (with UDHI set the first octet is the
  // header length, GSM 03.40; reading it as text could yield a "CV n").
  std::optional<smpp::ConcatInfo> concat;
  std::string user_data = mo.payload;
  size_t udh_length = 0;
  std::string malformed;  // why the framing of the user data is not trustworthy
  if ((mo.esm_class & smpp::kEsmClassUdhi) != 0) {
    smpp::UdhParse udh = smpp::ParseUdh(mo.payload);
    if (udh.status == smpp::UdhStatus::kOk) {
      udh_length = udh.header_length;
      user_data = std::string(udh.user_data);
      if (udh.concat) concat = udh.concat;
    } else {
      malformed = "user data header: " + std::string(smpp::ToString(udh.status));
    }
  } else {
    auto ref = mo.tlvs->sar_msg_ref_num();
    auto total = mo.tlvs->sar_total_segments();
    auto seq = mo.tlvs->sar_segment_seqnum();
    if (ref && total && seq) {
      concat = smpp::ConcatFromSar(*ref, *total, *seq);
      if (!concat) malformed = "sar_* TLVs: not a valid segment";
    } else if (ref || total || seq) {
      malformed = "sar_* TLVs: incomplete set";
    }
  }
  smpp::DecodeOptions decode{settings.alphabet, udh_length};

  if (!malformed.empty() || !concat || concat->total <= 1) {
    smpp::DecodedText text = smpp::DecodeSmsText(user_data, mo.data_coding, decode);
    const bool text_ok = malformed.empty() && text.ok();
    billing::IngestItem item =
        BuildMessageItem(link, mo.source_addr, mo.dest_addr, mo.data_coding, mo.esm_class,
                         user_data, malformed.empty() ? text.utf8 : std::string(), text_ok,
                         received_at);
    item.message->smsc_mo_id = smsc_mo_id;
    if (!malformed.empty() && item.message->outcome == billing::MessageOutcome::kUndecodable)
      item.message->outcome_detail = malformed;
    std::optional<AckTracking> tracking;
    if (std::optional<std::string> key = GuardKeyOf(item)) {
      RedeliveryGuard::Match match = guard_.Check(*key);
      if (match.kind == RedeliveryGuard::Match::Kind::kHeld) {
        // Its original's commit is still in doubt: only a temporary error is safe.
        counters_.temp_errors.fetch_add(1);
        if (metrics_) metrics_->MoTempError(TempErrorReason::kInDoubt);
        done(temp_error_status_);
        return;
      }
      tracking = AckTracking{*key, link.session_id, 0, UncertainReason::kInDoubt};
      if (match.kind == RedeliveryGuard::Match::Kind::kRedelivery) {
        billing::InboundMessage& m = *item.message;
        m.outcome = billing::MessageOutcome::kRedelivery;
        m.outcome_detail = "redelivery_of " + std::to_string(match.original_id) + " (" +
                           std::string(ToString(match.reason)) + ")";
        m.redelivery_of = match.original_id;
        item.donation.reset();
        item.reply.reset();
        item.keyword.reset();
        tracking->redelivery_of = match.original_id;
        tracking->reason = match.reason;
      }
    }
    Submit(std::move(item), round_robin_.fetch_add(1), &link, std::move(done), started,
           std::move(tracking));
    return;
  }

  // --- concatenated part: stored before it is acknowledged; the part that completes its set
  // also stores the assembled message (and its donation) in the same transaction.
  smpp::DecodedText part_text = smpp::DecodeSmsText(user_data, mo.data_coding, decode);
  billing::ConcatPart part;
  part.set.link = link.link_name;
  part.set.source_addr = mo.source_addr;
  part.set.dest_addr = mo.dest_addr;
  part.set.concat_ref = concat->ref;
  part.set.ref16 = concat->ref16;
  part.set.total = concat->total;
  part.operator_name = link.operator_name;
  part.seq = concat->seq;
  part.data_coding = mo.data_coding;
  part.esm_class = mo.esm_class;
  part.raw_payload = user_data;
  part.text = part_text.utf8;
  part.smsc_mo_id = smsc_mo_id;
  part.received_at = received_at;

  smpp::MessagePart mp;
  mp.key = smpp::MakeConcatKey(link.link_name, mo.source_addr, mo.dest_addr, *concat);
  mp.seq = concat->seq;
  mp.data_coding = mo.data_coding;
  mp.decode = decode;
  mp.user_data = user_data;
  mp.received_at = received_at;
  const uint64_t shard_key = ShardKeyOf(mp.key);

  smpp::AddResult added;
  {
    std::lock_guard<std::mutex> lock(reassembly_mu_);
    added = reassembler_.Add(std::move(mp));
    if (metrics_) metrics_->concat_parts_pending().Set(static_cast<double>(reassembler_.pending_parts()));
  }
  for (const smpp::AssembledMessage& evicted : added.evicted) {
    SubmitBackground(BuildAssembledItem(evicted, link.operator_name, false, std::nullopt),
                     ShardKeyOf(evicted.key));
  }
  billing::IngestItem item;
  if (added.outcome == smpp::PartOutcome::kCompleted && added.completed) {
    item = BuildAssembledItem(*added.completed, link.operator_name, true, part);
  } else {
    // kStored, or a duplicate: storing a duplicate part again is harmless (the set is consumed
    // as a whole, restore keeps the first copy) and keeps "acked means stored" simple.
    if (added.outcome == smpp::PartOutcome::kDuplicate) counters_.duplicates.fetch_add(1);
    item.part = std::move(part);
  }
  Submit(std::move(item), shard_key, &link, std::move(done), started);
}

billing::IngestItem Pipeline::BuildAssembledItem(const smpp::AssembledMessage& message,
                                                 const std::string& operator_name, bool complete,
                                                 const std::optional<billing::ConcatPart>& part) const {
  LinkInfo link;
  link.link_name = message.key.link;
  link.operator_name = operator_name;
  std::string raw;
  for (const smpp::MessagePart& p : message.parts) raw += p.user_data;
  const uint8_t dc = message.parts.empty() ? 0 : message.parts.front().data_coding;
  billing::IngestItem item;
  if (complete || config_.pipeline.concat_on_timeout == config::ConcatOnTimeout::kProcessAvailable) {
    item = BuildMessageItem(link, message.key.source, message.key.destination, dc,
                            smpp::kEsmClassUdhi, raw, message.text.utf8, message.text.ok(),
                            message.first_received_at);
    if (!complete) item.message->outcome_detail += " (incomplete set processed)";
  } else {
    billing::InboundMessage m;
    m.link = link.link_name;
    m.operator_name = operator_name;
    m.source_addr = message.key.source;
    m.msisdn = billing::NormalizeMsisdn(message.key.source).msisdn;
    m.dest_addr = message.key.destination;
    m.data_coding = dc;
    m.esm_class = smpp::kEsmClassUdhi;
    m.raw_payload = raw;
    m.text = message.text.utf8;
    m.received_at = message.first_received_at;
    m.outcome = billing::MessageOutcome::kIncompleteConcat;
    m.outcome_detail = std::to_string(message.missing.size()) + " of " +
                       std::to_string(message.key.total) + " parts missing";
    item.message = std::move(m);
  }
  item.message->concat_ref = message.key.ref;
  item.message->concat_total = message.key.total;
  item.part = part;
  billing::ConcatSetKey set;
  set.link = message.key.link;
  set.source_addr = message.key.source;
  set.dest_addr = message.key.destination;
  set.concat_ref = message.key.ref;
  set.ref16 = message.key.ref16;
  set.total = message.key.total;
  item.consume_set = std::move(set);
  return item;
}

void Pipeline::Submit(billing::IngestItem item, uint64_t shard_key, const LinkInfo* link,
                      InboundCompletion done, SteadyClock::time_point started,
                      std::optional<AckTracking> tracking) {
  ApplySubscriberLimits(item);
  const bool is_donation = item.donation.has_value();
  const bool confirms = item.keyword && item.keyword->kind == billing::KeywordAction::Kind::kConfirm;
  const std::optional<billing::MessageOutcome> outcome =
      item.message ? std::optional<billing::MessageOutcome>(item.message->outcome) : std::nullopt;
  // Kept only for MOs recorded without any reply (logged once committed).
  std::optional<billing::InboundMessage> unanswered;
  if (item.message && !item.reply && !item.donation &&
      (item.message->outcome == billing::MessageOutcome::kInvalidMsisdn ||
       item.message->outcome == billing::MessageOutcome::kBlocked ||
       item.message->outcome == billing::MessageOutcome::kUnknownCampaign ||
       item.message->outcome == billing::MessageOutcome::kReplyLoop ||
       item.message->outcome == billing::MessageOutcome::kRateLimited)) {
    unanswered = *item.message;
  }
  Metrics::LinkCounters* link_counters = metrics_ && link ? &metrics_->ForLink(link->link_name) : nullptr;
  // What a worker needs to take the donation and the reply from memory once committed.
  std::optional<billing::DonationWork> handed;
  if (item.donation && item.message && !item.keyword && hand_off_.donation_lease && hand_off_.donation) {
    const std::chrono::seconds lease = hand_off_.donation_lease(item.message->operator_name);
    if (lease.count() > 0) {
      item.donation->claim_lease = lease;
      billing::DonationWork w;
      w.campaign = item.donation->campaign;
      w.shortcode = item.donation->shortcode.empty() ? item.message->dest_addr : item.donation->shortcode;
      w.operator_name = item.message->operator_name;
      w.msisdn = item.message->msisdn;
      w.units = item.donation->units;
      w.unit_price_vnd = item.donation->unit_price_vnd;
      w.amount_vnd = item.donation->amount_vnd;
      w.charging_mode = item.donation->charging_mode;
      w.previous_state = billing::DonationState::kReceived;  // nothing was sent for it yet
      w.attempts = 1;
      w.received_at = item.message->received_at;
      w.daily_cap_units = item.donation->daily_cap_units;
      w.cap_checked = false;  // the charging worker decides it before charging
      handed = std::move(w);
    }
  }
  std::optional<billing::OutboxReply> handed_reply;
  if (item.reply && item.message && hand_off_.reply_lease && hand_off_.reply) {
    const std::chrono::seconds lease = hand_off_.reply_lease();
    if (lease.count() > 0) {
      item.reply->claim_lease = lease;
      billing::OutboxReply r;
      r.purpose = item.reply->purpose.empty() ? std::string("reply") : item.reply->purpose;
      r.operator_name = item.message->operator_name;
      r.link = item.reply->link;
      r.source_addr = item.reply->source_addr;
      r.dest_addr = item.reply->dest_addr;
      r.text = item.reply->text;
      r.attempts = 1;
      handed_reply = std::move(r);
    }
  }
  writer_.Submit(std::move(item), shard_key,
                 [this, done = std::move(done), is_donation, confirms, outcome, link_counters, started,
                  tracking = std::move(tracking), handed = std::move(handed),
                  handed_reply = std::move(handed_reply),
                  unanswered = std::move(unanswered)](const IngestOutcome& result) mutable {
                   if (result.unanswered) return;  // still in doubt at shutdown: say nothing
                   if (!result.ok()) {
                     counters_.temp_errors.fetch_add(1);
                     if (metrics_) metrics_->MoTempError(ReasonOf(result));
                     done(temp_error_status_);
                     return;
                   }
                   // Committed: now, and only now, the SMSC may hear ESME_ROK.
                   done(smpp::status::kOk);
                   counters_.acked.fetch_add(1);
                   if (tracking && !result.result.duplicate && result.result.inbound_message_id != 0) {
                     if (tracking->redelivery_of != 0) {
                       guard_.Consume(tracking->key, tracking->redelivery_of);
                       if (metrics_) metrics_->MoRedelivery(ReasonIndex(tracking->reason));
                     }
                     const int64_t original = tracking->redelivery_of != 0
                                                  ? tracking->redelivery_of
                                                  : result.result.inbound_message_id;
                     if (SteadyClock::now() - started > late_ack_) {
                       // The SMSC may have given up on this deliver_sm already.
                       guard_.AddCommitted(tracking->key, original, UncertainReason::kLateAck);
                       if (metrics_) metrics_->redelivery_guard_entries().Set(static_cast<double>(guard_.size()));
                     } else {
                       NoteCommitted(tracking->session_id, std::move(tracking->key), original);
                     }
                   }
                   if (unanswered && !result.result.duplicate) LogUnanswered(*unanswered);
                   if (result.result.duplicate) {
                     counters_.duplicates.fetch_add(1);
                   } else if (outcome && metrics_ && *outcome != billing::MessageOutcome::kDonation &&
                              *outcome != billing::MessageOutcome::kReceipt) {
                     metrics_->MoRejected(*outcome);
                   }
                   if (link_counters) link_counters->mo_accepted.Increment();
                   if (metrics_) {
                     metrics_->ack_latency().Observe(
                         std::chrono::duration<double>(SteadyClock::now() - started).count());
                   }
                   if (metrics_ && result.result.reply_id != 0) {
                     metrics_->handoffs(1, handed_reply && result.result.reply_claimed).Increment();
                   }
                   if (handed_reply && result.result.reply_claimed && !result.result.duplicate) {
                     handed_reply->id = result.result.reply_id;
                     handed_reply->inbound_message_id = result.result.inbound_message_id;
                     handed_reply->created_at = billing::StoreClock::now();
                     hand_off_.reply(std::move(*handed_reply));
                   }
                   if (confirms && result.result.confirmed_donation_id != 0 && on_donations_) {
                     on_donations_();  // a confirmed donation is ready for the claim
                   }
                   if (is_donation && result.result.donation_id != 0) {
                     counters_.donations.fetch_add(1);
                     if (metrics_) metrics_->handoffs(0, handed && result.result.donation_claimed).Increment();
                     if (handed && result.result.donation_claimed) {
                       handed->donation_id = result.result.donation_id;
                       handed->inbound_message_id = result.result.inbound_message_id;
                       hand_off_.donation(std::move(*handed));
                     } else if (on_donations_) {
                       // Left for the claim (or read back from a batch marker after an in-doubt
                       // commit: then it is claimed when its lease expires).
                       on_donations_();
                     }
                   }
                 });
}

void Pipeline::SubmitBackground(billing::IngestItem item, uint64_t shard_key) {
  const bool is_donation = item.donation.has_value();
  writer_.Submit(std::move(item), shard_key, [this, is_donation](const IngestOutcome& result) {
    if (!result.ok()) {
      // The parts stay pending in the database; the next restore or expiry retries.
      spdlog::warn("pipeline: storing an expired concatenated set failed: {}", result.status.ToString());
      return;
    }
    if (is_donation && result.result.donation_id != 0 && on_donations_) on_donations_();
  });
}

void Pipeline::ExpireConcatenated(SysClock::time_point now) {
  std::vector<smpp::AssembledMessage> expired;
  std::vector<std::pair<billing::IngestItem, uint64_t>> deferred;
  {
    std::lock_guard<std::mutex> lock(reassembly_mu_);
    deferred.swap(deferred_items_);
    expired = reassembler_.Expire(now);
    if (metrics_) metrics_->concat_parts_pending().Set(static_cast<double>(reassembler_.pending_parts()));
  }
  for (auto& [item, key] : deferred) SubmitBackground(std::move(item), key);
  for (const smpp::AssembledMessage& m : expired) {
    auto op = link_operator_.find(m.key.link);
    SubmitBackground(BuildAssembledItem(m, op == link_operator_.end() ? "" : op->second, false,
                                        std::nullopt),
                     ShardKeyOf(m.key));
  }
}

void Pipeline::RestoreParts(std::vector<billing::StoredPart> stored, int only_shard) {
  std::vector<smpp::MessagePart> parts;
  for (billing::StoredPart& s : stored) {
    smpp::ConcatInfo info;
    info.ref = static_cast<uint16_t>(s.part.set.concat_ref);
    info.total = static_cast<uint8_t>(s.part.set.total);
    info.seq = static_cast<uint8_t>(s.part.seq);
    info.ref16 = s.part.set.ref16;
    smpp::MessagePart p;
    p.key = smpp::MakeConcatKey(s.part.set.link, s.part.set.source_addr, s.part.set.dest_addr, info);
    if (only_shard >= 0 && writer_.ShardOf(ShardKeyOf(p.key)) != only_shard) continue;
    p.seq = info.seq;
    p.data_coding = s.part.data_coding;
    p.decode.default_alphabet = SettingsFor(s.part.set.link).alphabet;
    p.user_data = std::move(s.part.raw_payload);
    p.received_at = s.part.received_at;
    p.storage_id = s.id;
    parts.push_back(std::move(p));
  }
  smpp::RestoreResult restored;
  {
    std::lock_guard<std::mutex> lock(reassembly_mu_);
    if (only_shard >= 0) {
      // Forget this shard's sets (they may include parts whose batch failed) ...
      std::set<smpp::ConcatKey> keys;
      reassembler_.ForEachPendingPart([&](const smpp::MessagePart& p) {
        if (writer_.ShardOf(ShardKeyOf(p.key)) == only_shard) keys.insert(p.key);
      });
      for (const smpp::ConcatKey& k : keys) reassembler_.Remove(k);
    }
    // ... and take back exactly what the database holds.
    restored = reassembler_.Restore(std::move(parts));
    if (metrics_) metrics_->concat_parts_pending().Set(static_cast<double>(reassembler_.pending_parts()));
  }
  std::vector<std::pair<billing::IngestItem, uint64_t>> items;
  for (const smpp::AssembledMessage& m : restored.completed) {
    auto op = link_operator_.find(m.key.link);
    items.emplace_back(BuildAssembledItem(m, op == link_operator_.end() ? "" : op->second, true,
                                          std::nullopt),
                       ShardKeyOf(m.key));
  }
  for (const smpp::AssembledMessage& m : restored.evicted) {
    auto op = link_operator_.find(m.key.link);
    items.emplace_back(BuildAssembledItem(m, op == link_operator_.end() ? "" : op->second, false,
                                          std::nullopt),
                       ShardKeyOf(m.key));
  }
  if (only_shard >= 0) {
    // Called on the shard's DB thread while it still refuses new items: hand them over to the
    // next housekeeping tick instead.
    std::lock_guard<std::mutex> lock(reassembly_mu_);
    for (auto& item : items) deferred_items_.push_back(std::move(item));
    return;
  }
  for (auto& [item, key] : items) SubmitBackground(std::move(item), key);
}

billing::StoreStatus Pipeline::RecoverFromStore(billing::Store& store) {
  std::vector<std::string> links;
  for (const auto& [name, settings] : link_settings_) links.push_back(name);
  std::vector<billing::StoredPart> parts;
  billing::StoreStatus s = store.LoadPendingParts(links, &parts);
  if (!s.ok()) return s;
  if (!parts.empty()) spdlog::info("pipeline: restoring {} pending concatenated parts", parts.size());
  RestoreParts(std::move(parts), -1);
  return s;
}

void Pipeline::OnBatchFailed(int shard, billing::Store& store) {
  std::vector<std::string> links;
  for (const auto& [name, settings] : link_settings_) links.push_back(name);
  std::vector<billing::StoredPart> parts;
  billing::StoreStatus s = store.LoadPendingParts(links, &parts);
  if (!s.ok()) {
    spdlog::warn("pipeline: cannot reload concatenated parts after a failed batch: {}", s.ToString());
    return;
  }
  RestoreParts(std::move(parts), shard);
}

}  // namespace donagate::daemon
