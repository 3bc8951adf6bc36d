-- The settlement ledger, PostgreSQL edition: migration 0001.
--
-- Mirrors schema_sqlite.sql (same tables, same rules as constraints), with
-- what PostgreSQL adds: journals partitioned by day of settle_date and then
-- by hash of merchant_id, an unpartitioned identity table that keeps
-- (merchant_id, ref) unique across all partitions (archived ones included),
-- and a sequence for fencing tokens.
--
-- Signs follow SETTLEMENT_RULES §6: a posting is a debit when positive, a
-- credit when negative, and every journal sums to zero. Amounts are BIGINT
-- minor units; identifiers compare bytewise (COLLATE "C") whatever the
-- database's locale, so sort orders match the other ledger.

-- Settings the partition functions read. hash_partitions may be changed only
-- while no journal partition exists.
CREATE TABLE ledger_settings (
  name  text   COLLATE "C" PRIMARY KEY,
  value bigint NOT NULL
);
INSERT INTO ledger_settings (name, value) VALUES ('hash_partitions', 8);

-- One row per (account, currency), balance and postings kept in the same
-- transaction as the journals that move them. Trial balances are recomputed
-- from the postings, never from here.
CREATE TABLE accounts (
  name     text   COLLATE "C" NOT NULL,
  currency text   COLLATE "C" NOT NULL CHECK (length(currency) = 3),
  balance  bigint NOT NULL DEFAULT 0,
  postings bigint NOT NULL DEFAULT 0 CHECK (postings >= 0),
  PRIMARY KEY (name, currency)
);

