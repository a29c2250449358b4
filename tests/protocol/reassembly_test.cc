#include "protocol/reassembly.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace donagate::smpp {
namespace {

using std::chrono::seconds;
const ReassemblyTime kT0 = ReassemblyTime(std::chrono::hours(24 * 365 * 56));

ConcatKey Key(std::string source = "84912345678", uint16_t ref = 42, uint8_t total = 3,
              std::string link = "viettel-1", bool ref16 = false) {
  return ConcatKey{std::move(link), std::move(source), "1407", ref, ref16, total};
}

MessagePart Part(const ConcatKey& key, uint8_t seq, std::string text, ReassemblyTime at = kT0,
                 uint8_t data_coding = 0x00, int64_t storage_id = 0) {
  MessagePart part;
  part.key = key;
  part.seq = seq;
  part.data_coding = data_coding;
  part.user_data = std::move(text);
  part.received_at = at;
  part.storage_id = storage_id;
  return part;
}

TEST(Reassembler, PartsInAnyOrderCompleteExactlyOnce) {
  Reassembler r;
  ConcatKey key = Key();
  EXPECT_EQ(r.Add(Part(key, 3, "3")).outcome, PartOutcome::kStored);
  EXPECT_EQ(r.Add(Part(key, 1, "CV ")).outcome, PartOutcome::kStored);
  EXPECT_EQ(r.pending_sets(), 1u);
  EXPECT_EQ(r.pending_parts(), 2u);
  AddResult done = r.Add(Part(key, 2, "2"));
  ASSERT_EQ(done.outcome, PartOutcome::kCompleted);
  ASSERT_TRUE(done.completed.has_value());
  EXPECT_TRUE(done.completed->complete());
  EXPECT_EQ(done.completed->text.utf8, "CV 23");
  EXPECT_TRUE(done.completed->text.ok());
  ASSERT_EQ(done.completed->parts.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(done.completed->parts[i].seq, i + 1);
  EXPECT_EQ(done.completed->key, key);
  EXPECT_EQ(r.pending_sets(), 0u);
  EXPECT_EQ(r.pending_parts(), 0u);

  // A redelivery of any part of the completed set must not start a new set or complete again.
  AddResult again = r.Add(Part(key, 2, "2", kT0 + seconds(5)));
  EXPECT_EQ(again.outcome, PartOutcome::kDuplicate);
  EXPECT_FALSE(again.completed.has_value());
  EXPECT_EQ(r.pending_sets(), 0u);
}

TEST(Reassembler, DuplicatePartIsDiscardedAndFirstCopyWins) {
  Reassembler r;
  ConcatKey key = Key("849", 1, 2);
  EXPECT_EQ(r.Add(Part(key, 1, "CV ")).outcome, PartOutcome::kStored);
  AddResult dup = r.Add(Part(key, 1, "CV "));
  EXPECT_EQ(dup.outcome, PartOutcome::kDuplicate);
  EXPECT_FALSE(dup.conflicting_duplicate);
  AddResult conflicting = r.Add(Part(key, 1, "XX "));
  EXPECT_EQ(conflicting.outcome, PartOutcome::kDuplicate);
  EXPECT_TRUE(conflicting.conflicting_duplicate);
  EXPECT_EQ(r.pending_parts(), 1u);
  AddResult done = r.Add(Part(key, 2, "9"));
  ASSERT_EQ(done.outcome, PartOutcome::kCompleted);
  EXPECT_EQ(done.completed->text.utf8, "CV 9");
}

TEST(Reassembler, SameReferenceFromTwoSubscribersNeverMerges) {
  Reassembler r;
  ConcatKey alice = Key("84911111111", 7, 2);
  ConcatKey bob = Key("84922222222", 7, 2);
  EXPECT_EQ(r.Add(Part(alice, 1, "CV ")).outcome, PartOutcome::kStored);
  EXPECT_EQ(r.Add(Part(bob, 1, "CV ")).outcome, PartOutcome::kStored);
  EXPECT_EQ(r.pending_sets(), 2u);
  AddResult a = r.Add(Part(alice, 2, "1"));
  AddResult b = r.Add(Part(bob, 2, "5"));
  ASSERT_EQ(a.outcome, PartOutcome::kCompleted);
  ASSERT_EQ(b.outcome, PartOutcome::kCompleted);
  EXPECT_EQ(a.completed->text.utf8, "CV 1");
  EXPECT_EQ(a.completed->key.source, "84911111111");
  EXPECT_EQ(b.completed->text.utf8, "CV 5");
  EXPECT_EQ(b.completed->key.source, "84922222222");
}

TEST(Reassembler, LinkTotalAndReferenceWidthAreAllPartOfTheKey) {
  Reassembler r;
  std::vector<ConcatKey> keys = {Key("849", 7, 2, "link-a"), Key("849", 7, 2, "link-b"), Key("849", 7, 3, "link-a"),
                                 Key("849", 7, 2, "link-a", /*ref16=*/true)};
  for (const ConcatKey& k : keys) EXPECT_EQ(r.Add(Part(k, 1, "x")).outcome, PartOutcome::kStored);
  EXPECT_EQ(r.pending_sets(), keys.size());
  ConcatKey other_destination = keys[0];
  other_destination.destination = "1408";
  EXPECT_EQ(r.Add(Part(other_destination, 2, "y")).outcome, PartOutcome::kStored);
  EXPECT_EQ(r.pending_sets(), keys.size() + 1);
}

TEST(Reassembler, InvalidSequenceIsRejected) {
  Reassembler r;
  EXPECT_EQ(r.Add(Part(Key("849", 1, 2), 0, "x")).outcome, PartOutcome::kInvalid);
  EXPECT_EQ(r.Add(Part(Key("849", 1, 2), 3, "x")).outcome, PartOutcome::kInvalid);
  EXPECT_EQ(r.Add(Part(Key("849", 1, 0), 1, "x")).outcome, PartOutcome::kInvalid);
  EXPECT_EQ(r.pending_sets(), 0u);
  AddResult single = r.Add(Part(Key("849", 1, 1), 1, "CV 1"));
  EXPECT_EQ(single.outcome, PartOutcome::kCompleted);
}

TEST(Reassembler, IncompleteSetExpiresAfterTimeoutWithWhatArrived) {
  ReassemblyOptions options;
  options.timeout = seconds(300);
  Reassembler r(options);
  ConcatKey key = Key("849", 3, 3);
  r.Add(Part(key, 1, "CV ", kT0));
  r.Add(Part(key, 3, "!", kT0 + seconds(100)));  // age counts from the first part
  EXPECT_TRUE(r.Expire(kT0 + seconds(299)).empty());
  EXPECT_EQ(r.pending_sets(), 1u);
  std::vector<AssembledMessage> expired = r.Expire(kT0 + seconds(300));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_FALSE(expired[0].complete());
  EXPECT_EQ(expired[0].missing, std::vector<uint8_t>{2});
  EXPECT_EQ(expired[0].text.utf8, "CV !");
  EXPECT_EQ(expired[0].parts.size(), 2u);
  EXPECT_EQ(expired[0].first_received_at, kT0);
  EXPECT_EQ(r.pending_sets(), 0u);
  EXPECT_EQ(r.pending_parts(), 0u);
  // The missing part arriving late starts a new set; it does not resurrect the old one.
  EXPECT_EQ(r.Add(Part(key, 2, "5", kT0 + seconds(400))).outcome, PartOutcome::kStored);
}

TEST(Reassembler, TombstonesLastOnlyForTheTimeout) {
  ReassemblyOptions options;
  options.timeout = seconds(60);
  Reassembler r(options);
  ConcatKey key = Key("849", 9, 1);
  EXPECT_EQ(r.Add(Part(key, 1, "a", kT0)).outcome, PartOutcome::kCompleted);
  EXPECT_EQ(r.Add(Part(key, 1, "a", kT0 + seconds(30))).outcome, PartOutcome::kDuplicate);
  r.Expire(kT0 + seconds(60));
  EXPECT_EQ(r.tombstones(), 0u);
  // The reference may now be reused by the subscriber for a new message.
  EXPECT_EQ(r.Add(Part(key, 1, "b", kT0 + seconds(61))).outcome, PartOutcome::kCompleted);
}

TEST(Reassembler, MemoryBoundPushesOutTheOldestSet) {
  ReassemblyOptions options;
  options.max_pending_sets = 2;
  Reassembler r(options);
  r.Add(Part(Key("a", 1, 2), 1, "old", kT0));
  r.Add(Part(Key("b", 1, 2), 1, "mid", kT0 + seconds(1)));
  AddResult add = r.Add(Part(Key("c", 1, 2), 1, "new", kT0 + seconds(2)));
  EXPECT_EQ(add.outcome, PartOutcome::kStored);
  ASSERT_EQ(add.evicted.size(), 1u);
  EXPECT_EQ(add.evicted[0].key.source, "a");
  EXPECT_EQ(add.evicted[0].text.utf8, "old");
  EXPECT_EQ(r.pending_sets(), 2u);
  // A single-part message completes without pushing anyone out.
  AddResult single = r.Add(Part(Key("d", 1, 1), 1, "one", kT0 + seconds(3)));
  EXPECT_EQ(single.outcome, PartOutcome::kCompleted);
  EXPECT_TRUE(single.evicted.empty());
  EXPECT_EQ(r.pending_sets(), 2u);
  // Parts of existing sets never evict anything.
  AddResult same_set = r.Add(Part(Key("b", 1, 2), 2, "!", kT0 + seconds(3)));
  EXPECT_EQ(same_set.outcome, PartOutcome::kCompleted);
  EXPECT_TRUE(same_set.evicted.empty());
}

TEST(Reassembler, RestoreReportsSetsAlreadyCompleteAndKeepsTheRest) {
  Reassembler r;
  ConcatKey done = Key("849a", 1, 2);
  ConcatKey partial = Key("849b", 1, 3);
  std::vector<MessagePart> stored = {
      Part(done, 2, "5", kT0 + seconds(2), 0, 102), Part(partial, 1, "CV ", kT0, 0, 201),
      Part(done, 1, "CV ", kT0 + seconds(1), 0, 101), Part(partial, 1, "CV ", kT0, 0, 201)};
  RestoreResult restored = r.Restore(stored);
  ASSERT_EQ(restored.completed.size(), 1u);
  EXPECT_EQ(restored.completed[0].text.utf8, "CV 5");
  EXPECT_EQ(restored.completed[0].parts[0].storage_id, 101);
  EXPECT_EQ(restored.completed[0].parts[1].storage_id, 102);
  EXPECT_EQ(restored.duplicates, 1u);
  EXPECT_EQ(r.pending_sets(), 1u);

  std::vector<int64_t> pending_ids;
  r.ForEachPendingPart([&](const MessagePart& p) { pending_ids.push_back(p.storage_id); });
  EXPECT_EQ(pending_ids, std::vector<int64_t>{201});

  r.Add(Part(partial, 2, "1", kT0 + seconds(10)));
  AddResult finish = r.Add(Part(partial, 3, "0", kT0 + seconds(11)));
  ASSERT_EQ(finish.outcome, PartOutcome::kCompleted);
  EXPECT_EQ(finish.completed->text.utf8, "CV 10");
  EXPECT_EQ(finish.completed->first_received_at, kT0);  // restored age is kept for the timeout
}

TEST(Reassembler, ReinstateLetsTheRedeliveredLastPartCompleteAgain) {
  Reassembler r;
  ConcatKey key = Key("849", 8, 3);
  r.Add(Part(key, 1, "CV ", kT0));
  r.Add(Part(key, 3, "0", kT0 + seconds(1)));
  AddResult done = r.Add(Part(key, 2, "1", kT0 + seconds(2)));
  ASSERT_EQ(done.outcome, PartOutcome::kCompleted);
  // Without Reinstate the SMSC's redelivery of part 2 would be a duplicate and the message lost.
  EXPECT_TRUE(r.Reinstate(std::move(*done.completed), 2).empty());
  EXPECT_EQ(r.pending_parts(), 2u);
  EXPECT_EQ(r.tombstones(), 0u);
  AddResult again = r.Add(Part(key, 2, "1", kT0 + seconds(9)));
  ASSERT_EQ(again.outcome, PartOutcome::kCompleted);
  EXPECT_EQ(again.completed->text.utf8, "CV 10");
  EXPECT_EQ(again.completed->first_received_at, kT0);
  EXPECT_EQ(r.Add(Part(key, 2, "1", kT0 + seconds(10))).outcome, PartOutcome::kDuplicate);
}

TEST(Reassembler, RestoreAfterAFailedCompletionOverridesTheTombstone) {
  // The pipeline's recovery path after a failed batch: reload what the database holds.
  Reassembler r;
  ConcatKey key = Key("849", 4, 2);
  r.Add(Part(key, 1, "CV ", kT0, 0, 11));
  ASSERT_EQ(r.Add(Part(key, 2, "7", kT0 + seconds(1))).outcome, PartOutcome::kCompleted);
  // The completing batch failed: only part 1 is stored.
  RestoreResult restored = r.Restore({Part(key, 1, "CV ", kT0, 0, 11)});
  EXPECT_EQ(restored.duplicates, 0u);
  EXPECT_TRUE(restored.completed.empty());
  EXPECT_EQ(r.pending_parts(), 1u);
  AddResult again = r.Add(Part(key, 2, "7", kT0 + seconds(5)));
  ASSERT_EQ(again.outcome, PartOutcome::kCompleted);
  EXPECT_EQ(again.completed->text.utf8, "CV 7");
}

TEST(Reassembler, RemoveForgetsAPendingSet) {
  Reassembler r;
  ConcatKey key = Key("849", 5, 2);
  r.Add(Part(key, 1, "x"));
  std::optional<AssembledMessage> removed = r.Remove(key);
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(removed->missing, std::vector<uint8_t>{2});
  EXPECT_EQ(r.pending_sets(), 0u);
  EXPECT_FALSE(r.Remove(key).has_value());
}

TEST(Reassembler, TextIsDecodedAcrossPartsPerDataCoding) {
  Reassembler r;
  ConcatKey key = Key("849", 1, 2);
  // A UCS-2 surrogate pair and a GSM escape split across parts both come out whole.
  r.Add(Part(key, 1, std::string("\x00" "C\x00V\x00 \xD8\x3D", 8), kT0, 0x08));
  AddResult done = r.Add(Part(key, 2, std::string("\xDE\x00", 2), kT0, 0x08));
  ASSERT_EQ(done.outcome, PartOutcome::kCompleted);
  EXPECT_EQ(done.completed->text.utf8, "CV \U0001F600");
  EXPECT_EQ(done.completed->parts[0].data_coding, 0x08);

  ConcatKey gsm = Key("850", 1, 2);
  r.Add(Part(gsm, 1, "5\x1B"));
  EXPECT_EQ(r.Add(Part(gsm, 2, "\x65")).completed->text.utf8, "5\u20AC");

  ConcatKey packed = Key("851", 1, 2);
  MessagePart p1 = Part(packed, 1, PackGsm7("CV ", GsmFillBits(6)));
  MessagePart p2 = Part(packed, 2, PackGsm7("42", GsmFillBits(6)));
  for (MessagePart* p : {&p1, &p2}) {
    p->decode.default_alphabet = DefaultAlphabet::kGsm7Packed;
    p->decode.udh_length = 6;
  }
  r.Add(std::move(p1));
  EXPECT_EQ(r.Add(std::move(p2)).completed->text.utf8, "CV 42");

  ConcatKey binary = Key("852", 1, 2);
  r.Add(Part(binary, 1, "\x01\x02", kT0, 0x04));
  AddResult bin = r.Add(Part(binary, 2, "\x03", kT0, 0x04));
  EXPECT_EQ(bin.completed->text.kind, TextKind::kBinary);
  EXPECT_EQ(bin.completed->parts[1].user_data, "\x03");
}

// Property: random interleavings of many sets, with duplicates, complete each set exactly once
// with its own text.
TEST(Reassembler, RandomInterleavingCompletesEverySetOnce) {
  std::mt19937 rng(1234);
  Reassembler r;
  std::vector<MessagePart> feed;
  std::map<std::string, std::string> expected;
  for (int s = 0; s < 200; ++s) {
    std::string source = "84" + std::to_string(900000000 + s);
    uint8_t total = static_cast<uint8_t>(1 + rng() % 6);
    ConcatKey key = Key(source, static_cast<uint16_t>(rng() % 4), total);  // references collide on purpose
    std::string text;
    for (uint8_t seq = 1; seq <= total; ++seq) {
      std::string chunk = "p" + std::to_string(seq) + ";";
      text += chunk;
      feed.push_back(Part(key, seq, chunk));
      if (rng() % 3 == 0) feed.push_back(Part(key, seq, chunk));  // duplicate
    }
    expected[source] = text;
  }
  std::shuffle(feed.begin(), feed.end(), rng);
  std::map<std::string, int> completions;
  for (MessagePart& part : feed) {
    AddResult result = r.Add(std::move(part));
    if (result.completed) {
      ++completions[result.completed->key.source];
      EXPECT_EQ(result.completed->text.utf8, expected[result.completed->key.source]);
    }
  }
  EXPECT_EQ(completions.size(), expected.size());
  for (const auto& [source, count] : completions) EXPECT_EQ(count, 1) << source;
  EXPECT_EQ(r.pending_sets(), 0u);
}

}  // namespace
}  // namespace donagate::smpp
