#include "daemon/redelivery_guard.h"

#include <gtest/gtest.h>

#include <thread>

namespace donagate::daemon {
namespace {

using Kind = RedeliveryGuard::Match::Kind;

std::string Key(std::string_view source, std::string_view text) {
  return RedeliveryKey("opa", source, "1407", 0, 0, text);
}

TEST(RedeliveryKeyTest, EveryFieldCounts) {
  const std::string base = RedeliveryKey("opa", "84916000001", "1407", 0, 0, "CV 2");
  EXPECT_EQ(base, RedeliveryKey("opa", "84916000001", "1407", 0, 0, "CV 2"));
  EXPECT_NE(base, RedeliveryKey("opb", "84916000001", "1407", 0, 0, "CV 2"));
  EXPECT_NE(base, RedeliveryKey("opa", "84916000002", "1407", 0, 0, "CV 2"));
  EXPECT_NE(base, RedeliveryKey("opa", "84916000001", "1408", 0, 0, "CV 2"));
  EXPECT_NE(base, RedeliveryKey("opa", "84916000001", "1407", 8, 0, "CV 2"));
  EXPECT_NE(base, RedeliveryKey("opa", "84916000001", "1407", 0, 0x40, "CV 2"));
  EXPECT_NE(base, RedeliveryKey("opa", "84916000001", "1407", 0, 0, "CV 3"));
  // Field boundaries cannot be forged by moving bytes from one field to the next.
  EXPECT_NE(RedeliveryKey("op", "a8491", "1407", 0, 0, "x"), RedeliveryKey("opa", "8491", "1407", 0, 0, "x"));
}

TEST(RedeliveryGuardTest, UnknownMoIsNew) {
  RedeliveryGuard guard(std::chrono::minutes(10));
  EXPECT_EQ(guard.Check(Key("84916000001", "CV 1")).kind, Kind::kNone);
  EXPECT_EQ(guard.size(), 0u);
}

TEST(RedeliveryGuardTest, InDoubtHoldsThenCommittedIsARedelivery) {
  RedeliveryGuard guard(std::chrono::minutes(10));
  const std::string k = Key("84916000001", "CV 1");
  guard.Hold(k);
  EXPECT_EQ(guard.held(), 1u);
  EXPECT_EQ(guard.Check(k).kind, Kind::kHeld);
  guard.Resolve(k, /*committed=*/true, 42);
  EXPECT_EQ(guard.held(), 0u);
  RedeliveryGuard::Match m = guard.Check(k);
  ASSERT_EQ(m.kind, Kind::kRedelivery);
  EXPECT_EQ(m.original_id, 42);
  EXPECT_EQ(m.reason, UncertainReason::kInDoubt);
  // Until the redelivery is stored, a second redelivery matches too (the first one's commit
  // may fail and be retried by the SMSC).
  EXPECT_EQ(guard.Check(k).kind, Kind::kRedelivery);
  guard.Consume(k, 42);
  EXPECT_EQ(guard.Check(k).kind, Kind::kNone);
  EXPECT_EQ(guard.size(), 0u);
}

TEST(RedeliveryGuardTest, InDoubtNotCommittedIsForgotten) {
  RedeliveryGuard guard(std::chrono::minutes(10));
  const std::string k = Key("84916000001", "CV 1");
  guard.Hold(k);
  guard.Resolve(k, /*committed=*/false, 0);
  EXPECT_EQ(guard.Check(k).kind, Kind::kNone);  // the redelivery is the MO itself, new
  EXPECT_EQ(guard.size(), 0u);
}

TEST(RedeliveryGuardTest, TwoIdenticalSendsAbsorbOneRedeliveryEach) {
  RedeliveryGuard guard(std::chrono::minutes(10));
  const std::string k = Key("84916000001", "CV 2");
  guard.AddCommitted(k, 1, UncertainReason::kAfterCrash);
  guard.AddCommitted(k, 2, UncertainReason::kAfterCrash);
  RedeliveryGuard::Match first = guard.Check(k);
  ASSERT_EQ(first.kind, Kind::kRedelivery);
  guard.Consume(k, first.original_id);
  RedeliveryGuard::Match second = guard.Check(k);
  ASSERT_EQ(second.kind, Kind::kRedelivery);
  EXPECT_NE(second.original_id, first.original_id);
  guard.Consume(k, second.original_id);
  EXPECT_EQ(guard.Check(k).kind, Kind::kNone);  // a third identical text is a new donation
}

TEST(RedeliveryGuardTest, CommittedEntryAnswersEvenWhileAnotherIsInDoubt) {
  RedeliveryGuard guard(std::chrono::minutes(10));
  const std::string k = Key("84916000001", "CV 2");
  guard.AddCommitted(k, 7, UncertainReason::kSessionClosed);
  guard.Hold(k);
  RedeliveryGuard::Match m = guard.Check(k);
  EXPECT_EQ(m.kind, Kind::kRedelivery);
  EXPECT_EQ(m.original_id, 7);
  guard.Consume(k, 7);
  EXPECT_EQ(guard.Check(k).kind, Kind::kHeld);
}

TEST(RedeliveryGuardTest, EntriesExpireAfterTheWindow) {
  RedeliveryGuard guard(std::chrono::milliseconds(30));
  const std::string k = Key("84916000001", "CV 1");
  guard.AddCommitted(k, 9, UncertainReason::kAfterCrash);
  guard.Hold(Key("84916000002", "CV 1"));
  EXPECT_EQ(guard.Check(k).kind, Kind::kRedelivery);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(guard.Check(k).kind, Kind::kNone);
  // An in-doubt entry never expires by itself: only its resolution ends it.
  EXPECT_EQ(guard.Check(Key("84916000002", "CV 1")).kind, Kind::kHeld);
  EXPECT_EQ(guard.size(), 1u);
}

TEST(RedeliveryGuardTest, WindowZeroNeverMatchesACommittedMo) {
  RedeliveryGuard guard(std::chrono::seconds(0));
  const std::string k = Key("84916000001", "CV 1");
  guard.AddCommitted(k, 9, UncertainReason::kAfterCrash);
  EXPECT_EQ(guard.Check(k).kind, Kind::kNone);
}

TEST(RedeliveryGuardTest, TheBoundDropsTheOldestCommittedEntriesNeverAnInDoubtOne) {
  RedeliveryGuard guard(std::chrono::minutes(10), /*max_committed=*/2);
  guard.Hold(Key("84916000009", "CV 9"));
  guard.AddCommitted(Key("84916000001", "CV 1"), 1, UncertainReason::kLateAck);
  guard.AddCommitted(Key("84916000002", "CV 1"), 2, UncertainReason::kLateAck);
  guard.AddCommitted(Key("84916000003", "CV 1"), 3, UncertainReason::kLateAck);
  EXPECT_EQ(guard.dropped(), 1u);
  EXPECT_EQ(guard.Check(Key("84916000001", "CV 1")).kind, Kind::kNone);        // the oldest
  EXPECT_EQ(guard.Check(Key("84916000002", "CV 1")).kind, Kind::kRedelivery);
  EXPECT_EQ(guard.Check(Key("84916000003", "CV 1")).kind, Kind::kRedelivery);
  EXPECT_EQ(guard.Check(Key("84916000009", "CV 9")).kind, Kind::kHeld);
  EXPECT_EQ(guard.size(), 3u);
}

}  // namespace
}  // namespace donagate::daemon
