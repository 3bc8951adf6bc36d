-- The settlement ledger, SQLite edition (schema version 3). open() upgrades
-- older files in place: version 1 lacked checkpoints.version; version 2 had
-- an index journals_settling (merchant_id, currency, settle_date) where
-- version 3 keeps the settling table.
--
-- Written to read like the PostgreSQL schema it mirrors: one table per thing a
-- finance engineer asks about, plain types, every rule an explicit constraint.
-- Type mapping to PostgreSQL: INTEGER -> BIGINT (amounts are minor units, never
-- floating point), TEXT dates 'YYYY-MM-DD' -> DATE, TEXT instants (RFC 3339,
-- UTC) -> TIMESTAMPTZ, BLOB -> BYTEA, 0/1 -> BOOLEAN. Tables are STRICT so that,
-- as in PostgreSQL, a value of the wrong type or an integer overflow (which
-- SQLite would otherwise turn into a REAL) is an error. The legs' REFERENCES
-- are checked by the ledger once per account and call rather than by SQLite
-- per row (see open() in sqlite_ledger.cc); other connections may enforce them.
--
-- Signs follow SETTLEMENT_RULES §6: a posting is a debit when positive, a
-- credit when negative, and every journal sums to zero.

CREATE TABLE schema_version (
  version    INTEGER NOT NULL PRIMARY KEY,
  applied_at TEXT    NOT NULL
) STRICT;

-- One row per (account, currency): 'merchant:{id}:payable',
-- 'merchant:{id}:reserve', 'platform:clearing', 'platform:fees',
-- 'platform:adjustments', 'platform:payouts'. balance and postings are kept
-- in the same transaction as the journals that move them; trial balances are
-- recomputed from the postings, never from here.
CREATE TABLE accounts (
  account_id INTEGER PRIMARY KEY,
  name       TEXT    NOT NULL,
  currency   TEXT    NOT NULL CHECK (length(currency) = 3),
  balance    INTEGER NOT NULL DEFAULT 0,  -- sum of postings: debits +, credits -
  postings   INTEGER NOT NULL DEFAULT 0 CHECK (postings >= 0),
  UNIQUE (name, currency)
) STRICT;

-- One row per journal: an event's (capture ... adjustment) or a batch close's
-- (reserve_hold, reserve_release, payout). A journal has at most three legs,
-- kept in fixed columns so that an event is one row; the postings view below
-- shows them one row per posting. Identity is (merchant_id, ref): ref is the
-- event_id, or '§batch:YYYY-MM-DD:CUR:hold|release|payout' for a batch journal.
CREATE TABLE journals (
  journal_id   INTEGER PRIMARY KEY,
  merchant_id  TEXT    NOT NULL,
  ref          TEXT    NOT NULL,
  -- Spelled with OR rather than IN (...): SQLite builds a temporary index for
  -- a long IN list on every row it checks (a sixth of the insert time).
  kind         TEXT    NOT NULL CHECK (kind = 'capture' OR kind = 'refund'
                                       OR kind = 'chargeback' OR kind = 'chargeback_reversal'
                                       OR kind = 'adjustment' OR kind = 'reserve_hold'
                                       OR kind = 'reserve_release' OR kind = 'payout'),
  currency     TEXT    NOT NULL CHECK (length(currency) = 3),
  batch_date   TEXT    NOT NULL,  -- the batch the event belongs to by its time
  settle_date  TEXT    NOT NULL,  -- the batch it settles in (later when late)
  late         INTEGER NOT NULL CHECK (late IN (0, 1)),
  occurred_at  TEXT,              -- the event's time; NULL for batch journals
  amount       INTEGER NOT NULL,  -- event amount (signed for adjustments) or batch figure
  fee          INTEGER NOT NULL,
  digest       BLOB    NOT NULL CHECK (length(digest) = 16),  -- content fingerprint
  metadata     TEXT,              -- the event's metadata as a JSON object
  trace_id     TEXT,              -- W3C trace id of the request that brought it
  leg1_account INTEGER NOT NULL REFERENCES accounts (account_id),
  leg1_amount  INTEGER NOT NULL CHECK (leg1_amount <> 0),
  leg2_account INTEGER NOT NULL REFERENCES accounts (account_id),
  leg2_amount  INTEGER NOT NULL CHECK (leg2_amount <> 0),
  leg3_account INTEGER REFERENCES accounts (account_id),
  leg3_amount  INTEGER CHECK (leg3_amount <> 0),
  CHECK ((leg3_account IS NULL) = (leg3_amount IS NULL)),
  -- The ledger also checks the exact sum before it writes: SQLite's `+` turns
  -- an int64 overflow into a REAL.
  CHECK (coalesce(leg1_amount, 0) + coalesce(leg2_amount, 0) + coalesce(leg3_amount, 0) = 0),
  UNIQUE (merchant_id, ref)
) STRICT;

