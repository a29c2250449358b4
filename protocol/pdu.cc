#include "protocol/pdu.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

namespace donagate::smpp {
namespace {

// The body layouts, in the order of the Body variant's alternatives (BodyMatches relies
// on layout value == variant index).
enum class Layout : uint8_t {
  kEmpty,
  kBind,
  kBindResp,
  kOutbind,
  kShortMessage,
  kMessageIdResp,
  kDataSm,
  kQuerySm,
  kQuerySmResp,
  kUnsupported,
};
static_assert(std::variant_size_v<Body> == static_cast<size_t>(Layout::kUnsupported));

Layout LayoutOf(CommandId id) {
  switch (id) {
    case CommandId::kGenericNack:
    case CommandId::kUnbind:
    case CommandId::kUnbindResp:
    case CommandId::kEnquireLink:
    case CommandId::kEnquireLinkResp:
      return Layout::kEmpty;
    case CommandId::kBindReceiver:
    case CommandId::kBindTransmitter:
    case CommandId::kBindTransceiver:
      return Layout::kBind;
    case CommandId::kBindReceiverResp:
    case CommandId::kBindTransmitterResp:
    case CommandId::kBindTransceiverResp:
      return Layout::kBindResp;
    case CommandId::kOutbind:
      return Layout::kOutbind;
    case CommandId::kSubmitSm:
    case CommandId::kDeliverSm:
      return Layout::kShortMessage;
    case CommandId::kSubmitSmResp:
    case CommandId::kDeliverSmResp:
    case CommandId::kDataSmResp:
      return Layout::kMessageIdResp;
    case CommandId::kDataSm:
      return Layout::kDataSm;
    case CommandId::kQuerySm:
      return Layout::kQuerySm;
    case CommandId::kQuerySmResp:
      return Layout::kQuerySmResp;
    default:
      return Layout::kUnsupported;
  }
}

Body DefaultBody(Layout layout) {
  switch (layout) {
    case Layout::kBind: return BindBody{};
    case Layout::kBindResp: return BindRespBody{};
    case Layout::kOutbind: return OutbindBody{};
    case Layout::kShortMessage: return ShortMessageBody{};
    case Layout::kMessageIdResp: return MessageIdRespBody{};
    case Layout::kDataSm: return DataSmBody{};
    case Layout::kQuerySm: return QuerySmBody{};
    case Layout::kQuerySmResp: return QuerySmRespBody{};
    case Layout::kEmpty:
    case Layout::kUnsupported: break;
  }
  return EmptyBody{};
}

// §4.1.2 / §4.4.2: these responses carry no body when command_status is non-zero.
bool BodyOmittedOnError(CommandId id) {
  return id == CommandId::kBindReceiverResp || id == CommandId::kBindTransmitterResp ||
         id == CommandId::kBindTransceiverResp || id == CommandId::kSubmitSmResp;
}

inline uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline void StoreBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Fixed value lengths of the typed TLVs; 0 = not fixed / not checked.
// receipted_message_id is checked separately (variable, <= 65).
size_t FixedTlvLength(uint16_t tag) {
  switch (tag) {
    case tlv_tag::kSarTotalSegments:
    case tlv_tag::kSarSegmentSeqnum:
    case tlv_tag::kMessageState:
    case tlv_tag::kScInterfaceVersion:
      return 1;
    case tlv_tag::kSarMsgRefNum:
    case tlv_tag::kUserMessageReference:
    case tlv_tag::kSourcePort:
    case tlv_tag::kDestinationPort:
      return 2;
    case tlv_tag::kNetworkErrorCode:
      return 3;
    default:
      return 0;
  }
}

// --- The field lists, written once and walked by three visitors: BodyReader (decode),
// Sizer (encode pass 1: validate and measure) and Writer (encode pass 2). B is the body
// type, const-qualified for the encoders.

template <class V, class B>
void VisitFields(V&, B&, EmptyBody*) {}

template <class V, class B>
void VisitFields(V& v, B& b, BindBody*) {
  v.CString(b.system_id, max_len::kSystemId, "system_id", status::kInvSysId);
  v.CString(b.password, max_len::kPassword, "password", status::kInvPaswd);
  v.CString(b.system_type, max_len::kSystemType, "system_type", status::kInvSysTyp);
  v.U8(b.interface_version, "interface_version");
  v.U8(b.addr_ton, "addr_ton");
  v.U8(b.addr_npi, "addr_npi");
  v.CString(b.address_range, max_len::kAddressRange, "address_range", status::kBindFail);
}

template <class V, class B>
void VisitFields(V& v, B& b, BindRespBody*) {
  v.CString(b.system_id, max_len::kSystemId, "system_id", status::kInvSysId);
  v.Tlvs(b.tlvs);
}

template <class V, class B>
void VisitFields(V& v, B& b, OutbindBody*) {
  v.CString(b.system_id, max_len::kSystemId, "system_id", status::kInvSysId);
  v.CString(b.password, max_len::kPassword, "password", status::kInvPaswd);
}

template <class V, class B>
void VisitFields(V& v, B& b, ShortMessageBody*) {
  v.CString(b.service_type, max_len::kServiceType, "service_type", status::kInvSerTyp);
  v.U8(b.source_addr_ton, "source_addr_ton");
  v.U8(b.source_addr_npi, "source_addr_npi");
  v.CString(b.source_addr, max_len::kAddress, "source_addr", status::kInvSrcAdr);
  v.U8(b.dest_addr_ton, "dest_addr_ton");
  v.U8(b.dest_addr_npi, "dest_addr_npi");
  v.CString(b.destination_addr, max_len::kAddress, "destination_addr", status::kInvDstAdr);
  v.U8(b.esm_class, "esm_class");
  v.U8(b.protocol_id, "protocol_id");
  v.U8(b.priority_flag, "priority_flag");
  v.CString(b.schedule_delivery_time, max_len::kTime, "schedule_delivery_time", status::kInvSched);
  v.CString(b.validity_period, max_len::kTime, "validity_period", status::kInvExpiry);
  v.U8(b.registered_delivery, "registered_delivery");
  v.U8(b.replace_if_present_flag, "replace_if_present_flag");
  v.U8(b.data_coding, "data_coding");
  v.U8(b.sm_default_msg_id, "sm_default_msg_id");
  v.ShortMessage(b.short_message);
  v.Tlvs(b.tlvs);
}

template <class V, class B>
void VisitFields(V& v, B& b, MessageIdRespBody*) {
  v.CString(b.message_id, max_len::kMessageId, "message_id", status::kInvMsgId);
  v.Tlvs(b.tlvs);
}

template <class V, class B>
void VisitFields(V& v, B& b, DataSmBody*) {
  v.CString(b.service_type, max_len::kServiceType, "service_type", status::kInvSerTyp);
  v.U8(b.source_addr_ton, "source_addr_ton");
  v.U8(b.source_addr_npi, "source_addr_npi");
  v.CString(b.source_addr, max_len::kDataSmAddress, "source_addr", status::kInvSrcAdr);
  v.U8(b.dest_addr_ton, "dest_addr_ton");
  v.U8(b.dest_addr_npi, "dest_addr_npi");
  v.CString(b.destination_addr, max_len::kDataSmAddress, "destination_addr", status::kInvDstAdr);
  v.U8(b.esm_class, "esm_class");
  v.U8(b.registered_delivery, "registered_delivery");
  v.U8(b.data_coding, "data_coding");
  v.Tlvs(b.tlvs);
}

template <class V, class B>
void VisitFields(V& v, B& b, QuerySmBody*) {
  v.CString(b.message_id, max_len::kMessageId, "message_id", status::kInvMsgId);
  v.U8(b.source_addr_ton, "source_addr_ton");
  v.U8(b.source_addr_npi, "source_addr_npi");
  v.CString(b.source_addr, max_len::kAddress, "source_addr", status::kInvSrcAdr);
}

template <class V, class B>
void VisitFields(V& v, B& b, QuerySmRespBody*) {
  v.CString(b.message_id, max_len::kMessageId, "message_id", status::kInvMsgId);
  v.CString(b.final_date, max_len::kTime, "final_date", status::kInvMsgLen);
  v.U8(b.message_state, "message_state");
  v.U8(b.error_code, "error_code");
}

template <class V, class B>
void Visit(V& v, B& body) {
  using Plain = std::remove_const_t<B>;
  VisitFields(v, body, static_cast<Plain*>(nullptr));
}

// --- Decoding -------------------------------------------------------------------------

class BodyReader {
 public:
  BodyReader(const uint8_t* begin, const uint8_t* end) : p_(begin), end_(end) {}

