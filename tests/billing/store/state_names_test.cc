// The state and outcome names of billing/domain/states.h against the schema's CHECK lists:
// each name the code can store is allowed by the database, and the database allows nothing
// the code does not know (a name known to only one side is a failed insert in production, or
// a row the code cannot read back).
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

#include "billing/domain/states.h"
#include "billing/store/migrate.h"
#include "tests/common/test_pg.h"

namespace donagate::billing {
namespace {

using ::donagate::testing::CreateFreshDatabase;
using ::donagate::testing::QueryValue;

// The quoted literals of the CHECK constraint(s) on table.column, e.g.
// CHECK ((state = ANY (ARRAY['received'::text, ...]))) → {"received", ...}.
std::set<std::string> CheckedNames(const std::string& db, const std::string& table,
                                   const std::string& column) {
  const std::string defs = QueryValue(
      db, "SELECT string_agg(pg_get_constraintdef(c.oid), ' ') FROM pg_constraint c "
          "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
          "WHERE c.contype = 'c' AND c.conrelid = '" + table + "'::regclass AND a.attname = '" +
          column + "' AND cardinality(c.conkey) = 1");
  std::set<std::string> names;
  const std::regex literal("'([a-z_]+)'::text");
  for (auto it = std::sregex_iterator(defs.begin(), defs.end(), literal); it != std::sregex_iterator(); ++it)
    names.insert((*it)[1].str());
  return names;
}

template <typename Names>
std::set<std::string> AsSet(Names names) {
  return std::set<std::string>(names.begin(), names.end());
}

class StateNamesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::donagate::testing::PostgresServerConninfo().empty()) return;
    db_ = CreateFreshDatabase("state_names");
    ASSERT_TRUE(Migrate(db_).ok());
  }
  std::string db_;
};

TEST_F(StateNamesTest, MessageOutcomesEqualTheInboundMessageCheck) {
  DONAGATE_REQUIRE_POSTGRES();
  EXPECT_EQ(CheckedNames(db_, "inbound_message", "outcome"), AsSet(MessageOutcomeNames()));
}

TEST_F(StateNamesTest, DonationStatesEqualTheDonationCheck) {
  DONAGATE_REQUIRE_POSTGRES();
  EXPECT_EQ(CheckedNames(db_, "donation", "state"), AsSet(DonationStateNames()));
}

// final_state (0013) holds the ordinary outcomes: every final state but a reversal.
TEST_F(StateNamesTest, FinalStatesEqualTheFinalStateCheck) {
  DONAGATE_REQUIRE_POSTGRES();
  std::set<std::string> outcomes;
  for (const auto& name : DonationStateNames()) {
    DonationState state{};
    ASSERT_TRUE(ParseDonationState(name, &state)) << name;
    if (IsFinal(state) && state != DonationState::kReversed) outcomes.insert(std::string(name));
  }
  EXPECT_EQ(CheckedNames(db_, "donation", "final_state"), outcomes);
}

TEST_F(StateNamesTest, ReplyStatesEqualTheOutboxCheck) {
  DONAGATE_REQUIRE_POSTGRES();
  EXPECT_EQ(CheckedNames(db_, "outbox", "state"), AsSet(ReplyStateNames()));
}

TEST_F(StateNamesTest, StorableChargeOutcomesEqualTheChargeCheck) {
  DONAGATE_REQUIRE_POSTGRES();
  std::set<std::string> storable;
  for (size_t i = 0; i < ChargeOutcomeNames().size(); ++i) {
    const auto outcome = static_cast<ChargeOutcome>(i);
    if (IsStorable(outcome)) storable.insert(std::string(ToString(outcome)));
  }
  EXPECT_EQ(CheckedNames(db_, "charge", "outcome"), storable);
}

TEST_F(StateNamesTest, ChargingModesEqualTheDonationCheck) {
  DONAGATE_REQUIRE_POSTGRES();
  EXPECT_EQ(CheckedNames(db_, "donation", "charging_mode"), AsSet(ChargingModeNames()));
}

TEST(StateNames, ToStringAndParseAreInverse) {
  for (size_t i = 0; i < DonationStateNames().size(); ++i) {
    DonationState s;
    ASSERT_TRUE(ParseDonationState(ToString(static_cast<DonationState>(i)), &s));
    EXPECT_EQ(static_cast<size_t>(s), i);
  }
  for (size_t i = 0; i < MessageOutcomeNames().size(); ++i) {
    MessageOutcome o;
    ASSERT_TRUE(ParseMessageOutcome(ToString(static_cast<MessageOutcome>(i)), &o));
    EXPECT_EQ(static_cast<size_t>(o), i);
  }
  for (size_t i = 0; i < ChargeOutcomeNames().size(); ++i) {
    ChargeOutcome o;
    ASSERT_TRUE(ParseChargeOutcome(ToString(static_cast<ChargeOutcome>(i)), &o));
    EXPECT_EQ(static_cast<size_t>(o), i);
  }
  DonationState unused;
  EXPECT_FALSE(ParseDonationState("charged ", &unused));
  EXPECT_EQ(ToString(static_cast<DonationState>(99)), "invalid");
}

}  // namespace
}  // namespace donagate::billing
