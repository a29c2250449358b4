// The donagate configuration schema: plain data, filled and validated by LoadConfig
// (config/loader.h). Every field carries its default here, so a default-constructed struct is
// what an empty section means. docs/configuration.md and config/donagate.example.toml describe
// each key; the TOML key is the field name unless a comment says otherwise.
//
// Contract for users of these structs: a Config returned by LoadConfig without diagnostics has
// passed every check listed in docs/configuration.md (ranges, cross-field rules, secrets
// resolved, referenced files readable, relative paths made absolute against the config file's
// directory). Code that consumes it need not re-validate.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace donagate::config {

// A secret resolved at load time from an environment variable or a file (never inline).
// The value is deliberately not printable through any stream operator; call Reveal() only at
// the place that hands it to a peer (bind PDU, Authorization header, libpq).
class Secret {
 public:
  Secret() = default;
  Secret(std::string source, std::string value) : source_(std::move(source)), value_(std::move(value)) {}

  // Where the secret came from, e.g. "env:DONAGATE_SMSC_PASSWORD" or "file:/run/creds/smsc".
  // Safe to log.
  const std::string& source() const { return source_; }
  bool empty() const { return value_.empty() && source_.empty(); }
  const std::string& Reveal() const { return value_; }

 private:
  std::string source_;
  std::string value_;
};

struct TlsConfig {
  bool enabled = false;
  std::string ca_file;      // empty = system trust store
  std::string cert_file;    // client certificate (client mode) or server certificate (server mode)
  std::string key_file;     // required with cert_file
  bool verify_peer = true;  // client mode: verify the SMSC certificate; server mode: require a client cert
  std::string server_name;  // SNI and hostname check; empty = the link's host
};

enum class LinkMode { kClient, kServer };                               // "client" | "server"
enum class BindType { kTransceiver, kReceiverTransmitter };             // "transceiver" | "receiver_transmitter"
enum class ReplyLongMode { kUdh, kMessagePayload };                     // "udh" | "message_payload"

// How message ids from submit_sm_resp and from delivery receipts are brought to one form so a
// receipt finds its reply.
enum class MessageIdNormalization {
  kExact,                     // "exact": compare byte for byte
  kTrimLeadingZeros,          // "trim_leading_zeros" (default): drop leading zeros, compare case-insensitively
  kResponseHexReceiptDecimal, // "resp_hex_dlr_decimal": resp id is hex, receipt id decimal
  kResponseDecimalReceiptHex, // "resp_decimal_dlr_hex": resp id is decimal, receipt id hex
};

// One [[smsc]] entry: an SMPP session (or, in server mode, a listener accepting sessions) for
// one operator.
struct SmscLink {
  std::string name;           // unique among links; used in metrics labels and logs
  std::string operator_name;  // TOML key "operator"; must have a [[charging]] entry
  LinkMode mode = LinkMode::kClient;
  std::string host;           // client: SMSC address (required); server: listen address (default "0.0.0.0")
  uint16_t port = 0;          // required
  std::string system_id;      // required; server mode: the account the peer must bind with
  Secret password;            // from password_env or password_file (required)
  std::string system_type;    // default ""
  BindType bind_type = BindType::kTransceiver;
  int window = 10;                        // max unacknowledged outgoing PDUs, 1..1000
  int tps = 50;                           // outgoing submit_sm per second, 0 = unlimited
  int enquire_link_interval_s = 30;       // 1..3600
  int response_timeout_s = 10;            // 1..300
  int reconnect_backoff_min_s = 1;        // 1..3600, <= max
  int reconnect_backoff_max_s = 60;       // 1..86400
  int throttle_pause_s = 60;              // pause after ESME_RTHROTTLED / ESME_RMSGQFUL, 1..3600
  int throttle_max_retries = 5;           // per PDU, 0..100
  uint32_t max_pdu_size = 65536;          // accepted command_length, 64..1048576
  MessageIdNormalization message_id_normalization = MessageIdNormalization::kTrimLeadingZeros;
  ReplyLongMode reply_long_mode = ReplyLongMode::kUdh;
  bool gsm_packed = false;                // data_coding 0 arrives/leaves as packed septets
  std::optional<uint16_t> mo_id_tlv;      // TLV tag carrying the SMSC's unique MO id (dedupe)
  int source_ton = 0;                     // replies' source_addr_ton (short code), 0..6
  int source_npi = 1;                     // 0..18
  int dest_ton = 1;                       // replies' dest_addr_ton (subscriber, international)
  int dest_npi = 1;
  TlsConfig tls;                          // [smsc.tls]
  // Server mode only (ignored, and rejected if set, in client mode):
  std::vector<std::string> allowed_ips;   // empty = any; IPv4/IPv6 addresses or CIDR blocks
  int max_binds_per_account = 2;          // 1..100
  int idle_timeout_s = 120;               // close a bound session silent this long, 1..86400
  int bind_timeout_s = 10;                // close a connection not bound within this, 1..600
  int max_failed_binds_per_ip = 5;        // after this many failures in a minute, slow that address
  int failed_bind_delay_s = 10;           // delay before answering binds from a slowed address, 0..600
};

