#include "billing/charging/donation_charger.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <limits>
#include <memory>

namespace donagate::billing {

namespace asio = boost::asio;
using std::chrono::steady_clock;

std::string_view ToString(DonationChargeState state) {
  switch (state) {
    case DonationChargeState::kCharged: return "charged";
    case DonationChargeState::kPartiallyCharged: return "partially_charged";
    case DonationChargeState::kFailed: return "failed";
    case DonationChargeState::kUnknown: return "unknown";
    case DonationChargeState::kDeferred: return "deferred";
  }
  return "invalid";
}

std::string_view ToString(ChargeFailureReason reason) {
  switch (reason) {
    case ChargeFailureReason::kNone: return "none";
    case ChargeFailureReason::kInsufficientFunds: return "insufficient_funds";
    case ChargeFailureReason::kSubscriberBarred: return "subscriber_barred";
    case ChargeFailureReason::kRejected: return "rejected";
    case ChargeFailureReason::kInvalidRequest: return "invalid_request";
  }
  return "invalid";
}

namespace {

ChargeFailureReason ReasonFor(ChargeOutcome outcome) {
  switch (outcome) {
    case ChargeOutcome::kInsufficientFunds: return ChargeFailureReason::kInsufficientFunds;
    case ChargeOutcome::kSubscriberBarred: return ChargeFailureReason::kSubscriberBarred;
    case ChargeOutcome::kRejected: return ChargeFailureReason::kRejected;
    default: return ChargeFailureReason::kNone;
  }
}

std::string ValidateInput(const DonationChargeInput& in) {
  if (in.donation_id <= 0) return "donation_id must be positive";
  if (in.units < 1) return "units must be >= 1";
  if (in.unit_price_vnd <= 0) return "unit_price_vnd must be positive";
  if (in.unit_price_vnd > std::numeric_limits<int64_t>::max() / in.units) return "units x unit_price overflows";
  if (in.amount_vnd != in.unit_price_vnd * in.units) return "amount_vnd differs from units x unit_price_vnd";
  if (in.msisdn.empty()) return "msisdn is empty";
  const std::string longest_key =
      in.mode == ChargingMode::kWhole ? WholeChargeKey(in.donation_id) : UnitChargeKey(in.donation_id, in.units);
  if (!IsValidIdempotencyKey(longest_key)) return "idempotency key too long: " + longest_key;
  return {};
}

}  // namespace

// One donation's charging run. Strictly sequential: at most one backend call or timer is
// outstanding, so its members need no synchronisation even though completions arrive on
// different executors.
class DonationCharger::Operation : public std::enable_shared_from_this<Operation> {
 public:
  Operation(DonationCharger& charger, DonationChargeInput input, Callback done)
      : charger_(charger), input_(std::move(input)), done_(std::move(done)) {}

  void Start() {
    if (std::string error = ValidateInput(input_); !error.empty()) {
      outcome_.failure_reason = ChargeFailureReason::kInvalidRequest;
      return Finish(DonationChargeState::kFailed, "invalid donation: " + error);
    }
    BuildPlan();
    Next();
  }

 private:
  struct Slot {
    ChargeRecord record;
    bool has_record = false;  // a row exists (from the store, or learned in this run)
    ChargeOutcome stored_outcome = ChargeOutcome::kUnknown;
    bool stored = false;
  };

  void BuildPlan() {
    // The stored rows decide the mode if they disagree with the input: a donation charged
    // "whole" must never be charged again unit by unit after a configuration change.
    ChargingMode mode = input_.mode;
    for (const ChargeRecord& r : input_.known_charges) {
      if (r.key == WholeChargeKey(input_.donation_id)) mode = ChargingMode::kWhole;
      else if (r.unit_index > 0) mode = ChargingMode::kPerUnit;
    }
    if (mode == ChargingMode::kWhole) {
      Slot s;
      s.record.key = WholeChargeKey(input_.donation_id);
      s.record.unit_index = 0;
      s.record.units = input_.units;
      s.record.amount_vnd = input_.amount_vnd;
      plan_.push_back(std::move(s));
    } else {
      for (int32_t u = 1; u <= input_.units; ++u) {
        Slot s;
        s.record.key = UnitChargeKey(input_.donation_id, u);
        s.record.unit_index = u;
        s.record.units = 1;
        s.record.amount_vnd = input_.unit_price_vnd;
        plan_.push_back(std::move(s));
      }
    }
    for (const ChargeRecord& r : input_.known_charges) {
      for (Slot& s : plan_) {
        if (s.record.key != r.key) continue;
        // The stored row is what the backend was asked; keep its amount and units.
        s.record = r;
        s.record.changed = false;
        s.has_record = true;
        s.stored = true;
        s.stored_outcome = r.outcome;
      }
    }
  }

