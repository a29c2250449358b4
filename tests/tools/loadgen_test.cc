// loadgen against a tiny in-test ESME (plays donagated's client link): the generator must bind,
// keep to its window, redeliver after a temporary error, match replies to MOs, send receipts,
// and report exactly what it saw in its summary and acked-MO file.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/pdu.h"
#include "protocol/text_codec.h"
#include "tests/common/test_env.h"

extern char** environ;

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using donagate::smpp::CommandId;
namespace smpp = donagate::smpp;

pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

int WaitExit(pid_t pid) {
  int status = 0;
  for (int i = 0; i < 300; ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -2;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A blocking SMPP peer: enough of an ESME for the test.
class Esme {
 public:
  explicit Esme(int port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)));
  }
  void Send(const smpp::Pdu& pdu) {
    std::string wire;
    ASSERT_EQ(smpp::Encode(pdu, &wire), smpp::EncodeError::kNone);
    asio::write(socket_, asio::buffer(wire));
  }
  // Whether another PDU is buffered or arrives within 30 ms.
  bool MoreComing() {
    if (smpp::CheckFrame(buffer_).state == smpp::FrameState::kReady) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    return socket_.available() > 0;
  }
  // False when the peer closed the connection.
  bool Receive(smpp::Pdu* pdu) {
    for (;;) {
      auto frame = smpp::CheckFrame(buffer_);
      if (frame.state == smpp::FrameState::kReady) {
        auto r = smpp::Decode(std::string_view(buffer_).substr(0, frame.command_length), pdu);
        EXPECT_TRUE(r.ok()) << smpp::Describe(r);
        buffer_.erase(0, frame.command_length);
        return true;
      }
      EXPECT_NE(frame.state, smpp::FrameState::kInvalid);
      char chunk[4096];
      boost::system::error_code ec;
      size_t n = socket_.read_some(asio::buffer(chunk), ec);
      if (ec) return false;
      buffer_.append(chunk, n);
    }
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  std::string buffer_;
};