struct DatabaseConfig {
  Secret conninfo;                 // libpq conninfo: inline "conninfo", or conninfo_env / conninfo_file
  int pool_size = 4;               // DB threads/connections, 1..64
  int batch_size = 256;            // max ingest items per group commit, 1..10000
  int batch_linger_ms = 2;         // max wait to fill a batch, 0..1000
  bool run_migrations_on_start = false;
  int statement_timeout_ms = 5000; // 0 = none, else 1..600000
  int connect_timeout_s = 5;       // 1..300
};

enum class ChargingMode { kWhole, kPerUnit };  // "whole" | "per_unit"

// Reply texts; placeholders from kTemplatePlaceholders in braces ("{amount}"), "{{" and "}}"
// for literal braces. Defaults are Vietnamese without diacritics (GSM 7-bit).
struct ReplyTemplates {
  std::string success =
      "Cam on Quy khach da ung ho {amount} dong cho chuong trinh {campaign}. Ma GD: {ref}";
  std::string partial =
      "Quy khach da ung ho {charged_units}/{units} lan ({amount} dong). Tai khoan khong du cho "
      "{missing_units} lan con lai.";
  std::string insufficient =
      "Tai khoan cua Quy khach khong du de ung ho {amount} dong. Vui long nap tien va thu lai.";
  std::string syntax =
      "Sai cu phap. De ung ho, soan {keyword} n gui {shortcode} (n la so lan ung ho, moi lan "
      "{unit_price} dong).";
  std::string daily_cap =
      "Quy khach da dat gioi han ung ho trong ngay cho chuong trinh {campaign}. Xin cam on va "
      "hen gap lai vao ngay mai.";
  std::string inactive =
      "Chuong trinh {campaign} hien khong nhan ung ho. Xin cam on Quy khach.";
  std::string failed =
      "Giao dich ung ho {amount} dong chua thanh cong. Quy khach chua bi tru tien. Vui long thu "
      "lai sau.";
  // Keyword flows (docs/pipeline.md "Keywords"): none of these is ever charged.
  std::string help =
      "{campaign}: soan {keyword} n gui {shortcode} de ung ho n lan, moi lan {unit_price} dong. "
      "TRA: tra cuu. HUY: ngung.";
  std::string stop =
      "Quy khach da ngung nhan tin tu chuong trinh {campaign}. Soan {keyword} n gui {shortcode} "
      "neu muon ung ho lai.";
  std::string stop_all = "Quy khach da ngung nhan tin tu tat ca chuong trinh tren {shortcode}.";
  std::string confirm_request =
      "Quy khach sap ung ho {amount} dong cho {campaign}. Soan Y gui {shortcode} trong "
      "{window_min} phut de xac nhan.";
  std::string confirm_none =
      "Khong co giao dich nao dang cho xac nhan. Soan {keyword} n gui {shortcode} de ung ho.";
  std::string status =
      "{campaign}: hom nay Quy khach da ung ho {today_amount} dong ({today_count} lan), tong "
      "cong {total_amount} dong ({total_count} lan).";
  std::string rate_limited =
      "Quy khach gui qua nhieu tin nhan. Cac tin tiep theo trong it phut se khong duoc xu ly.";
};

