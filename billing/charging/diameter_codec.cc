#include "billing/charging/diameter_codec.h"

#include <arpa/inet.h>

#include <cstring>

namespace donagate::billing::diameter {

namespace {

void Put24(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

void Put32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  Put24(out, v);
}

void Put64(std::string& out, uint64_t v) {
  Put32(out, static_cast<uint32_t>(v >> 32));
  Put32(out, static_cast<uint32_t>(v));
}

uint32_t Get24(const unsigned char* p) { return (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2]; }
uint32_t Get32(const unsigned char* p) { return (uint32_t{p[0]} << 24) | Get24(p + 1); }

void EncodeAvp(std::string& out, const Avp& avp) {
  const bool vendor = (avp.flags & kAvpVendor) != 0;
  const uint32_t header = vendor ? 12 : 8;
  Put32(out, avp.code);
  out.push_back(static_cast<char>(avp.flags));
  Put24(out, header + static_cast<uint32_t>(avp.data.size()));
  if (vendor) Put32(out, avp.vendor_id);
  out += avp.data;
  while (out.size() % 4 != 0) out.push_back('\0');
}

bool DecodeAvps(std::string_view bytes, std::vector<Avp>* out, std::string* error) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (bytes.size() - pos < 8) {
      *error = "truncated AVP header";
      return false;
    }
    Avp avp;
    avp.code = Get32(p + pos);
    avp.flags = p[pos + 4];
    const uint32_t length = Get24(p + pos + 5);
    const uint32_t header = (avp.flags & kAvpVendor) ? 12 : 8;
    if (length < header || length > bytes.size() - pos) {
      *error = "AVP " + std::to_string(avp.code) + " length " + std::to_string(length) + " is out of bounds";
      return false;
    }
    if (header == 12) avp.vendor_id = Get32(p + pos + 8);
    avp.data.assign(bytes.data() + pos + header, length - header);
    out->push_back(std::move(avp));
    const size_t padded = (static_cast<size_t>(length) + 3) & ~size_t{3};
    // The last AVP may omit its padding only if nothing follows; be lenient on that.
    pos += std::min(padded, bytes.size() - pos);
  }
  return true;
}

}  // namespace

Avp Avp::OctetString(uint32_t code, std::string_view value, uint32_t vendor) {
  Avp a;
  a.code = code;
  if (vendor != 0) {
    a.flags |= kAvpVendor;
    a.vendor_id = vendor;
  }
  a.data = std::string(value);
  return a;
}

Avp Avp::Unsigned32(uint32_t code, uint32_t value, uint32_t vendor) {
  std::string d;
  Put32(d, value);
  return OctetString(code, d, vendor);
}

Avp Avp::Integer32(uint32_t code, int32_t value) { return Unsigned32(code, static_cast<uint32_t>(value)); }

Avp Avp::Integer64(uint32_t code, int64_t value) { return Unsigned64(code, static_cast<uint64_t>(value)); }

Avp Avp::Unsigned64(uint32_t code, uint64_t value) {
  std::string d;
  Put64(d, value);
  return OctetString(code, d);
}

Avp Avp::Address(uint32_t code, const std::string& ipv4) {
  std::string d;
  in_addr addr{};
  if (inet_pton(AF_INET, ipv4.c_str(), &addr) == 1) {
    d.push_back('\0');
    d.push_back('\1');  // address family 1 = IPv4
    d.append(reinterpret_cast<const char*>(&addr), 4);
  } else {
    in6_addr addr6{};
    if (inet_pton(AF_INET6, ipv4.c_str(), &addr6) == 1) {
      d.push_back('\0');
      d.push_back('\2');
      d.append(reinterpret_cast<const char*>(&addr6), 16);
    } else {
      d = std::string("\0\1\x7f\0\0\1", 6);
    }
  }
  return OctetString(code, d);
}

Avp Avp::Grouped(uint32_t code, const std::vector<Avp>& children) {
  Avp a;
  a.code = code;
  for (const Avp& c : children) EncodeAvp(a.data, c);
  return a;
}

