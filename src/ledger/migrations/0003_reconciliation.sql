-- Reconciliation (src/reconcile, PostgresReconStore): loaded statements,
-- runs, matches, discrepancy tasks and the drift time series. The same tables
-- as SqliteReconStore keeps in ledger.db (see docs/reconciliation.md), with
-- instants as timestamptz and identifiers compared bytewise (COLLATE "C").
-- record_run() writes a run in one transaction, serialized across processes
-- by a transaction-scoped advisory lock.

-- One row per run: the drift time series' totals.
CREATE TABLE recon_runs (
  run_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ran_at        timestamptz NOT NULL,
  statement_key text   COLLATE "C" NOT NULL,
  format        text   COLLATE "C" NOT NULL,
  items         bigint NOT NULL,
  matches       bigint NOT NULL,
  opened        bigint NOT NULL,
  auto_resolved bigint NOT NULL,
  open_count    bigint NOT NULL   -- open + acknowledged tasks after the run
);

-- A statement's identity: XXH3-128 of its bytes plus its statement ids.
CREATE TABLE recon_statements (
  statement_key text   COLLATE "C" PRIMARY KEY,
  format        text   COLLATE "C" NOT NULL,
  statement_ids text   COLLATE "C" NOT NULL,
  loaded_at     timestamptz NOT NULL,
  run_id        bigint NOT NULL REFERENCES recon_runs (run_id)
);

CREATE TABLE recon_matches (
  match_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id     bigint NOT NULL REFERENCES recon_runs (run_id),
  rule       text   COLLATE "C" NOT NULL,
  confidence integer NOT NULL CHECK (confidence BETWEEN 0 AND 100),  -- percent
  ours       text   COLLATE "C" NOT NULL,   -- subjects, space separated
  theirs     text   COLLATE "C" NOT NULL    -- statement locations, space separated
);
CREATE INDEX recon_matches_run ON recon_matches (run_id);

-- Subjects ("payout:REF", "event:M/ID", "batch:...") matched by some run.
CREATE TABLE recon_matched (
  subject text   COLLATE "C" PRIMARY KEY,
  run_id  bigint NOT NULL REFERENCES recon_runs (run_id)
);

CREATE TABLE recon_discrepancies (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  reason        text   COLLATE "C" NOT NULL CHECK (reason IN ('missing_in_ledger', 'missing_in_statement',
                                       'amount_mismatch', 'fee_mismatch', 'duplicate_in_statement',
                                       'outside_date_window', 'currency_mismatch')),
  subject       text   COLLATE "C" NOT NULL,
  merchant_id   text   COLLATE "C" NOT NULL,   -- '' when the statement names none we know
  currency      text   COLLATE "C" NOT NULL,
  expected      bigint NOT NULL,               -- ours, minor units
  actual        bigint NOT NULL,               -- theirs, minor units
  drift         bigint NOT NULL CHECK (drift >= 0),
  our_ref       text   COLLATE "C" NOT NULL,
  their_ref     text   COLLATE "C" NOT NULL,
  detail        text   NOT NULL,
  state         text   COLLATE "C" NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
  comment       text   NOT NULL DEFAULT '',
  statement_key text   COLLATE "C" NOT NULL,
  run_id        bigint NOT NULL REFERENCES recon_runs (run_id),
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL
);
CREATE INDEX recon_discrepancies_subject ON recon_discrepancies (subject, state);
CREATE INDEX recon_discrepancies_state ON recon_discrepancies (state, created_at);

-- Drift per run: per currency and merchant, and per currency (merchant_id '').
CREATE TABLE recon_drift (
  run_id      bigint NOT NULL REFERENCES recon_runs (run_id),
  ran_at      timestamptz NOT NULL,
  currency    text   COLLATE "C" NOT NULL,
  merchant_id text   COLLATE "C" NOT NULL,
  count       bigint NOT NULL,
  amount      bigint NOT NULL,
  PRIMARY KEY (run_id, currency, merchant_id)
);
