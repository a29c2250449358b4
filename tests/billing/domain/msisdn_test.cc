// MSISDN normalisation (what gets charged and stored) and masking (what logs may show).
#include "billing/domain/msisdn.h"

#include <gtest/gtest.h>

namespace donagate::billing {
namespace {

TEST(MsisdnTest, AcceptedFormsNormaliseTo84) {
  // 0084…: "00" is the international prefix dialled from Vietnam (issue 15: a donation from
  // "0084916000005" was recorded as invalid_msisdn and silently dropped).
  for (const char* raw : {"84912345678", "+84912345678", "0084912345678", "0912345678",
                          " 0912345678\r\n", " 0084912345678 "}) {
    NormalizedMsisdn n = NormalizeMsisdn(raw);
    EXPECT_TRUE(n.ok()) << raw << " " << ToString(n.status);
    EXPECT_EQ(n.msisdn, "84912345678") << raw;
  }
  // Every current mobile range.
  for (const char* raw : {"0312345678", "0512345678", "0712345678", "0812345678", "0987654321"}) {
    EXPECT_TRUE(NormalizeMsisdn(raw).ok()) << raw;
  }
  EXPECT_EQ(NormalizeMsisdn("0386000111").msisdn, "84386000111");
}

TEST(MsisdnTest, RejectedForms) {
  struct Case {
    const char* raw;
    MsisdnStatus status;
  };
  const Case cases[] = {
      {"", MsisdnStatus::kEmpty},
      {"   ", MsisdnStatus::kEmpty},
      {"+", MsisdnStatus::kInvalidCharacter},
      {"+84 912 345 678", MsisdnStatus::kInvalidCharacter},
      {"091-234-5678", MsisdnStatus::kInvalidCharacter},
      {"84912345678x", MsisdnStatus::kInvalidCharacter},
      {"++84912345678", MsisdnStatus::kInvalidCharacter},
      {"\xEF\xBC\x90\xEF\xBC\x99" "12345678", MsisdnStatus::kInvalidCharacter},  // full-width digits
      {"14155550100", MsisdnStatus::kNotVietnamese},
      {"+14155550100", MsisdnStatus::kNotVietnamese},
      {"+0912345678", MsisdnStatus::kNotVietnamese},
      {"1407", MsisdnStatus::kNotVietnamese},
      {"8491234567", MsisdnStatus::kWrongLength},
      {"849123456789", MsisdnStatus::kWrongLength},
      {"01234567890", MsisdnStatus::kWrongLength},   // retired 11-digit 01xx
      {"008491234567", MsisdnStatus::kWrongLength},
      {"+0084912345678", MsisdnStatus::kNotVietnamese},
      {"0085912345678", MsisdnStatus::kWrongLength},  // another country via 00: not ours
      {"0084112345678", MsisdnStatus::kNotMobile},
      {"091234567", MsisdnStatus::kWrongLength},
      {"84", MsisdnStatus::kWrongLength},
      {"0", MsisdnStatus::kWrongLength},
      {"0243123456", MsisdnStatus::kNotMobile},       // Hanoi landline
      {"84112345678", MsisdnStatus::kNotMobile},
      {"84012345678", MsisdnStatus::kNotMobile},
      {"0612345678", MsisdnStatus::kNotMobile},
  };
  for (const Case& c : cases) {
    NormalizedMsisdn n = NormalizeMsisdn(c.raw);
    EXPECT_EQ(ToString(n.status), ToString(c.status)) << "\"" << c.raw << "\"";
    EXPECT_FALSE(n.ok());
    EXPECT_EQ(n.msisdn, "");
  }
}

TEST(MsisdnTest, Masking) {
  EXPECT_EQ(MaskMsisdn("84912345678"), "849123****");
  EXPECT_EQ(MaskMsisdn("84386000111"), "843860****");
  EXPECT_EQ(MaskMsisdn("0912345678"), "091234****");
  EXPECT_EQ(MaskMsisdn("1407"), "14****");
  EXPECT_EQ(MaskMsisdn("5"), "****");
  EXPECT_EQ(MaskMsisdn(""), "");
  // The masked form never contains the subscriber-identifying tail.
  EXPECT_EQ(MaskMsisdn("84912345678").find("5678"), std::string::npos);
}

}  // namespace
}  // namespace donagate::billing