  bool failed() const { return error_ != DecodeError::kNone; }
  DecodeError error() const { return error_; }
  uint32_t status() const { return status_; }
  std::string_view field() const { return field_; }

  void U8(uint8_t& v, std::string_view field) {
    if (failed()) return;
    if (p_ == end_) return Fail(DecodeError::kBodyTruncated, status::kInvCmdLen, field);
    v = *p_++;
  }

  void CString(std::string& out, size_t max_with_nul, std::string_view field,
               uint32_t too_long_status) {
    if (failed()) return;
    const size_t avail = static_cast<size_t>(end_ - p_);
    const size_t scan = std::min(avail, max_with_nul);
    const void* nul = std::memchr(p_, 0, scan);
    if (nul == nullptr) {
      if (avail < max_with_nul) {
        return Fail(DecodeError::kStringNotTerminated, status::kInvCmdLen, field);
      }
      return Fail(DecodeError::kStringTooLong, too_long_status, field);
    }
    const size_t n = static_cast<size_t>(static_cast<const uint8_t*>(nul) - p_);
    out.assign(reinterpret_cast<const char*>(p_), n);
    p_ += n + 1;
  }

  void ShortMessage(std::string& out) {
    uint8_t sm_length = 0;
    U8(sm_length, "sm_length");
    if (failed()) return;
    if (sm_length > kMaxShortMessageLength) {
      return Fail(DecodeError::kSmLengthTooLong, status::kInvMsgLen, "sm_length");
    }
    if (sm_length > end_ - p_) {
      return Fail(DecodeError::kSmLengthBeyondBody, status::kInvMsgLen, "sm_length");
    }
    out.assign(reinterpret_cast<const char*>(p_), sm_length);
    p_ += sm_length;
  }