-- What a batch settles: the count and sums of its event journals by
-- settle_date and kind, kept by the ledger in the transaction that inserts
-- them, so that a batch's totals are read without reading its journals.
-- Only inserted journals count (never a duplicate or a conflict). `settled
-- verify` recomputes every closed batch from the postings.
CREATE TABLE settling (
  merchant_id TEXT    NOT NULL,
  currency    TEXT    NOT NULL CHECK (length(currency) = 3),
  settle_date TEXT    NOT NULL,
  kind        TEXT    NOT NULL CHECK (kind = 'capture' OR kind = 'refund'
                                      OR kind = 'chargeback' OR kind = 'chargeback_reversal'
                                      OR kind = 'adjustment'),
  count       INTEGER NOT NULL CHECK (count > 0),
  amount      INTEGER NOT NULL,  -- sum of the journals' amount
  fees        INTEGER NOT NULL,  -- sum of the journals' fee
  PRIMARY KEY (merchant_id, currency, settle_date, kind)
) STRICT, WITHOUT ROWID;

-- Classic double entry: one row per posting.
CREATE VIEW postings (journal_id, leg, account_id, amount) AS
  SELECT journal_id, 1, leg1_account, leg1_amount FROM journals
  UNION ALL
  SELECT journal_id, 2, leg2_account, leg2_amount FROM journals
  UNION ALL
  SELECT journal_id, 3, leg3_account, leg3_amount FROM journals
   WHERE leg3_account IS NOT NULL;

-- One row per closed batch (SETTLEMENT_RULES §5 and §7): the report's figures,
-- fees also per event type, and the bookkeeping of its close.
CREATE TABLE batches (
  merchant_id       TEXT    NOT NULL,
  batch_date        TEXT    NOT NULL,
  currency          TEXT    NOT NULL CHECK (length(currency) = 3),
  captures_count    INTEGER NOT NULL CHECK (captures_count >= 0),
  captures          INTEGER NOT NULL,
  captures_fees     INTEGER NOT NULL,
  refunds_count     INTEGER NOT NULL CHECK (refunds_count >= 0),
  refunds           INTEGER NOT NULL,
  refunds_fees      INTEGER NOT NULL,
  chargebacks_count INTEGER NOT NULL CHECK (chargebacks_count >= 0),
  chargebacks       INTEGER NOT NULL,
  chargebacks_fees  INTEGER NOT NULL,
  reversals_count   INTEGER NOT NULL CHECK (reversals_count >= 0),
  reversals         INTEGER NOT NULL,
  reversals_fees    INTEGER NOT NULL,
  adjustments_count INTEGER NOT NULL CHECK (adjustments_count >= 0),
  adjustments       INTEGER NOT NULL,
  adjustments_fees  INTEGER NOT NULL,
  fees              INTEGER NOT NULL,  -- all of the batch's per-event fees
  reserve_held      INTEGER NOT NULL CHECK (reserve_held >= 0),
  reserve_released  INTEGER NOT NULL CHECK (reserve_released >= 0),
  carried_in        INTEGER NOT NULL CHECK (carried_in <= 0),
  net               INTEGER NOT NULL,
  payout            INTEGER NOT NULL CHECK (payout >= 0),
  carry_out         INTEGER NOT NULL CHECK (carry_out <= 0),
  payout_date       TEXT    NOT NULL,
  released_by       TEXT,              -- batch_date of the batch that released this hold
  fencing_token     INTEGER NOT NULL,  -- of the worker that closed it
  closed_at         TEXT    NOT NULL,  -- RFC 3339, UTC, wall clock of the close
  CHECK (fees = captures_fees + refunds_fees + chargebacks_fees + reversals_fees
                + adjustments_fees),
  CHECK (net = payout + carry_out AND (payout = 0 OR carry_out = 0)),
  CHECK (released_by IS NULL OR (reserve_held > 0 AND released_by > batch_date)),
  PRIMARY KEY (merchant_id, currency, batch_date)
) STRICT;

-- The highest fencing token registered per batch; a close with a lower token
-- is refused.
CREATE TABLE batch_fences (
  merchant_id TEXT    NOT NULL,
  currency    TEXT    NOT NULL,
  batch_date  TEXT    NOT NULL,
  token       INTEGER NOT NULL CHECK (token >= 0),
  PRIMARY KEY (merchant_id, currency, batch_date)
) STRICT;

-- Consumers' input positions, committed with the postings they cover.
-- `version` counts the writes: each one must follow the version its writer
-- read (see Checkpoint in ledger.h).
CREATE TABLE checkpoints (
  consumer    TEXT    NOT NULL,
  partition   INTEGER NOT NULL,
  next_offset INTEGER NOT NULL,
  state       BLOB    NOT NULL,
  version     INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0),
  PRIMARY KEY (consumer, partition)
) STRICT;