std::optional<uint32_t> Avp::AsUnsigned32() const {
  if (data.size() != 4) return std::nullopt;
  return Get32(reinterpret_cast<const unsigned char*>(data.data()));
}

std::optional<int32_t> Avp::AsInteger32() const {
  auto v = AsUnsigned32();
  if (!v) return std::nullopt;
  return static_cast<int32_t>(*v);
}

std::optional<int64_t> Avp::AsInteger64() const {
  if (data.size() != 8) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  return static_cast<int64_t>((uint64_t{Get32(p)} << 32) | Get32(p + 4));
}

std::optional<std::vector<Avp>> Avp::Children() const {
  std::vector<Avp> out;
  std::string error;
  if (!DecodeAvps(data, &out, &error)) return std::nullopt;
  return out;
}

const Avp* Message::Find(uint32_t code, uint32_t vendor) const {
  for (const Avp& a : avps) {
    if (a.code == code && (vendor == 0 ? (a.flags & kAvpVendor) == 0 || a.vendor_id == 0 : a.vendor_id == vendor)) {
      return &a;
    }
  }
  return nullptr;
}

std::string Message::FindString(uint32_t code) const {
  const Avp* a = Find(code);
  return a ? a->data : std::string();
}

std::optional<uint32_t> Message::FindUnsigned32(uint32_t code) const {
  const Avp* a = Find(code);
  return a ? a->AsUnsigned32() : std::nullopt;
}

std::optional<uint32_t> Message::ResultCode() const {
  if (auto rc = FindUnsigned32(kAvpResultCode)) return rc;
  if (const Avp* er = Find(kAvpExperimentalResult)) {
    if (auto children = er->Children()) {
      for (const Avp& c : *children) {
        if (c.code == kAvpExperimentalResultCode) return c.AsUnsigned32();
      }
    }
  }
  return std::nullopt;
}

std::string Encode(const Message& m) {
  std::string out;
  out.reserve(256);
  out.push_back('\1');
  Put24(out, 0);  // length, patched below
  out.push_back(static_cast<char>(m.flags));
  Put24(out, m.command);
  Put32(out, m.application);
  Put32(out, m.hop_by_hop);
  Put32(out, m.end_to_end);
  for (const Avp& a : m.avps) EncodeAvp(out, a);
  const uint32_t length = static_cast<uint32_t>(out.size());
  out[1] = static_cast<char>((length >> 16) & 0xff);
  out[2] = static_cast<char>((length >> 8) & 0xff);
  out[3] = static_cast<char>(length & 0xff);
  return out;
}

uint32_t MessageLength(std::string_view header) {
  if (header.size() < 4 || static_cast<unsigned char>(header[0]) != 1) return 0;
  return Get24(reinterpret_cast<const unsigned char*>(header.data()) + 1);
}

std::optional<Message> Decode(std::string_view bytes, std::string* error) {
  if (bytes.size() < 20) {
    *error = "message shorter than the 20-byte header";
    return std::nullopt;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (p[0] != 1) {
    *error = "unsupported Diameter version " + std::to_string(p[0]);
    return std::nullopt;
  }
  if (Get24(p + 1) != bytes.size()) {
    *error = "message length field " + std::to_string(Get24(p + 1)) + " <> " + std::to_string(bytes.size()) + " bytes";
    return std::nullopt;
  }
  Message m;
  m.flags = p[4];
  m.command = Get24(p + 5);
  m.application = Get32(p + 8);
  m.hop_by_hop = Get32(p + 12);
  m.end_to_end = Get32(p + 16);
  if (!DecodeAvps(bytes.substr(20), &m.avps, error)) return std::nullopt;
  return m;
}

Message AnswerTo(const Message& request) {
  Message a;
  a.flags = static_cast<uint8_t>(request.flags & kFlagProxiable);
  a.command = request.command;
  a.application = request.application;
  a.hop_by_hop = request.hop_by_hop;
  a.end_to_end = request.end_to_end;
  return a;
}

}  // namespace donagate::billing::diameter