  void Tlvs(TlvList& list) {
    if (failed()) return;
    std::vector<Tlv>& entries = list.mutable_entries();
    size_t count = 0;
    while (p_ != end_) {
      if (end_ - p_ < 4) return Fail(DecodeError::kTlvTruncated, status::kInvOptParStream, "tlv");
      const uint16_t tag = LoadBe16(p_);
      const uint16_t length = LoadBe16(p_ + 2);
      p_ += 4;
      if (length > end_ - p_) {
        return Fail(DecodeError::kTlvTruncated, status::kInvOptParStream, "tlv");
      }
      const size_t fixed = FixedTlvLength(tag);
      if ((fixed != 0 && length != fixed) ||
          (tag == tlv_tag::kReceiptedMessageId && length > max_len::kMessageId)) {
        return Fail(DecodeError::kTlvBadLength, status::kInvParLen, "tlv");
      }
      const char* value = reinterpret_cast<const char*>(p_);
      if (count < entries.size()) {
        entries[count].tag = tag;
        entries[count].value.assign(value, length);
      } else {
        entries.push_back(Tlv{tag, std::string(value, length)});
      }
      ++count;
      p_ += length;
    }
    entries.resize(count);
  }

  void ExpectEnd() {
    if (failed()) return;
    if (p_ != end_) Fail(DecodeError::kTrailingBytes, status::kInvCmdLen, "body");
  }

 private:
  void Fail(DecodeError error, uint32_t status, std::string_view field) {
    error_ = error;
    status_ = status;
    field_ = field;
  }

