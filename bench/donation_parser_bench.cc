// "CV n" parsing throughput: the parser runs once per MO on the ingest path, so it must stay far
// below the cost of everything else there (target: >= 10 million parses per second per core).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "billing/domain/donation_parser.h"

namespace {

using donagate::billing::ParseDonation;

// A realistic mix: mostly valid, some padded, some full-width, some junk.
const std::vector<std::string>& Mix() {
  static const std::vector<std::string> texts = {
      "CV 5", "cv 1", "CV", "CV10", "cv-2", "CV 5.", "  CV 3  ", "CV\xC2\xA0" "7",
      "CV \xEF\xBC\x95", "CV 100", "CV 0", "CV 101", "Ung ho CV 5", "CV five",
      "CV 99999999999999999999", "", "hello", "CV 5!!", "cv_20", "CV 1'); DROP TABLE x;--"};
  return texts;
}

void BM_ParseDonationMix(benchmark::State& state) {
  const auto& texts = Mix();
  size_t i = 0;
  for (auto _ : state) {
    auto r = ParseDonation(texts[i], "CV", 100);
    benchmark::DoNotOptimize(r);
    if (++i == texts.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseDonationMix);

void BM_ParseDonationTypical(benchmark::State& state) {
  const std::string text = "CV 5";
  for (auto _ : state) {
    auto r = ParseDonation(text, "CV", 100);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseDonationTypical);

void BM_ParseDonationLongJunk(benchmark::State& state) {
  // A 160-character message that starts with the keyword: the worst ordinary case.
  const std::string text = "CV 5 " + std::string(155, 'x');
  for (auto _ : state) {
    auto r = ParseDonation(text, "CV", 100);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseDonationLongJunk);

}  // namespace