-- Account roles as journals store them (model::AccountRole).
CREATE FUNCTION ledger_account_name(role smallint, merchant_id text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
  RETURN CASE role
    WHEN 0 THEN 'merchant:' || merchant_id || ':payable'
    WHEN 1 THEN 'merchant:' || merchant_id || ':reserve'
    WHEN 2 THEN 'platform:clearing'
    WHEN 3 THEN 'platform:fees'
    WHEN 4 THEN 'platform:adjustments'
    WHEN 5 THEN 'platform:payouts'
  END;

-- The identity of every journal ever posted: the durable exactly-once guard.
-- Unpartitioned, because a unique constraint of a partitioned table must
-- contain its partition keys, and (merchant_id, ref) contains no date.
-- Archiving a partition keeps its identities here, so a redelivered event of
-- an archived day is still a duplicate.
CREATE TABLE journal_keys (
  merchant_id text  COLLATE "C" NOT NULL,
  ref         text  COLLATE "C" NOT NULL,
  settle_date date  NOT NULL,  -- where the journal lives: its partition
  digest      bytea NOT NULL CHECK (length(digest) = 16),
  PRIMARY KEY (merchant_id, ref)
);

CREATE SEQUENCE journal_ids AS bigint;

-- One row per journal: an event's (capture ... adjustment) or a batch close's
-- (reserve_hold, reserve_release, payout). At most three legs, in fixed
-- columns; leg accounts are roles (see ledger_account_name), the merchant
-- being the journal's. The postings view shows one row per posting.
--
-- Partitioned by day of settle_date (the batch a journal settles in, so a
-- batch's journals are in one partition and archiving old days takes whole
-- settled batches), each day by hash of merchant_id. The primary key
-- contains both partition keys.
CREATE TABLE journals (
  journal_id   bigint  NOT NULL DEFAULT nextval('journal_ids'),
  merchant_id  text    COLLATE "C" NOT NULL,
  ref          text    COLLATE "C" NOT NULL,
  kind         text    COLLATE "C" NOT NULL CHECK (kind IN ('capture', 'refund', 'chargeback',
                 'chargeback_reversal', 'adjustment', 'reserve_hold', 'reserve_release', 'payout')),
  currency     text    COLLATE "C" NOT NULL CHECK (length(currency) = 3),
  batch_date   date    NOT NULL,  -- the batch the event belongs to by its time
  settle_date  date    NOT NULL,  -- the batch it settles in (later when late)
  late         boolean NOT NULL,
  occurred_at  timestamptz,       -- the event's time (microseconds); NULL for batch journals
  amount       bigint  NOT NULL,  -- event amount (signed for adjustments) or batch figure
  fee          bigint  NOT NULL,
  digest       bytea   NOT NULL CHECK (length(digest) = 16),  -- content fingerprint
  metadata     text,              -- the event's metadata, a JSON object
  trace_id     text,              -- W3C trace id of the request that brought it
  leg1_account smallint NOT NULL CHECK (leg1_account BETWEEN 0 AND 5),
  leg1_amount  bigint   NOT NULL CHECK (leg1_amount <> 0),
  leg2_account smallint NOT NULL CHECK (leg2_account BETWEEN 0 AND 5),
  leg2_amount  bigint   NOT NULL CHECK (leg2_amount <> 0),
  leg3_account smallint CHECK (leg3_account BETWEEN 0 AND 5),
  leg3_amount  bigint   CHECK (leg3_amount <> 0),
  CHECK ((leg3_account IS NULL) = (leg3_amount IS NULL)),
  CHECK (leg1_amount + leg2_amount + coalesce(leg3_amount, 0) = 0),
  PRIMARY KEY (journal_id, settle_date, merchant_id)
) PARTITION BY RANGE (settle_date);

-- What a batch settles: its event journals by settle_date.
CREATE INDEX journals_settling ON journals (merchant_id, currency, settle_date);

-- Classic double entry: one row per posting (live partitions).
CREATE VIEW postings AS
  SELECT j.journal_id, l.leg, j.merchant_id, j.ref, j.kind, j.currency, j.batch_date,
         j.settle_date, j.late, ledger_account_name(l.role, j.merchant_id) AS account, l.amount
    FROM journals AS j
   CROSS JOIN LATERAL (VALUES (1, j.leg1_account, j.leg1_amount),
                              (2, j.leg2_account, j.leg2_amount),
                              (3, j.leg3_account, j.leg3_amount)) AS l (leg, role, amount)
   WHERE l.role IS NOT NULL;

-- One row per closed batch (SETTLEMENT_RULES §5 and §7).
CREATE TABLE batches (
  merchant_id       text   COLLATE "C" NOT NULL,
  batch_date        date   NOT NULL,
  currency          text   COLLATE "C" NOT NULL CHECK (length(currency) = 3),
  captures_count    bigint NOT NULL CHECK (captures_count >= 0),
  captures          bigint NOT NULL,
  captures_fees     bigint NOT NULL,
  refunds_count     bigint NOT NULL CHECK (refunds_count >= 0),
  refunds           bigint NOT NULL,
  refunds_fees      bigint NOT NULL,
  chargebacks_count bigint NOT NULL CHECK (chargebacks_count >= 0),
  chargebacks       bigint NOT NULL,
  chargebacks_fees  bigint NOT NULL,
  reversals_count   bigint NOT NULL CHECK (reversals_count >= 0),
  reversals         bigint NOT NULL,
  reversals_fees    bigint NOT NULL,
  adjustments_count bigint NOT NULL CHECK (adjustments_count >= 0),
  adjustments       bigint NOT NULL,
  adjustments_fees  bigint NOT NULL,
  fees              bigint NOT NULL,
  reserve_held      bigint NOT NULL CHECK (reserve_held >= 0),
  reserve_released  bigint NOT NULL CHECK (reserve_released >= 0),
  carried_in        bigint NOT NULL CHECK (carried_in <= 0),
  net               bigint NOT NULL,
  payout            bigint NOT NULL CHECK (payout >= 0),
  carry_out         bigint NOT NULL CHECK (carry_out <= 0),
  payout_date       date   NOT NULL,
  released_by       date,            -- batch_date of the batch that released this hold
  fencing_token     bigint NOT NULL,  -- of the worker that closed it
  closed_at         timestamptz NOT NULL DEFAULT now(),
  CHECK (fees = captures_fees + refunds_fees + chargebacks_fees + reversals_fees
                + adjustments_fees),
  CHECK (net = payout + carry_out AND (payout = 0 OR carry_out = 0)),
  CHECK (released_by IS NULL OR (reserve_held > 0 AND released_by > batch_date)),
  PRIMARY KEY (merchant_id, currency, batch_date)
);

-- The highest fencing token registered per batch; a close with a lower token
-- is refused.
CREATE TABLE batch_fences (
  merchant_id text   COLLATE "C" NOT NULL,
  currency    text   COLLATE "C" NOT NULL,
  batch_date  date   NOT NULL,
  token       bigint NOT NULL CHECK (token >= 0),
  PRIMARY KEY (merchant_id, currency, batch_date)
);

-- A durable, monotonic source of fencing tokens (PostgresLedger::
-- next_fencing_token, and the Redis store's PgTokenSource, which creates the
-- same sequence when it runs first): unlike a Redis counter, a failover
-- cannot reset it. CACHE 1: every value handed out is in the WAL first.
CREATE SEQUENCE IF NOT EXISTS settle_fencing_tokens AS bigint CACHE 1;

-- Consumers' input positions, committed with the postings they cover.
CREATE TABLE checkpoints (
  consumer    text   COLLATE "C" NOT NULL,
  partition   integer NOT NULL,
  next_offset bigint NOT NULL,
  state       bytea  NOT NULL,
  PRIMARY KEY (consumer, partition)
);