  const uint8_t* p_;
  const uint8_t* end_;
  DecodeError error_ = DecodeError::kNone;
  uint32_t status_ = status::kOk;
  std::string_view field_;
};

// Returns the body alternative T of *body, keeping its buffers when it already is one.
template <class T>
T& Reuse(Body* body) {
  if (T* existing = std::get_if<T>(body)) return *existing;
  return body->emplace<T>();
}

template <class T>
void DecodeLayout(BodyReader& reader, Body* body, bool header_only_response) {
  T& b = Reuse<T>(body);
  if (header_only_response) {
    b = T{};
    return;
  }
  Visit(reader, b);
  reader.ExpectEnd();
}

void FailFraming(DecodeResult* r, DecodeError error, std::string_view field) {
  r->error = error;
  r->answer = Answer::kGenericNack;
  r->status = status::kInvCmdLen;
  r->close_connection = true;
  r->field = field;
}

// Fills the range checks shared by CheckFrame and Decode. Returns false if refused.
bool ReadHeader(std::string_view wire, const DecodeLimits& limits, DecodeResult* r) {
  const auto* p = reinterpret_cast<const uint8_t*>(wire.data());
  if (wire.size() < 4) {
    FailFraming(r, DecodeError::kTruncatedHeader, "command_length");
    return false;
  }
  r->header.command_length = LoadBe32(p);
  if (wire.size() >= 8) r->header.command_id = static_cast<CommandId>(LoadBe32(p + 4));
  if (wire.size() >= kHeaderLength) {
    r->header.command_status = LoadBe32(p + 8);
    r->header.sequence_number = LoadBe32(p + 12);
    r->sequence_known = true;
  }
  if (r->header.command_length < kHeaderLength) {
    FailFraming(r, DecodeError::kCommandLengthTooSmall, "command_length");
    return false;
  }
  if (r->header.command_length > limits.max_command_length) {
    FailFraming(r, DecodeError::kCommandLengthTooLarge, "command_length");
    return false;
  }
  return true;
}

// --- Encoding -------------------------------------------------------------------------

class Sizer {
 public:
  size_t size() const { return size_; }
  EncodeError error() const { return error_; }

  void U8(const uint8_t&, std::string_view) { size_ += 1; }
  void CString(const std::string& s, size_t max_with_nul, std::string_view, uint32_t) {
    if (s.size() >= max_with_nul) return Fail(EncodeError::kStringTooLong);
    if (std::memchr(s.data(), 0, s.size()) != nullptr) return Fail(EncodeError::kStringHasNul);
    size_ += s.size() + 1;
  }
  void ShortMessage(const std::string& s) {
    if (s.size() > kMaxShortMessageLength) return Fail(EncodeError::kShortMessageTooLong);
    size_ += 1 + s.size();
  }
  void Tlvs(const TlvList& list) {
    for (const Tlv& t : list.entries()) {
      if (t.value.size() > std::numeric_limits<uint16_t>::max()) return Fail(EncodeError::kTlvTooLong);
      size_ += 4 + t.value.size();
    }
  }

 private:
  void Fail(EncodeError e) {
    if (error_ == EncodeError::kNone) error_ = e;
  }
  size_t size_ = 0;
  EncodeError error_ = EncodeError::kNone;
};

// Writes into space the Sizer measured; no checks left to do.
class Writer {
 public:
  explicit Writer(uint8_t* p) : p_(p) {}
  uint8_t* position() const { return p_; }

