#include "protocol/command_status.h"

#include <gtest/gtest.h>

namespace donagate::smpp {
namespace {

TEST(CommandStatusTest, NamesKnownCodesAsTheSpecDoes) {
  EXPECT_EQ(CommandStatusName(status::kOk), "ESME_ROK");
  EXPECT_EQ(CommandStatusName(0x01), "ESME_RINVMSGLEN");
  EXPECT_EQ(CommandStatusName(0x02), "ESME_RINVCMDLEN");
  EXPECT_EQ(CommandStatusName(0x03), "ESME_RINVCMDID");
  EXPECT_EQ(CommandStatusName(0x0E), "ESME_RINVPASWD");
  EXPECT_EQ(CommandStatusName(0x0F), "ESME_RINVSYSID");
  EXPECT_EQ(CommandStatusName(0x14), "ESME_RMSGQFUL");
  EXPECT_EQ(CommandStatusName(0x15), "ESME_RINVSERTYP");
  EXPECT_EQ(CommandStatusName(0x50), "ESME_RINVDSTTON");
  EXPECT_EQ(CommandStatusName(0x51), "ESME_RINVDSTNPI");
  EXPECT_EQ(CommandStatusName(0x58), "ESME_RTHROTTLED");
  EXPECT_EQ(CommandStatusName(0x64), "ESME_RX_T_APPN");
  EXPECT_EQ(CommandStatusName(0xC0), "ESME_RINVOPTPARSTREAM");
  EXPECT_EQ(CommandStatusName(0xC2), "ESME_RINVPARLEN");
  EXPECT_EQ(CommandStatusName(0xFE), "ESME_RDELIVERYFAILURE");
  EXPECT_EQ(CommandStatusName(0xFF), "ESME_RUNKNOWNERR");
}

TEST(CommandStatusTest, ConstantsMatchTheirNames) {
  EXPECT_EQ(CommandStatusName(status::kThrottled), "ESME_RTHROTTLED");
  EXPECT_EQ(CommandStatusName(status::kInvSrcAdr), "ESME_RINVSRCADR");
  EXPECT_EQ(CommandStatusName(status::kInvOptParamVal), "ESME_RINVOPTPARAMVAL");
  EXPECT_EQ(CommandStatusName(status::kXRAppn), "ESME_RX_R_APPN");
  EXPECT_EQ(CommandStatusName(status::kQueryFail), "ESME_RQUERYFAIL");
}

TEST(CommandStatusTest, GapsInTheTableHaveNoName) {
  // 0x09, 0x10, 0x12 are reserved in SMPP 3.4.
  EXPECT_EQ(CommandStatusName(0x09), "");
  EXPECT_EQ(CommandStatusName(0x10), "");
  EXPECT_EQ(CommandStatusName(0x12), "");
  EXPECT_EQ(CommandStatusName(0x401), "");
}

TEST(CommandStatusTest, DescriptionsExplainKnownCodesAndRanges) {
  EXPECT_EQ(CommandStatusDescription(status::kInvMsgLen), "Message Length is invalid");
  EXPECT_EQ(CommandStatusDescription(0x0401), "Reserved for SMSC vendor specific errors");
  EXPECT_EQ(CommandStatusDescription(0x0200), "Reserved for SMPP extension");
  EXPECT_EQ(CommandStatusDescription(0x12), "Reserved");
  EXPECT_EQ(CommandStatusDescription(0xFFFFFFFF), "Reserved");
}

TEST(CommandStatusTest, FormatsKnownAndUnknownCodes) {
  EXPECT_EQ(FormatCommandStatus(status::kThrottled), "ESME_RTHROTTLED (0x00000058)");
  EXPECT_EQ(FormatCommandStatus(0), "ESME_ROK (0x00000000)");
  EXPECT_EQ(FormatCommandStatus(0x0000045A),
            "0x0000045A (Reserved for SMSC vendor specific errors)");
  EXPECT_EQ(FormatCommandStatus(0xDEADBEEF), "0xDEADBEEF (Reserved)");
}

TEST(CommandIdTest, NamesAndResponseBit) {
  EXPECT_EQ(CommandIdName(CommandId::kDeliverSm), "deliver_sm");
  EXPECT_EQ(CommandIdName(CommandId::kDataSmResp), "data_sm_resp");
  EXPECT_EQ(CommandIdName(CommandId::kGenericNack), "generic_nack");
  EXPECT_EQ(CommandIdName(static_cast<CommandId>(0x12345)), "");
  EXPECT_TRUE(IsResponse(CommandId::kGenericNack));
  EXPECT_TRUE(IsResponse(CommandId::kSubmitSmResp));
  EXPECT_FALSE(IsResponse(CommandId::kOutbind));
}

}  // namespace
}  // namespace donagate::smpp
