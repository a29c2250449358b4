// libFuzzer target for the SMPP PDU decoder (protocol/pdu.h).
//
// The input is treated as a TCP byte stream, split the way a link splits it (CheckFrame),
// each frame decoded twice (into a fresh Pdu and into one reused across frames, which
// exercises buffer reuse). Checked properties, any violation aborts:
//   - decoding never crashes or reads out of bounds (ASan/UBSan);
//   - a frame CheckFrame calls ready never fails Decode for a framing reason;
//   - a decoded PDU re-encodes, and the re-encoding decodes to the same PDU;
//   - fresh and reused decoding agree;
//   - the answer to a refused PDU (AnswerFor) always encodes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/pdu.h"

namespace {

using namespace donagate::smpp;

void Check(bool ok) {
  if (!ok) std::abort();
}

bool BodyDroppedByEncode(const Header& h) {
  return h.command_status != status::kOk &&
         (h.command_id == CommandId::kSubmitSmResp || h.command_id == CommandId::kBindReceiverResp ||
          h.command_id == CommandId::kBindTransmitterResp ||
          h.command_id == CommandId::kBindTransceiverResp);
}

void CheckOne(std::string_view frame, Pdu* reused, const DecodeLimits& limits) {
  Pdu pdu;
  const DecodeResult r = Decode(frame, &pdu, limits);
  const DecodeResult again = Decode(frame, reused, limits);
  Check(r.error == again.error && r.status == again.status && r.answer == again.answer);
  Check(!r.close_connection);  // the frame was vetted by CheckFrame
  if (!r.ok()) {
    Check(!Describe(r).empty());
    if (std::optional<Pdu> answer = AnswerFor(r)) {
      std::string out;
      Check(Encode(*answer, &out) == EncodeError::kNone);
    }
    return;
  }
  Check(*reused == pdu);
  Check(!Summarize(pdu).empty());

  std::string wire;
  Check(Encode(pdu, &wire) == EncodeError::kNone);
  Pdu round;
  const DecodeResult r2 = Decode(wire, &round, limits);
  Check(r2.ok());
  Check(round.header.command_length == wire.size());
  round.header.command_length = pdu.header.command_length;
  if (BodyDroppedByEncode(pdu.header)) {
    Check(round.header == pdu.header);
  } else {
    Check(round == pdu);
  }
  // Encoding is canonical: a second round trip gives the same bytes.
  std::string wire2;
  Check(Encode(round, &wire2) == EncodeError::kNone && wire2 == wire);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view stream(reinterpret_cast<const char*>(data), size);
  // A small limit now and then so the too-large path is reached with small inputs.
  const DecodeLimits limits{size > 0 && data[0] == 0x7F ? 64u : kDefaultMaxCommandLength};
  Pdu reused;
  while (!stream.empty()) {
    const FrameCheck f = CheckFrame(stream, limits);
    if (f.state == FrameState::kInvalid) {
      Check(f.error.close_connection && f.error.answer == Answer::kGenericNack);
      std::string out;
      Check(Encode(*AnswerFor(f.error), &out) == EncodeError::kNone);
      break;
    }
    if (f.state == FrameState::kNeedMore) {
      // A link would wait; the decoder must still refuse the short buffer cleanly.
      Pdu pdu;
      const DecodeResult r = Decode(stream, &pdu, limits);
      Check(!r.ok() && r.close_connection);
      break;
    }
    CheckOne(stream.substr(0, f.command_length), &reused, limits);
    stream.remove_prefix(f.command_length);
  }
  return 0;
}