  void U8(const uint8_t& v, std::string_view) { *p_++ = v; }
  void CString(const std::string& s, size_t, std::string_view, uint32_t) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
    *p_++ = 0;
  }
  void ShortMessage(const std::string& s) {
    *p_++ = static_cast<uint8_t>(s.size());
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void Tlvs(const TlvList& list) {
    for (const Tlv& t : list.entries()) {
      StoreBe16(p_, t.tag);
      StoreBe16(p_ + 2, static_cast<uint16_t>(t.value.size()));
      std::memcpy(p_ + 4, t.value.data(), t.value.size());
      p_ += 4 + t.value.size();
    }
  }

 private:
  uint8_t* p_;
};

}  // namespace

// --- TlvList --------------------------------------------------------------------------

const std::string* TlvList::Find(uint16_t tag) const {
  for (const Tlv& t : entries_) {
    if (t.tag == tag) return &t.value;
  }
  return nullptr;
}

void TlvList::Set(uint16_t tag, std::string_view value) {
  for (Tlv& t : entries_) {
    if (t.tag == tag) {
      // resize + memcpy rather than assign(): GCC 12 reports a false -Wrestrict
      // (GCC bug 105329) for assign() inlined here, which -Werror turns fatal.
      t.value.resize(value.size());
      if (!value.empty()) std::memcpy(t.value.data(), value.data(), value.size());
      return;
    }
  }
  Append(tag, value);
}

void TlvList::Append(uint16_t tag, std::string_view value) {
  entries_.push_back(Tlv{tag, std::string(value)});
}

bool TlvList::Remove(uint16_t tag) {
  const auto removed = std::erase_if(entries_, [tag](const Tlv& t) { return t.tag == tag; });
  return removed != 0;
}

std::optional<std::string_view> TlvList::message_payload() const {
  const std::string* v = Find(tlv_tag::kMessagePayload);
  if (v == nullptr) return std::nullopt;
  return std::string_view(*v);
}

std::optional<std::string_view> TlvList::receipted_message_id() const {
  const std::string* v = Find(tlv_tag::kReceiptedMessageId);
  if (v == nullptr || v->size() > max_len::kMessageId) return std::nullopt;
  std::string_view id(*v);
  const size_t nul = id.find('\0');
  if (nul != std::string_view::npos) id = id.substr(0, nul);
  return id;
}

void TlvList::set_receipted_message_id(std::string_view id) {
  std::string value(id);
  value.push_back('\0');
  Set(tlv_tag::kReceiptedMessageId, value);
}

std::optional<NetworkErrorCode> TlvList::network_error_code() const {
  const std::string* v = Find(tlv_tag::kNetworkErrorCode);
  if (v == nullptr || v->size() != 3) return std::nullopt;
  const auto* p = reinterpret_cast<const uint8_t*>(v->data());
  return NetworkErrorCode{p[0], LoadBe16(p + 1)};
}

void TlvList::set_network_error_code(NetworkErrorCode v) {
  uint8_t bytes[3] = {v.network_type, 0, 0};
  StoreBe16(bytes + 1, v.error_code);
  Set(tlv_tag::kNetworkErrorCode, std::string_view(reinterpret_cast<const char*>(bytes), 3));
}

std::optional<uint8_t> TlvList::GetU8(uint16_t tag) const {
  const std::string* v = Find(tag);
  if (v == nullptr || v->size() != 1) return std::nullopt;
  return static_cast<uint8_t>((*v)[0]);
}

std::optional<uint16_t> TlvList::GetU16(uint16_t tag) const {
  const std::string* v = Find(tag);
  if (v == nullptr || v->size() != 2) return std::nullopt;
  return LoadBe16(reinterpret_cast<const uint8_t*>(v->data()));
}

void TlvList::SetU8(uint16_t tag, uint8_t v) {
  const char byte = static_cast<char>(v);
  Set(tag, std::string_view(&byte, 1));
}

void TlvList::SetU16(uint16_t tag, uint16_t v) {
  uint8_t bytes[2];
  StoreBe16(bytes, v);
  Set(tag, std::string_view(reinterpret_cast<const char*>(bytes), 2));
}

// --- Command helpers ------------------------------------------------------------------

bool IsSupported(CommandId id) { return LayoutOf(id) != Layout::kUnsupported; }

std::optional<CommandId> ResponseIdFor(CommandId request) {
  if (IsResponse(request) || !IsSupported(request) || request == CommandId::kOutbind) {
    return std::nullopt;
  }
  return static_cast<CommandId>(static_cast<uint32_t>(request) | 0x80000000u);
}

bool BodyMatches(CommandId id, const Body& body) {
  const Layout layout = LayoutOf(id);
  return layout != Layout::kUnsupported && body.index() == static_cast<size_t>(layout);
}

Pdu MakePdu(CommandId id, uint32_t sequence_number, uint32_t command_status) {
  Pdu pdu;
  pdu.header.command_id = id;
  pdu.header.command_status = command_status;
  pdu.header.sequence_number = sequence_number;
  pdu.body = DefaultBody(LayoutOf(id));
  return pdu;
}

Pdu MakeResponseFor(const Header& request, uint32_t command_status) {
  const std::optional<CommandId> response = ResponseIdFor(request.command_id);
  if (!response) return MakeGenericNack(request.sequence_number, command_status);
  return MakePdu(*response, request.sequence_number, command_status);
}

Pdu MakeGenericNack(uint32_t sequence_number, uint32_t command_status) {
  return MakePdu(CommandId::kGenericNack, sequence_number, command_status);
}

// --- Summarize ------------------------------------------------------------------------

namespace {

void AppendHex8(std::string* out, uint8_t v) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02X", v);
  out->append(buf);
}

void AppendAddress(std::string* out, std::string_view label, uint8_t ton, uint8_t npi,
                   const std::string& addr) {
  out->append(" ").append(label).append(" ");
  out->append(std::to_string(ton)).append("/").append(std::to_string(npi)).append("/");
  out->append(addr);
}

void AppendTlvs(std::string* out, const TlvList& tlvs) {
  if (tlvs.empty()) return;
  out->append(" tlvs ");
  bool first = true;
  for (const Tlv& t : tlvs.entries()) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%04X", t.tag);
    if (!first) out->append(",");
    out->append(buf);
    first = false;
  }
}

