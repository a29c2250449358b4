// libFuzzer target for the settlement-file reader (billing/finance/settlement.h) and the
// CSV splitter under it. The first input byte picks one of three mappings (operator A's
// layout with a Vietnamese spreadsheet number format, operator B's, a headerless positional
// one); the rest is the file.
// Properties, any violation aborts: no crash or out-of-bounds read (ASan/UBSan); an accepted
// file yields rows with a non-empty reference, a non-negative amount and strictly increasing
// line numbers; a refused file names a line within the input. The console's layout detection
// (DetectSettlementLayout) reads the same bytes: no row wider than its cap, at most 10 rows, a
// delimiter out of the four candidates.
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "billing/finance/settlement.h"

namespace {

using donagate::finance::SettlementMapping;

void Check(bool ok) {
  if (!ok) std::abort();
}

SettlementMapping Mapping(uint8_t pick) {
  SettlementMapping m;
  switch (pick % 3) {
    case 0:
      m.reference_column = "CP_REF";
      m.msisdn_column = "MSISDN";
      m.amount_column = "AMOUNT";
      m.time_column = "CHARGE_TIME";
      m.status_column = "RESULT";
      m.time_format = "%d/%m/%Y %H:%M:%S";
      m.time_zone = "Asia/Ho_Chi_Minh";
      m.charged_values = {"SUCCESS"};
      m.amount_format = {".", ",", "", "\xC4\x91"};  // 100.000,00 đ
      break;
    case 1:
      m.delimiter = ';';
      m.reference_column = "cp_transaction";
      m.msisdn_column = "msisdn";
      m.amount_column = "amount_vnd";
      m.time_column = "charged_at_utc";
      m.status_column = "status";
      m.charged_values = {"0"};
      break;
    default:
      m.header = false;
      m.delimiter = '|';
      m.reference_column = "1";
      m.amount_column = "2";
      m.time_column = "3";
      break;
  }
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  SettlementMapping m = Mapping(data[0]);
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::istringstream in(text);
  std::vector<donagate::finance::SettlementRow> rows;
  donagate::finance::SettlementError error;
  size_t lines = 1;
  for (char c : text) lines += (c == '\n');
  if (donagate::finance::ReadSettlement(in, m, &rows, &error)) {
    size_t last = 0;
    for (auto& r : rows) {
      Check(!r.reference.empty());
      Check(r.amount_vnd >= 0);
      Check(r.line > last && r.line <= lines);
      last = r.line;
    }
  } else {
    Check(error.line <= lines);
    Check(!error.message.empty());
  }
  std::istringstream again(text);
  donagate::finance::SettlementLayout layout;
  std::string why;
  if (donagate::finance::DetectSettlementLayout(again, "#", 10, &layout, &why)) {
    Check(layout.rows.size() <= 10);
    Check(std::string(",;\t|").find(layout.delimiter) != std::string::npos);
    Check(!layout.encoding.empty());
  } else {
    Check(!why.empty());
  }
  return 0;
}