  Slot& Current() { return plan_[index_]; }

  ChargeRequest RequestFor(const Slot& s) const {
    ChargeRequest r;
    r.idempotency_key = s.record.key;
    r.msisdn = input_.msisdn;
    r.operator_name = input_.operator_name;
    r.amount_vnd = s.record.amount_vnd;
    r.units = s.record.units;
    r.campaign = input_.campaign;
    return r;
  }

  void Next() {
    if (index_ >= plan_.size()) return Finish(DonationChargeState::kCharged, {});
    Slot& s = Current();
    if (!s.has_record) return SendCharge();
    switch (s.record.outcome) {
      case ChargeOutcome::kCharged:
        ++index_;
        return Next();
      case ChargeOutcome::kInsufficientFunds:
      case ChargeOutcome::kSubscriberBarred:
      case ChargeOutcome::kRejected:
        return Stop();
      case ChargeOutcome::kUnknown:
        return StartResolve();
      case ChargeOutcome::kUnavailable:
      case ChargeOutcome::kNotFound:
        // Definitely not performed: charging again with the same key is safe.
        return SendCharge();
    }
  }

  void Learn(const ChargeResult& result) {
    Slot& s = Current();
    s.has_record = true;
    s.record.outcome = result.outcome;
    s.record.operator_reference = result.operator_reference;
    s.record.detail = result.detail;
    s.record.changed = !s.stored || s.stored_outcome != result.outcome;
  }

  CircuitBreaker::Admission Admit() {
    return charger_.breaker_ ? charger_.breaker_->Admit() : CircuitBreaker::Admission::kAllowed;
  }

  void Record(CircuitBreaker::Admission admission, const ChargeResult& result) {
    if (charger_.breaker_) charger_.breaker_->Record(admission, result);
  }

  void SendCharge() {
    CircuitBreaker::Admission admission = Admit();
    if (admission == CircuitBreaker::Admission::kRefused) {
      return Finish(pending_unknown_ ? DonationChargeState::kUnknown : DonationChargeState::kDeferred,
                    "charging backend circuit breaker is open");
    }
    charger_.backend_.Charge(RequestFor(Current()), [self = shared_from_this(), admission](ChargeResult result) {
      self->Record(admission, result);
      self->OnChargeResult(std::move(result));
    });
  }

  void OnChargeResult(ChargeResult result) {
    switch (result.outcome) {
      case ChargeOutcome::kCharged:
        Learn(result);
        pending_unknown_ = false;
        ++index_;
        return Next();
      case ChargeOutcome::kInsufficientFunds:
      case ChargeOutcome::kSubscriberBarred:
      case ChargeOutcome::kRejected:
        Learn(result);
        pending_unknown_ = false;
        return Stop();
      case ChargeOutcome::kUnavailable:
        // Nothing was performed for this key. If we got here from a Status "not_found" the
        // stored row still says unknown, and stays so until a later run resolves it.
        return Finish(pending_unknown_ ? DonationChargeState::kUnknown : DonationChargeState::kDeferred,
                      "charging backend unavailable: " + result.detail);
      case ChargeOutcome::kUnknown:
      case ChargeOutcome::kNotFound:
        result.outcome = ChargeOutcome::kUnknown;
        Learn(result);
        return resolving_ ? ScheduleStatus(result.detail) : StartResolve();
    }
  }