struct SummaryVisitor {
  std::string* out;
  void operator()(const EmptyBody&) const {}
  void operator()(const BindBody& b) const {
    out->append(" system_id ").append(b.system_id).append(" password ***");
    if (!b.system_type.empty()) out->append(" system_type ").append(b.system_type);
    out->append(" version ");
    AppendHex8(out, b.interface_version);
    if (!b.address_range.empty()) out->append(" range ").append(b.address_range);
  }
  void operator()(const BindRespBody& b) const {
    out->append(" system_id ").append(b.system_id);
    AppendTlvs(out, b.tlvs);
  }
  void operator()(const OutbindBody& b) const {
    out->append(" system_id ").append(b.system_id).append(" password ***");
  }
  void operator()(const ShortMessageBody& b) const {
    if (!b.service_type.empty()) out->append(" service_type ").append(b.service_type);
    AppendAddress(out, "src", b.source_addr_ton, b.source_addr_npi, b.source_addr);
    AppendAddress(out, "dst", b.dest_addr_ton, b.dest_addr_npi, b.destination_addr);
    out->append(" esm ");
    AppendHex8(out, b.esm_class);
    out->append(" dc ");
    AppendHex8(out, b.data_coding);
    if (b.registered_delivery != 0) {
      out->append(" registered_delivery ");
      AppendHex8(out, b.registered_delivery);
    }
    out->append(" sm ").append(std::to_string(b.short_message.size())).append(" octets");
    AppendTlvs(out, b.tlvs);
  }
  void operator()(const MessageIdRespBody& b) const {
    if (!b.message_id.empty()) out->append(" message_id ").append(b.message_id);
    AppendTlvs(out, b.tlvs);
  }
  void operator()(const DataSmBody& b) const {
    if (!b.service_type.empty()) out->append(" service_type ").append(b.service_type);
    AppendAddress(out, "src", b.source_addr_ton, b.source_addr_npi, b.source_addr);
    AppendAddress(out, "dst", b.dest_addr_ton, b.dest_addr_npi, b.destination_addr);
    out->append(" esm ");
    AppendHex8(out, b.esm_class);
    out->append(" dc ");
    AppendHex8(out, b.data_coding);
    AppendTlvs(out, b.tlvs);
  }
  void operator()(const QuerySmBody& b) const {
    out->append(" message_id ").append(b.message_id);
    AppendAddress(out, "src", b.source_addr_ton, b.source_addr_npi, b.source_addr);
  }
  void operator()(const QuerySmRespBody& b) const {
    out->append(" message_id ").append(b.message_id);
    if (!b.final_date.empty()) out->append(" final_date ").append(b.final_date);
    out->append(" state ").append(std::to_string(b.message_state));
    out->append(" error ").append(std::to_string(b.error_code));
  }
};

}  // namespace

std::string Summarize(const Pdu& pdu) {
  std::string out;
  const std::string_view name = CommandIdName(pdu.header.command_id);
  if (name.empty()) {
    char hex[24];
    std::snprintf(hex, sizeof(hex), "command_id 0x%08X",
                  static_cast<uint32_t>(pdu.header.command_id));
    out += hex;
  } else {
    out += name;
  }
  out += " seq " + std::to_string(pdu.header.sequence_number) + " ";
  const std::string_view status_name = CommandStatusName(pdu.header.command_status);
  out += status_name.empty() ? FormatCommandStatus(pdu.header.command_status)
                             : std::string(status_name);
  std::visit(SummaryVisitor{&out}, pdu.body);
  return out;
}

