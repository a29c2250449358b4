// libFuzzer target for the Diameter codec (billing/charging/diameter_codec.h): any bytes must
// decode to a message or be refused with a reason, never crash or read past the input; a
// decoded message re-encodes to a message that decodes to the same header and AVP payloads,
// and grouped views of every AVP are safe too.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "billing/charging/diameter_codec.h"

namespace {
void Check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace donagate::billing::diameter;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)MessageLength(bytes);
  std::string error;
  auto m = Decode(bytes, &error);
  if (!m) {
    Check(!error.empty());
    return 0;
  }
  for (const Avp& a : m->avps) {
    (void)a.Children();
    (void)a.AsUnsigned32();
    (void)a.AsInteger64();
  }
  (void)m->ResultCode();
  const std::string again = Encode(*m);
  auto back = Decode(again, &error);
  Check(back.has_value());
  Check(back->command == m->command && back->flags == m->flags && back->hop_by_hop == m->hop_by_hop &&
        back->end_to_end == m->end_to_end && back->avps.size() == m->avps.size());
  for (size_t i = 0; i < m->avps.size(); ++i) Check(back->avps[i].data == m->avps[i].data);
  return 0;
}