// Every placeholder a template may use. A template naming anything else is a config error.
inline constexpr std::string_view kTemplatePlaceholders[] = {
    "amount", "campaign", "ref", "units", "charged_units", "missing_units",
    "shortcode", "keyword", "unit_price",
    // confirm_request: the confirmation window in minutes (rounded up); status: the
    // subscriber's charged donations today / in the campaign.
    "window_min", "today_amount", "today_count", "total_amount", "total_count"};

// How a campaign's replies are encoded (reply_encoding): which characters its templates may use
// and how many characters fit in a part (the loader checks every template's worst case).
enum class ReplyEncoding {
  kGsm7Ascii,  // "gsm7_ascii" (default): printable ASCII only, 160 / 153 per part
  kUcs2,       // "ucs2": any text, e.g. Vietnamese with diacritics, 70 / 67 per part
};

struct Campaign {
  std::string name;                       // unique; ledger account fund:<name>
  std::string keyword = "CV";             // ASCII letters only, matched case-insensitively
  std::string shortcode = "1407";         // digits, 2..15
  int64_t unit_price_vnd = 20000;         // 1..100000000
  int max_units_per_message = 100;        // 1..1000000
  int max_units_per_day_per_msisdn = 500; // 0 = no cap; Asia/Ho_Chi_Minh calendar days
  std::optional<std::chrono::sys_seconds> active_from;  // inclusive; RFC 3339 with offset
  std::optional<std::chrono::sys_seconds> active_to;    // exclusive
  ChargingMode charging_mode = ChargingMode::kWhole;
  ReplyTemplates templates;               // [campaign.templates]
  // Keyword aliases (docs/pipeline.md "Keywords"), matched on the whole text with the "CV n"
  // tolerance (case, separators, full-width forms, Vietnamese diacritics stripped). 1..20
  // aliases each, 1..20 characters; no alias may belong to two kinds or read as a donation.
  std::vector<std::string> help_keywords = {"HELP", "HD", "?"};
  std::vector<std::string> stop_keywords = {"STOP", "HUY", "DUNG"};
  std::vector<std::string> stop_all_keywords = {"STOP ALL"};
  std::vector<std::string> confirm_keywords = {"Y", "CO"};
  std::vector<std::string> status_keywords = {"TRA"};
  // A "CV n" with n above this waits for a confirming MO (confirm_keywords) within
  // confirm_window_s before it is charged; 0 = never ask (default). 0..1000000.
  int confirm_above_units = 0;
  int confirm_window_s = 300;             // 10..86400
  ReplyEncoding reply_encoding = ReplyEncoding::kGsm7Ascii;
};

// "http" | "operator_billed" | "in_process" | "diameter" | "carrier_billing"
enum class ChargingBackendKind { kHttp, kOperatorBilled, kInProcess, kDiameter, kCarrierBilling };