// --- Decode ---------------------------------------------------------------------------

std::string_view DecodeErrorName(DecodeError error) {
  switch (error) {
    case DecodeError::kNone: return "ok";
    case DecodeError::kTruncatedHeader: return "truncated header";
    case DecodeError::kCommandLengthTooSmall: return "command_length below 16";
    case DecodeError::kCommandLengthTooLarge: return "command_length above the maximum";
    case DecodeError::kCommandLengthMismatch: return "command_length differs from the PDU size";
    case DecodeError::kUnknownCommandId: return "unknown command_id";
    case DecodeError::kBodyTruncated: return "body shorter than its mandatory fields";
    case DecodeError::kStringNotTerminated: return "C-octet string without NUL";
    case DecodeError::kStringTooLong: return "C-octet string too long";
    case DecodeError::kSmLengthTooLong: return "sm_length above 254";
    case DecodeError::kSmLengthBeyondBody: return "sm_length beyond the body";
    case DecodeError::kTlvTruncated: return "TLV beyond the PDU";
    case DecodeError::kTlvBadLength: return "TLV with a wrong length";
    case DecodeError::kTrailingBytes: return "trailing bytes after the body";
  }
  return "unknown decode error";
}

DecodeResult Decode(std::string_view wire, Pdu* out, const DecodeLimits& limits) {
  DecodeResult r;
  if (!ReadHeader(wire, limits, &r)) return r;
  if (wire.size() != r.header.command_length) {
    FailFraming(&r, DecodeError::kCommandLengthMismatch, "command_length");
    return r;
  }
  const Header& h = r.header;
  const Layout layout = LayoutOf(h.command_id);
  if (layout == Layout::kUnsupported) {
    r.error = DecodeError::kUnknownCommandId;
    r.answer = Answer::kGenericNack;
    r.status = status::kInvCmdId;
    r.field = "command_id";
    return r;
  }

  out->header = h;
  const auto* begin = reinterpret_cast<const uint8_t*>(wire.data());
  BodyReader reader(begin + kHeaderLength, begin + wire.size());
  // A failed response may come without its body (§4.4.2 and what SMSCs do for the
  // others); that is not an error.
  const bool header_only_response = IsResponse(h.command_id) && h.command_status != status::kOk &&
                                    wire.size() == kHeaderLength;
  Body* body = &out->body;
  switch (layout) {
    case Layout::kEmpty: DecodeLayout<EmptyBody>(reader, body, false); break;
    case Layout::kBind: DecodeLayout<BindBody>(reader, body, false); break;
    case Layout::kBindResp: DecodeLayout<BindRespBody>(reader, body, header_only_response); break;
    case Layout::kOutbind: DecodeLayout<OutbindBody>(reader, body, false); break;
    case Layout::kShortMessage: DecodeLayout<ShortMessageBody>(reader, body, false); break;
    case Layout::kMessageIdResp:
      DecodeLayout<MessageIdRespBody>(reader, body, header_only_response);
      break;
    case Layout::kDataSm: DecodeLayout<DataSmBody>(reader, body, false); break;
    case Layout::kQuerySm: DecodeLayout<QuerySmBody>(reader, body, false); break;
    case Layout::kQuerySmResp:
      DecodeLayout<QuerySmRespBody>(reader, body, header_only_response);
      break;
    case Layout::kUnsupported: break;
  }
  if (reader.failed()) {
    r.error = reader.error();
    r.status = reader.status();
    r.field = reader.field();
    if (IsResponse(h.command_id)) {
      r.answer = Answer::kNone;
    } else if (ResponseIdFor(h.command_id)) {
      r.answer = Answer::kResponse;
    } else {
      r.answer = Answer::kGenericNack;  // outbind has no response of its own
    }
  }
  return r;
}

