// Micro-benchmarks for the SMPP PDU codec (issue 8 target: >= 5 M deliver_sm decodes/s/core).
//
// The messages are what a telethon brings: a 160-octet GSM text from an 11-digit MSISDN to
// a short code, with concatenation TLVs (sar_*) on the deliver_sm and
// user_message_reference + registered_delivery on the submit_sm reply.
#include <benchmark/benchmark.h>

#include <string>

#include "protocol/pdu.h"

namespace donagate::smpp {
namespace {

std::string Text160() {
  std::string text;
  while (text.size() < 160) text += "CV 5 ung ho dong bao mien Trung. ";
  text.resize(160);
  return text;
}

Pdu RealisticDeliverSm() {
  Pdu pdu = MakePdu(CommandId::kDeliverSm, 123456);
  auto& d = std::get<DeliverSm>(pdu.body);
  d.source_addr_ton = 1;
  d.source_addr_npi = 1;
  d.source_addr = "84912345678";
  d.destination_addr = "1407";
  d.esm_class = 0x00;
  d.data_coding = 0;
  d.short_message = Text160();
  d.tlvs.set_sar_msg_ref_num(0x1A2B);
  d.tlvs.set_sar_total_segments(2);
  d.tlvs.set_sar_segment_seqnum(1);
  return pdu;
}

Pdu RealisticSubmitSm() {
  Pdu pdu = MakePdu(CommandId::kSubmitSm, 654321);
  auto& s = std::get<SubmitSm>(pdu.body);
  s.source_addr_ton = 5;
  s.source_addr = "1407";
  s.dest_addr_ton = 1;
  s.dest_addr_npi = 1;
  s.destination_addr = "84912345678";
  s.registered_delivery = 1;
  s.short_message = Text160();
  s.tlvs.set_user_message_reference(42);
  s.tlvs.set_source_port(0x0B84);
  return pdu;
}

std::string Wire(const Pdu& pdu) {
  std::string wire;
  if (Encode(pdu, &wire) != EncodeError::kNone) std::abort();
  return wire;
}

// The link's pattern: one Pdu per connection, decoded into again and again.
void BM_DecodeDeliverSm_Reused(benchmark::State& state) {
  const std::string wire = Wire(RealisticDeliverSm());
  Pdu pdu;
  for (auto _ : state) {
    DecodeResult r = Decode(wire, &pdu);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(pdu);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(wire.size()));
}
BENCHMARK(BM_DecodeDeliverSm_Reused);

// Worst case: a fresh Pdu each time (allocates short_message and the TLV vector).
void BM_DecodeDeliverSm_Fresh(benchmark::State& state) {
  const std::string wire = Wire(RealisticDeliverSm());
  for (auto _ : state) {
    Pdu pdu;
    DecodeResult r = Decode(wire, &pdu);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(pdu);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(wire.size()));
}
BENCHMARK(BM_DecodeDeliverSm_Fresh);

// Framing plus decode over a buffer of back-to-back PDUs, as a link's read loop sees it.
void BM_FrameAndDecodeDeliverSmStream(benchmark::State& state) {
  const std::string one = Wire(RealisticDeliverSm());
  std::string stream;
  for (int i = 0; i < 64; ++i) stream += one;
  Pdu pdu;
  for (auto _ : state) {
    std::string_view rest = stream;
    while (!rest.empty()) {
      const FrameCheck f = CheckFrame(rest);
      if (f.state != FrameState::kReady) std::abort();
      DecodeResult r = Decode(rest.substr(0, f.command_length), &pdu);
      benchmark::DoNotOptimize(r);
      rest.remove_prefix(f.command_length);
    }
  }
  state.SetItemsProcessed(state.iterations() * 64);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(stream.size()));
}
BENCHMARK(BM_FrameAndDecodeDeliverSmStream);

// Encoding into a reused output buffer (the link's write buffer).
void BM_EncodeSubmitSm(benchmark::State& state) {
  const Pdu pdu = RealisticSubmitSm();
  std::string out;
  for (auto _ : state) {
    out.clear();
    EncodeError e = Encode(pdu, &out);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_EncodeSubmitSm);

void BM_EncodeDeliverSmResp(benchmark::State& state) {
  const Pdu pdu = MakeResponseFor(Header{0, CommandId::kDeliverSm, 0, 99}, status::kOk);
  std::string out;
  for (auto _ : state) {
    out.clear();
    EncodeError e = Encode(pdu, &out);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeDeliverSmResp);

}  // namespace
}  // namespace donagate::smpp
