// Text codec throughput: the decode of every MO and the encode of every reply go through here.
// Messages per second = items_per_second; bytes_per_second counts user data octets.
#include <benchmark/benchmark.h>

#include <string>

#include "protocol/text_codec.h"

namespace {

using donagate::smpp::DecodeOptions;
using donagate::smpp::DecodeSmsText;
using donagate::smpp::DefaultAlphabet;
using donagate::smpp::EncodeForSms;
using donagate::smpp::SplitForSms;

const std::string kShortGsm = "CV 5";
// 160 septets of a typical reply, with two extension characters.
const std::string kFullGsmText =
    "Cam on Quy khach da ung ho 100.000 dong cho chuong trinh {Vi nguoi ngheo} 2026. Ma GD: don-123456789. "
    "Soan CV n gui 1407 de tiep tuc ung ho. Tong dai 1900";
const std::string kVietnamese =
    "C\u1EA3m \u01A1n Qu\u00FD kh\u00E1ch \u0111\u00E3 \u1EE7ng h\u1ED9 100.000 \u0111\u1ED3ng cho ch\u01B0\u01A1ng "
    "tr\u00ECnh V\u00EC ng\u01B0\u1EDDi ngh\u00E8o";

void Decode(benchmark::State& state, const std::string& payload, uint8_t dc, DecodeOptions options = {}) {
  for (auto _ : state) {
    auto decoded = DecodeSmsText(payload, dc, options);
    benchmark::DoNotOptimize(decoded);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(payload.size()));
}

void BM_DecodeGsm7Short(benchmark::State& state) { Decode(state, EncodeForSms(kShortGsm).payload, 0x00); }
BENCHMARK(BM_DecodeGsm7Short);

void BM_DecodeGsm7Unpacked160(benchmark::State& state) {
  Decode(state, EncodeForSms(kFullGsmText.substr(0, 158)).payload, 0x00);
}
BENCHMARK(BM_DecodeGsm7Unpacked160);

void BM_DecodeGsm7Packed160(benchmark::State& state) {
  donagate::smpp::EncodeOptions packed;
  packed.gsm_packed = true;
  DecodeOptions options;
  options.default_alphabet = DefaultAlphabet::kGsm7Packed;
  Decode(state, EncodeForSms(kFullGsmText.substr(0, 158), packed).payload, 0x00, options);
}
BENCHMARK(BM_DecodeGsm7Packed160);

void BM_DecodeUcs2Short(benchmark::State& state) { Decode(state, std::string("\0C\0V\0 \0005", 8), 0x08); }
BENCHMARK(BM_DecodeUcs2Short);

void BM_DecodeUcs2Vietnamese70(benchmark::State& state) {
  Decode(state, EncodeForSms(kVietnamese).payload.substr(0, 140), 0x08);
}
BENCHMARK(BM_DecodeUcs2Vietnamese70);

void BM_EncodeForSmsGsm(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(EncodeForSms(kFullGsmText));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeForSmsGsm);

void BM_EncodeForSmsUcs2(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(EncodeForSms(kVietnamese));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeForSmsUcs2);

void BM_SplitForSmsLongUcs2(benchmark::State& state) {
  const std::string text = kVietnamese + " " + kVietnamese + " " + kVietnamese;
  for (auto _ : state) benchmark::DoNotOptimize(SplitForSms(text, 7));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SplitForSmsLongUcs2);

}  // namespace