  void StartResolve() {
    resolving_ = true;
    pending_unknown_ = true;
    deadline_ = steady_clock::now() + charger_.options_.status_max_wait;
    backoff_ = charger_.options_.status_backoff_min;
    AskStatus();
  }

  void AskStatus() {
    CircuitBreaker::Admission admission = Admit();
    if (admission == CircuitBreaker::Admission::kRefused) {
      return Finish(DonationChargeState::kUnknown, "unresolved; circuit breaker open while asking status of " +
                                                       Current().record.key);
    }
    charger_.backend_.Status(Current().record.key, [self = shared_from_this(), admission](ChargeResult result) {
      self->Record(admission, result);
      self->OnStatus(std::move(result));
    });
  }

  void OnStatus(ChargeResult result) {
    switch (result.outcome) {
      case ChargeOutcome::kCharged:
      case ChargeOutcome::kInsufficientFunds:
      case ChargeOutcome::kSubscriberBarred:
      case ChargeOutcome::kRejected:
        resolving_ = false;
        return OnChargeResult(std::move(result));
      case ChargeOutcome::kNotFound:
        // The backend never saw the key: send the very same charge again (same key), unless
        // our time is up — then the row stays unknown and a later run asks again.
        if (steady_clock::now() >= deadline_) {
          return Finish(DonationChargeState::kUnknown, "status not_found at the resolution deadline; retry later");
        }
        return SendCharge();
      case ChargeOutcome::kUnknown:
      case ChargeOutcome::kUnavailable:
        return ScheduleStatus(result.detail);
    }
  }

  void ScheduleStatus(const std::string& last_detail) {
    if (steady_clock::now() + backoff_ > deadline_) {
      return Finish(DonationChargeState::kUnknown, "unresolved after status retries: " + last_detail);
    }
    auto timer = std::make_shared<asio::steady_timer>(charger_.executor_, backoff_);
    backoff_ = std::min(backoff_ * 2, charger_.options_.status_backoff_max);
    timer->async_wait([self = shared_from_this(), timer](const boost::system::error_code&) { self->AskStatus(); });
  }

  // The current slot ended with a business refusal.
  void Stop() {
    const ChargeRecord& r = Current().record;
    outcome_.failure_reason = ReasonFor(r.outcome);
    Finish(DonationChargeState::kFailed, r.detail);  // Finish turns it into partial if units were charged
  }

  void Finish(DonationChargeState state, std::string detail) {
    for (Slot& s : plan_) {
      if (!s.has_record) continue;
      if (s.record.outcome == ChargeOutcome::kCharged) {
        outcome_.charged_units += s.record.units;
        outcome_.charged_amount_vnd += s.record.amount_vnd;
      }
      outcome_.charges.push_back(s.record);
    }
    if (state == DonationChargeState::kFailed && outcome_.charged_units > 0) {
      state = DonationChargeState::kPartiallyCharged;
    }
    outcome_.state = state;
    outcome_.detail = std::move(detail);
    asio::post(charger_.executor_, [done = std::move(done_), outcome = std::move(outcome_)]() mutable {
      done(std::move(outcome));
    });
  }

  DonationCharger& charger_;
  DonationChargeInput input_;
  Callback done_;
  std::vector<Slot> plan_;
  size_t index_ = 0;
  bool resolving_ = false;
  bool pending_unknown_ = false;  // the current key may have been charged
  steady_clock::time_point deadline_{};
  std::chrono::milliseconds backoff_{0};
  DonationChargeOutcome outcome_;
};

DonationCharger::DonationCharger(asio::any_io_executor executor, ChargingBackend& backend, CircuitBreaker* breaker,
                                 DonationChargerOptions options)
    : executor_(std::move(executor)), backend_(backend), breaker_(breaker), options_(options) {
  if (options_.status_backoff_min.count() < 1) options_.status_backoff_min = std::chrono::milliseconds(1);
  if (options_.status_backoff_max < options_.status_backoff_min) options_.status_backoff_max = options_.status_backoff_min;
}

void DonationCharger::ChargeDonation(DonationChargeInput input, Callback done) {
  std::make_shared<Operation>(*this, std::move(input), std::move(done))->Start();
}

}  // namespace donagate::billing
