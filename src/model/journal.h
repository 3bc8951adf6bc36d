// Journals and postings (SETTLEMENT_RULES §6). A posting is signed: debit
// positive, credit negative; every journal sums to zero. A journal has at most
// three legs, which lets a ledger store them in fixed columns.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/ids.h"
#include "common/money.h"
#include "common/time.h"
#include "model/event.h"

namespace settle::model {

enum class AccountRole : std::uint8_t {
  kMerchantPayable = 0,
  kMerchantReserve = 1,
  kPlatformClearing = 2,
  kPlatformFees = 3,
  kPlatformAdjustments = 4,
  kPlatformPayouts = 5,
};

// "merchant:{id}:payable", "platform:clearing", ...
std::string account_name(AccountRole role, std::string_view merchant_id);
bool is_merchant_account(AccountRole role);

struct Posting {
  AccountRole account = AccountRole::kMerchantPayable;
  Minor amount = 0;
  bool operator==(const Posting&) const = default;
};

enum class JournalKind : std::uint8_t {
  kCapture = 0,
  kRefund = 1,
  kChargeback = 2,
  kChargebackReversal = 3,
  kAdjustment = 4,
  kReserveHold = 5,
  kReserveRelease = 6,
  kPayout = 7,
};
std::string_view journal_kind_name(JournalKind kind);
JournalKind journal_kind_of(EventType type);

inline constexpr std::size_t kMaxLegs = 3;

// 128-bit fingerprint of the journal's source content; two posts of one
// identity are duplicates when their digests are equal, conflicts otherwise.
struct Digest {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  bool operator==(const Digest&) const = default;
};

struct Journal {
  // Identity: (merchant_id, ref). For an event journal ref is the event_id; for
  // a batch journal "§batch:YYYY-MM-DD:CUR:hold|release|payout" (the '§' is
  // outside the event-id alphabet, so the two kinds of ref never collide).
  MerchantId merchant_id;
  std::string ref;
  JournalKind kind = JournalKind::kCapture;
  std::string currency;
  Date batch_date;   // the batch the source event belongs to by its time
  Date settle_date;  // the batch it settles in (differs from batch_date when late)
  bool late = false;
  Timestamp occurred_at;
  Minor amount = 0;  // the event amount (signed for adjustments) or the batch figure
  Minor fee = 0;
  Digest digest;
  std::string metadata_json;  // "" when none
  std::string trace_id;       // W3C trace id when known
  std::array<Posting, kMaxLegs> legs{};
  std::uint8_t leg_count = 0;

  void add_leg(AccountRole account, Minor amount);  // zero legs are not written
  Minor leg_sum() const;                            // must be 0
};

}  // namespace settle::model