// One [[charging]] entry: how subscribers of one operator are debited.
struct ChargingBackendConfig {
  std::string operator_name;              // TOML key "operator"; unique
  ChargingBackendKind backend = ChargingBackendKind::kHttp;
  std::string url;                        // http, carrier_billing: required, http:// or https://
  int timeout_ms = 3000;                  // per request, 1..600000
  int max_concurrency = 1000;             // in-flight requests (open connections), 1..10000
  int retries = 2;                        // transport retries with the same key, 0..20
  int status_backoff_min_ms = 500;        // unknown resolution backoff, 1..<= max
  int status_backoff_max_ms = 60000;
  Secret token;                           // token_env / token_file (optional): "Authorization: Bearer"
  bool tls_verify = true;                 // TOML key "tls_verify"
  std::string ca_file;                    // empty = system trust store
  int breaker_failure_threshold = 5;      // consecutive failures that open the breaker, 1..1000
  int breaker_cooloff_s = 30;             // 1..3600
  std::optional<ChargingMode> charging_mode;  // overrides the campaign's mode for this operator
  int64_t initial_balance_vnd = 1000000;  // in_process: every subscriber's starting balance
  // backend = "diameter" (Ro direct debiting; docs/charging.md). timeout_ms is Tx; tls_verify
  // and ca_file apply when tls = true.
  std::vector<std::string> peers;          // "host:port" (port default 3868), preference order
  std::string origin_host, origin_realm, destination_realm, destination_host;
  std::string service_context_id = "32274@3gpp.org";
  uint32_t service_identifier = 0;         // 0: not sent
  uint32_t rating_group = 0;               // 0: not sent
  std::map<std::string, uint32_t> campaign_service_identifiers;  // campaign name -> id
  std::map<std::string, uint32_t> campaign_rating_groups;        // campaign name -> rating group
  uint32_t idempotency_avp_code = 411;     // AVP carrying our key (default CC-Correlation-Id)
  uint32_t idempotency_avp_vendor = 0;
  int watchdog_interval_ms = 30000;        // Tw, 100..600000
  int reconnect_interval_ms = 2000;        // 10..600000
  uint32_t failure_handling = 2;           // CCFH: 0 TERMINATE, 1 CONTINUE, 2 RETRY_AND_TERMINATE
  bool tls = false;                        // TLS/TCP (RFC 6733 §2.1; peers' port default 5658)
  std::string tls_cert_file, tls_key_file; // client certificate and key (PEM), optional, together
  // backend = "carrier_billing" (CAMARA Carrier Billing; docs/charging.md). url is the API root
  // including its version; timeout_ms, retries, max_concurrency, tls_verify, ca_file apply too.
  std::string token_url;                   // OAuth 2.0 token endpoint, required
  std::string client_id;                   // required
  Secret client_secret;                    // client_secret_env / client_secret_file, required
  std::string scope;                       // optional OAuth scope list (space separated)
  bool two_step = false;                   // preparePayment → confirmPayment
  std::string merchant_identifier;         // chargingMetaData.merchantIdentifier (optional)
  std::string payment_description = "donation";  // chargingInformation.description (+ campaign)
  int token_refresh_margin_s = 30;         // refresh the token this long before expiry, 0..3600
};

enum class TempErrorStatus : uint32_t {
  kAppn = 0x64,       // "ESME_RX_T_APPN"
  kThrottled = 0x58,  // "ESME_RTHROTTLED"
};

// What happens to a concatenated MO whose parts did not all arrive within concat_timeout_s.
enum class ConcatOnTimeout {
  kRecordRejected,   // "record_rejected" (default): store the parts as an invalid MO, no charge
  kProcessAvailable, // "process_available": join the parts present and process the result
};