std::optional<Pdu> AnswerFor(const DecodeResult& result) {
  switch (result.answer) {
    case Answer::kNone:
      return std::nullopt;
    case Answer::kGenericNack:
      return MakeGenericNack(result.sequence_known ? result.header.sequence_number : 0,
                             result.status);
    case Answer::kResponse:
      return MakeResponseFor(result.header, result.status);
  }
  return std::nullopt;
}

std::string Describe(const DecodeResult& result) {
  std::string out;
  const std::string_view name = CommandIdName(result.header.command_id);
  if (name.empty()) {
    char hex[24];
    std::snprintf(hex, sizeof(hex), "command_id 0x%08X",
                  static_cast<uint32_t>(result.header.command_id));
    out += hex;
  } else {
    out += name;
  }
  if (result.sequence_known) out += " seq " + std::to_string(result.header.sequence_number);
  out += ": ";
  out += DecodeErrorName(result.error);
  if (!result.field.empty()) out.append(" (").append(result.field).append(")");
  switch (result.answer) {
    case Answer::kNone:
      if (!result.ok()) out += "; not answered (malformed response)";
      break;
    case Answer::kGenericNack:
      out += "; answer generic_nack " + FormatCommandStatus(result.status);
      break;
    case Answer::kResponse: {
      const std::optional<CommandId> resp = ResponseIdFor(result.header.command_id);
      out.append("; answer ").append(resp ? CommandIdName(*resp) : "response");
      out += " " + FormatCommandStatus(result.status);
      break;
    }
  }
  if (result.close_connection) out += "; closing the connection";
  return out;
}

FrameCheck CheckFrame(std::string_view buffered, const DecodeLimits& limits) {
  FrameCheck f;
  if (buffered.size() < 4) return f;
  if (!ReadHeader(buffered, limits, &f.error)) {
    f.state = FrameState::kInvalid;
    return f;
  }
  f.command_length = f.error.header.command_length;
  f.error = DecodeResult{};  // only meaningful when kInvalid
  f.state = buffered.size() >= f.command_length ? FrameState::kReady : FrameState::kNeedMore;
  return f;
}

// --- Encode ---------------------------------------------------------------------------

std::string_view EncodeErrorName(EncodeError error) {
  switch (error) {
    case EncodeError::kNone: return "ok";
    case EncodeError::kBodyMismatch: return "body layout does not match command_id";
    case EncodeError::kUnsupportedCommand: return "command_id not supported";
    case EncodeError::kStringTooLong: return "C-octet string too long";
    case EncodeError::kStringHasNul: return "C-octet string contains NUL";
    case EncodeError::kShortMessageTooLong: return "short_message above 254 octets";
    case EncodeError::kTlvTooLong: return "TLV value above 65535 octets";
    case EncodeError::kPduTooLong: return "PDU longer than 2^32-1";
  }
  return "unknown encode error";
}

EncodeError Encode(const Pdu& pdu, std::string* out) {
  const Header& h = pdu.header;
  const Layout layout = LayoutOf(h.command_id);
  if (layout == Layout::kUnsupported) return EncodeError::kUnsupportedCommand;
  if (pdu.body.index() != static_cast<size_t>(layout)) return EncodeError::kBodyMismatch;
  const bool omit_body = h.command_status != status::kOk && BodyOmittedOnError(h.command_id);

  Sizer sizer;
  if (!omit_body) std::visit([&sizer](const auto& b) { Visit(sizer, b); }, pdu.body);
  if (sizer.error() != EncodeError::kNone) return sizer.error();
  const size_t total = kHeaderLength + sizer.size();
  if (total > std::numeric_limits<uint32_t>::max()) return EncodeError::kPduTooLong;

  const size_t start = out->size();
  out->resize(start + total);
  auto* p = reinterpret_cast<uint8_t*>(out->data() + start);
  StoreBe32(p, static_cast<uint32_t>(total));
  StoreBe32(p + 4, static_cast<uint32_t>(h.command_id));
  StoreBe32(p + 8, h.command_status);
  StoreBe32(p + 12, h.sequence_number);
  if (!omit_body) {
    Writer writer(p + kHeaderLength);
    std::visit([&writer](const auto& b) { Visit(writer, b); }, pdu.body);
  }
  return EncodeError::kNone;
}

}  // namespace donagate::smpp