std::string WaitForReadyFile(const std::string& path) {
  for (int i = 0; i < 100; ++i) {
    std::string s = ReadFile(path);
    if (!s.empty()) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return "";
}

TEST(LoadgenTest, DeliversWithinWindowRedeliversTemporaryErrorsAndMatchesReplies) {
  const std::string dir = donagate::testing::MakeTempDir("loadgen");
  const int kCount = 60;
  const int kWindow = 4;
  pid_t pid = Spawn({donagate::testing::BinaryPath("tools/loadgen/loadgen"), "--port", "0", "--ready-file",
                     dir + "/ready", "--count", std::to_string(kCount), "--window", std::to_string(kWindow),
                     "--expect-binds", "1", "--acked-file", dir + "/acked.csv", "--summary-file",
                     dir + "/summary.json", "--redeliver-ms", "20", "--reply-idle-s", "2", "--receipts",
                     "--ucs2-share", "0.5", "--mo-id-tlv", "0x1401", "--progress-s", "0", "--seed", "7"});
  ASSERT_GT(pid, 0);
  std::string ports = WaitForReadyFile(dir + "/ready");
  ASSERT_FALSE(ports.empty()) << "loadgen did not start";

  Esme esme(std::stoi(ports));
  smpp::Pdu bind = smpp::MakePdu(CommandId::kBindTransceiver, 1);
  std::get<smpp::BindBody>(bind.body).system_id = "donagate";
  esme.Send(bind);

  std::map<std::string, std::string> text_by_source;  // from what arrived on the wire
  std::set<std::string> mo_ids;
  std::set<std::string> refused_once;
  int temp_answers = 0, receipts = 0, submits = 0, max_outstanding = 0;
  uint32_t seq = 2;
  std::vector<smpp::Pdu> unanswered;
  bool unbound = false;
  smpp::Pdu pdu;
  while (!unbound && esme.Receive(&pdu)) {
    switch (pdu.header.command_id) {
      case CommandId::kBindTransceiverResp:
        ASSERT_EQ(pdu.header.command_status, smpp::status::kOk);
        break;
      case CommandId::kSubmitSmResp:
        EXPECT_EQ(pdu.header.command_status, smpp::status::kOk);
        EXPECT_FALSE(std::get<smpp::SubmitSmResp>(pdu.body).message_id.empty());
        break;
      case CommandId::kUnbind:
        esme.Send(smpp::MakeResponseFor(pdu.header, smpp::status::kOk));
        unbound = true;
        break;
      case CommandId::kDeliverSm:
        unanswered.push_back(pdu);
        break;
      default:
        ADD_FAILURE() << "unexpected " << smpp::Summarize(pdu);
    }
    max_outstanding = std::max(max_outstanding, static_cast<int>(unanswered.size()));
    // Answer a burst only once the generator has stopped sending, so the outstanding count
    // shows its window.
    if (unanswered.empty() || esme.MoreComing()) continue;
    for (const smpp::Pdu& d : unanswered) {
      const auto& body = std::get<smpp::DeliverSm>(d.body);
      if (body.esm_class & 0x04) {
        ++receipts;
        EXPECT_TRUE(body.tlvs.receipted_message_id().has_value());
        esme.Send(smpp::MakeResponseFor(d.header, smpp::status::kOk));
        continue;
      }
      EXPECT_EQ(body.destination_addr, "1407");
      EXPECT_EQ(body.source_addr.size(), 11u);
      EXPECT_EQ(body.source_addr.rfind("849", 0), 0u);
      auto id = body.tlvs.Find(0x1401);
      ASSERT_NE(id, nullptr);
      // Every third new MO first gets a temporary error; its redelivery keeps the MO id.
      if (!refused_once.count(*id) && mo_ids.size() % 3 == 0 && !mo_ids.count(*id)) {
        refused_once.insert(*id);
        mo_ids.insert(*id);
        ++temp_answers;
        esme.Send(smpp::MakeResponseFor(d.header, temp_answers % 2 ? smpp::status::kThrottled
                                                                   : smpp::status::kXTAppn));
        continue;
      }
      mo_ids.insert(*id);
      auto text = smpp::DecodeSmsText(body.short_message, body.data_coding);
      EXPECT_TRUE(text.ok());
      EXPECT_TRUE(text_by_source.emplace(body.source_addr, text.utf8).second) << "acked twice: " << body.source_addr;
      esme.Send(smpp::MakeResponseFor(d.header, smpp::status::kOk));
      smpp::Pdu submit = smpp::MakePdu(CommandId::kSubmitSm, seq++);
      auto& s = std::get<smpp::SubmitSm>(submit.body);
      s.source_addr = "1407";
      s.destination_addr = body.source_addr;
      s.registered_delivery = 1;
      s.short_message = "Cam on";
      esme.Send(submit);
      ++submits;
    }
    unanswered.clear();
  }
  EXPECT_TRUE(unbound) << "loadgen never unbound";
  ASSERT_EQ(WaitExit(pid), 0);

  EXPECT_EQ(max_outstanding, kWindow);  // filled, never exceeded
  EXPECT_EQ(static_cast<int>(text_by_source.size()), kCount);
  EXPECT_EQ(static_cast<int>(mo_ids.size()), kCount);
  EXPECT_GT(temp_answers, 0);
  EXPECT_EQ(receipts, submits);

  auto summary = nlohmann::json::parse(ReadFile(dir + "/summary.json"));
  EXPECT_EQ(summary["messages"], kCount);
  EXPECT_EQ(summary["acked"], kCount);
  EXPECT_EQ(summary["temp_errors"], temp_answers);
  EXPECT_EQ(summary["redeliveries"], temp_answers);
  EXPECT_EQ(summary["replies"], kCount);
  EXPECT_EQ(summary["unmatched_submits"], 0);
  EXPECT_EQ(summary["receipts_acked"], receipts);
  EXPECT_GT(summary["acked_per_s"].get<double>(), 0);
  EXPECT_GE(summary["e2e_p99_ms"].get<double>(), summary["e2e_p50_ms"].get<double>());

  // The acked file lists exactly the MOs the ESME acknowledged, with the texts it decoded,
  // and units that match "CV n" for the valid ones.
  std::istringstream acked(ReadFile(dir + "/acked.csv"));
  std::string line;
  std::getline(acked, line);
  EXPECT_EQ(line, "seq,source,units,text");
  int rows = 0, valid = 0;
  int64_t units_sum = 0;
  while (std::getline(acked, line)) {
    ++rows;
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string part; f.size() < 3 && std::getline(ls, part, ',');) f.push_back(part);
    std::string text;
    std::getline(ls, text);
    ASSERT_EQ(f.size(), 3u) << line;
    ASSERT_TRUE(text_by_source.count(f[1])) << line;
    EXPECT_EQ(text_by_source[f[1]], text);
    int units = std::stoi(f[2]);
    if (units > 0) {
      ++valid;
      units_sum += units;
      std::string digits = text.substr(3);
      EXPECT_EQ(std::stoi(digits), units) << text;
    }
  }
  EXPECT_EQ(rows, kCount);
  EXPECT_EQ(summary["valid_acked"], valid);
  EXPECT_EQ(summary["expected_units"], units_sum);
}

TEST(LoadgenTest, RefusesNonLoopbackAddress) {
  pid_t pid = Spawn({donagate::testing::BinaryPath("tools/loadgen/loadgen"), "--host", "0.0.0.0", "--count", "1",
                     "--progress-s", "0"});
  ASSERT_GT(pid, 0);
  EXPECT_EQ(WaitExit(pid), 1);
}

TEST(LoadgenTest, GivesUpWhenNobodyBinds) {
  pid_t pid = Spawn({donagate::testing::BinaryPath("tools/loadgen/loadgen"), "--port", "0", "--count", "1",
                     "--bind-wait-s", "1", "--progress-s", "0"});
  ASSERT_GT(pid, 0);
  EXPECT_EQ(WaitExit(pid), 1);
}

}  // namespace
