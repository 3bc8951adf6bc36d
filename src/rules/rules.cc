#include "rules/rules.h"

#include <fmt/format.h>

#include "model/event_json.h"

namespace settle::rules {

using model::AccountRole;
using model::JournalKind;

Date batch_date_of(const Merchant& merchant, Timestamp occurred_at) {
  const LocalDateTime local = merchant.timezone.to_local(occurred_at);
  if (merchant.cutoff_minutes == 0) return local.date;
  const std::int64_t cutoff_ns = static_cast<std::int64_t>(merchant.cutoff_minutes) * kNsPerMinute;
  return local.ns_of_day < cutoff_ns ? local.date : local.date.plus_days(1);
}

Timestamp batch_end(const Merchant& merchant, Date batch_date) {
  if (merchant.cutoff_minutes == 0) return merchant.timezone.local_end(batch_date.plus_days(1), 0);
  return merchant.timezone.local_end(batch_date, merchant.cutoff_minutes);
}

Result<Minor> event_fee(const Merchant& merchant, EventType type, Minor amount) {
  if (type == EventType::kAdjustment) return Minor{0};
  const model::FeeSchedule& fs = merchant.fee_for(type);
  SETTLE_ASSIGN_OR_RETURN(Minor pct, apply_bps(amount, fs.bps));
  return checked_add(pct, fs.fixed);
}

Result<Journal> event_journal(const Event& ev, const Merchant& merchant, Date batch_date,
                              Date settle_date, bool late) {
  Journal j;
  SETTLE_TRY(assign_event_journal(j, ev, merchant, batch_date, settle_date, late));
  return j;
}

Status assign_event_journal(Journal& j, const Event& ev, const Merchant& merchant, Date batch_date,
                            Date settle_date, bool late) {
  SETTLE_ASSIGN_OR_RETURN(const Minor fee, event_fee(merchant, ev.type, ev.amount));
  j.merchant_id.assign(ev.merchant_id.view());
  j.ref.assign(ev.event_id.view());
  j.kind = model::journal_kind_of(ev.type);
  j.currency.assign(ev.currency);
  j.batch_date = batch_date;
  j.settle_date = settle_date;
  j.late = late;
  j.occurred_at = ev.occurred_at;
  j.amount = ev.amount;
  j.fee = fee;
  j.digest = model::canonical_digest(ev);
  model::assign_metadata_json(j.metadata_json, ev);
  j.trace_id.clear();
  j.legs = {};
  j.leg_count = 0;
  const Minor a = ev.amount;
  switch (ev.type) {
    case EventType::kCapture:
    case EventType::kChargebackReversal: {
      SETTLE_ASSIGN_OR_RETURN(const Minor net, checked_sub(a, fee));
      j.add_leg(AccountRole::kPlatformClearing, a);
      j.add_leg(AccountRole::kMerchantPayable, -net);
      j.add_leg(AccountRole::kPlatformFees, -fee);
      break;
    }
    case EventType::kRefund:
    case EventType::kChargeback: {
      SETTLE_ASSIGN_OR_RETURN(const Minor gross, checked_add(a, fee));
      j.add_leg(AccountRole::kPlatformClearing, -a);
      j.add_leg(AccountRole::kMerchantPayable, gross);
      j.add_leg(AccountRole::kPlatformFees, -fee);
      break;
    }
    case EventType::kAdjustment: {
      // -a does not fit when a is INT64_MIN (a valid signed adjustment).
      SETTLE_ASSIGN_OR_RETURN(const Minor credit, checked_sub(0, a));
      j.add_leg(AccountRole::kPlatformAdjustments, a);
      j.add_leg(AccountRole::kMerchantPayable, credit);
      break;
    }
  }
  SETTLE_ASSERT(j.leg_sum() == 0, "an event journal must balance");
  return ok_status();
}

Status add_to_totals(ControlTotals& totals, EventType type, Minor amount, Minor fee) {
  model::TypeTotals& t = totals.of(type);
  SETTLE_ASSIGN_OR_RETURN(const Minor sum, checked_add(t.amount, amount));
  SETTLE_ASSIGN_OR_RETURN(const Minor fees, checked_add(t.fees, fee));
  // The batch's `fees` figure sums every type's fees: it must fit too.
  SETTLE_TRY(checked_add(totals.fees(), fee));
  t.amount = sum;
  t.fees = fees;
  t.count += 1;
  return ok_status();
}

Result<BatchOutcome> settle_batch(const Merchant& merchant, const BatchKey& key,
                                  const ControlTotals& totals, Minor carried_in,
                                  const std::vector<HeldReserve>& unreleased) {
  SETTLE_ASSERT(carried_in <= 0, "a carried balance is never positive");
  BatchOutcome out;
  BatchSummary& s = out.summary;
  s.key = key;
  s.totals = totals;
  s.carried_in = carried_in;
  const Minor captures = totals.of(EventType::kCapture).amount;
  SETTLE_ASSIGN_OR_RETURN(s.reserve_held, apply_bps(captures, merchant.reserve_bps));

  __int128 released = 0;
  for (const HeldReserve& h : unreleased) {
    SETTLE_ASSERT(h.batch_date < key.batch_date, "only earlier batches' holds can be released");
    if (h.batch_date.plus_days(merchant.reserve_days) <= key.batch_date) {
      released += h.amount;
      out.released.push_back(h.batch_date);
    }
  }
  // Summed here in 128 bits: each type's fees fit int64, their sum may not.
  __int128 fees = 0;
  for (const model::TypeTotals& t : totals.by_type) fees += t.fees;
  const __int128 net = static_cast<__int128>(captures) - totals.of(EventType::kRefund).amount -
                       totals.of(EventType::kChargeback).amount +
                       totals.of(EventType::kChargebackReversal).amount +
                       totals.of(EventType::kAdjustment).amount - fees - s.reserve_held +
                       released + carried_in;
  constexpr __int128 kMin = INT64_MIN;
  constexpr __int128 kMax = INT64_MAX;
  if (fees < kMin || fees > kMax) {
    return make_error(ErrorCode::kOverflow,
                      fmt::format("batch {}: fees overflow a 64-bit amount", key.to_string()));
  }
  if (released > kMax || net < kMin || net > kMax) {
    return make_error(ErrorCode::kOverflow,
                      fmt::format("batch {}: net overflows a 64-bit amount", key.to_string()));
  }
  s.reserve_released = static_cast<Minor>(released);
  s.net = static_cast<Minor>(net);
  s.payout = s.net > 0 ? s.net : 0;
  s.carry_out = s.net < 0 ? s.net : 0;
  s.payout_date = key.batch_date.plus_days(merchant.delay_days);
  return out;
}

std::vector<Journal> batch_journals(const BatchSummary& s) {
  std::vector<Journal> out;
  // The '§' keeps batch refs apart from event ids, which are printable ASCII:
  // no event can take a batch journal's identity.
  const std::string base = fmt::format("§batch:{}:{}:", format_date(s.key.batch_date), s.key.currency);
  auto make = [&](JournalKind kind, const char* suffix, Minor amount, AccountRole debit,
                  AccountRole credit) {
    if (amount == 0) return;
    Journal j;
    j.merchant_id = s.key.merchant_id;
    j.ref = base + suffix;
    j.kind = kind;
    j.currency = s.key.currency;
    j.batch_date = s.key.batch_date;
    j.settle_date = s.key.batch_date;
    j.amount = amount;
    j.digest = model::digest_of(fmt::format("{}{}", j.ref, amount));
    j.add_leg(debit, amount);
    j.add_leg(credit, -amount);
    out.push_back(std::move(j));
  };
  make(JournalKind::kReserveHold, "hold", s.reserve_held, AccountRole::kMerchantPayable,
       AccountRole::kMerchantReserve);
  make(JournalKind::kReserveRelease, "release", s.reserve_released, AccountRole::kMerchantReserve,
       AccountRole::kMerchantPayable);
  make(JournalKind::kPayout, "payout", s.payout, AccountRole::kMerchantPayable,
       AccountRole::kPlatformPayouts);
  return out;
}

std::string report_header() {
  return "merchant_id,batch_date,currency,captures_count,captures,refunds_count,refunds,"
         "chargebacks_count,chargebacks,reversals_count,reversals,adjustments_count,adjustments,"
         "fees,reserve_held,reserve_released,carried_in,net,payout,carry_out,payout_date";
}

std::string report_row(const BatchSummary& s) {
  const auto& t = s.totals;
  auto c = [&](EventType e) { return t.of(e).count; };
  auto a = [&](EventType e) { return t.of(e).amount; };
  return fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                     s.key.merchant_id.str(), format_date(s.key.batch_date), s.key.currency,
                     c(EventType::kCapture), a(EventType::kCapture), c(EventType::kRefund),
                     a(EventType::kRefund), c(EventType::kChargeback), a(EventType::kChargeback),
                     c(EventType::kChargebackReversal), a(EventType::kChargebackReversal),
                     c(EventType::kAdjustment), a(EventType::kAdjustment), t.fees(), s.reserve_held,
                     s.reserve_released, s.carried_in, s.net, s.payout, s.carry_out,
                     format_date(s.payout_date));
}

}  // namespace settle::rules