struct PipelineConfig {
  TempErrorStatus temp_error_status = TempErrorStatus::kAppn;
  int max_inflight = 10000;        // MOs received but not yet committed, before temp errors, 1..1000000
  int concat_timeout_s = 300;      // 1..86400
  ConcatOnTimeout concat_on_timeout = ConcatOnTimeout::kRecordRejected;
  int charge_batch_size = 64;      // donations claimed per round, 1..10000
  int charge_concurrency = 0;      // charges in flight per instance, 1..10000; 0 = adaptive, up to
                                   // the backends' max_concurrency (daemon/adaptive_limit.h)
  int charge_lease_s = 60;         // a claimed donation is reclaimable after this, 5..3600
  int charge_workers = 1;          // charging DB threads (one connection each), 1..32
  // While more MOs than this wait for their commit, each charging thread and the reply sender
  // claim at most one batch per second (acks first). 0 = never yield. 0..1000000
  int charge_yield_ingest_backlog = 256;
  int reply_batch_size = 64;       // outbox rows claimed per round, 1..10000
  int reply_max_inflight = 256;    // replies being submitted at once, 1..100000
  int poll_interval_ms = 100;      // idle wait between claims, 1..60000
  std::string instance_id;         // default: the host name; [A-Za-z0-9._-], 1..64
  std::string blocklist_file;      // optional: one MSISDN per line; must be readable
  bool start_charging_paused = false;  // kill switch at start: receive and record, do not charge
  // Recognising redeliveries without an MO-id TLV (docs/pipeline.md "In-doubt MOs and
  // redeliveries"): how long a committed MO whose ack may have been lost is matched against
  // redeliveries (the SMSC's retry span), 0..86400 (0 = never match), and how far before an
  // unclean stop's last write probe MOs count as possibly unacknowledged, 1..3600.
  int redelivery_window_s = 600;
  int ack_horizon_s = 10;
  // An ack that leaves later than this after its deliver_sm arrived may have missed the SMSC's
  // response timeout (the SMSC then redelivers): its MO is treated as uncertain. 100..600000.
  int late_ack_ms = 1000;
  // A delivery receipt whose reply is not known (yet) is parked; one older than this never will
  // be matched (an id the SMSC reused, another system's message) and is deleted.
  int pending_receipt_max_age_s = 3 * 86400;
  // Per-subscriber limits (docs/pipeline.md "Reply safety"), kept in memory per instance:
  // MOs beyond max_mos_per_minute_per_msisdn in a minute are recorded (outcome rate_limited),
  // never charged, and the first of them gets one reply saying so; at most
  // max_replies_per_hour_per_msisdn ingest-time replies per number per hour, the rest recorded
  // without a reply. 0 = no limit; 0..100000 each.
  int max_mos_per_minute_per_msisdn = 10;
  int max_replies_per_hour_per_msisdn = 20;
};

struct HttpConfig {
  std::string listen = "127.0.0.1:9464";  // host:port or [v6]:port; /metrics /healthz /readyz /status
};

struct AdminConfig {
  bool enabled = false;                   // requires a token
  std::string listen = "127.0.0.1:9465";
  Secret token;                           // token_env / token_file
};

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };
enum class LogFormat { kKeyValue, kJson };  // "keyvalue" | "json"

// Component names accepted in [log.components].
inline constexpr std::string_view kLogComponents[] = {
    "main", "link", "pipeline", "store", "charging", "reply", "http", "admin"};

struct LogConfig {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kKeyValue;
  std::string file;              // empty = stderr; reopened on SIGHUP
  bool mask_msisdn = true;
  int max_repeats_per_minute = 10;  // identical messages beyond this are counted, not written; 0 = no limit
  std::map<std::string, LogLevel> components;  // [log.components] name = "level"
};

struct Config {
  std::string source_path;  // the file this was loaded from (absolute)
  std::vector<SmscLink> links;                 // [[smsc]], at least one
  DatabaseConfig database;                     // [database], required
  std::vector<Campaign> campaigns;             // [[campaign]], default: one campaign "CV"/1407
  std::vector<ChargingBackendConfig> charging; // [[charging]]
  PipelineConfig pipeline;
  HttpConfig http;
  AdminConfig admin;
  LogConfig log;
};

// Trivial lookups. Keyword comparison is ASCII case-insensitive. nullptr when absent.
const Campaign* FindCampaign(const Config& config, std::string_view shortcode, std::string_view keyword);
const ChargingBackendConfig* FindCharging(const Config& config, std::string_view operator_name);
const SmscLink* FindLink(const Config& config, std::string_view name);

// Names as written in TOML, for logs and status pages.
std::string_view ToString(LinkMode v);
std::string_view ToString(BindType v);
std::string_view ToString(ReplyLongMode v);
std::string_view ToString(MessageIdNormalization v);
std::string_view ToString(ChargingMode v);
std::string_view ToString(ChargingBackendKind v);
std::string_view ToString(TempErrorStatus v);
std::string_view ToString(ConcatOnTimeout v);
std::string_view ToString(LogLevel v);
std::string_view ToString(LogFormat v);
std::string_view ToString(ReplyEncoding v);

}  // namespace donagate::config
