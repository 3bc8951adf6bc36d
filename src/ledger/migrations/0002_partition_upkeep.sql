-- Partition upkeep: day partitions created on demand or ahead of time,
-- archived (detached into the ledger_archive schema and exported) and
-- restored. `settled partitions ensure|archive|restore` drive these.

CREATE SCHEMA ledger_archive;

-- One row per archived day: where its rows went, and its postings' totals per
-- currency, which keep trial_balance() whole while the day is detached.
CREATE TABLE archived_days (
  day         date PRIMARY KEY,
  table_name  text NOT NULL,        -- ledger_archive.<table_name> while it is kept there
  file        text NOT NULL,        -- the COPY export written at archive time
  rows        bigint NOT NULL,
  archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE archived_totals (
  day      date   NOT NULL REFERENCES archived_days (day) ON DELETE CASCADE,
  currency text   COLLATE "C" NOT NULL,
  debits   numeric NOT NULL,
  credits  numeric NOT NULL,
  PRIMARY KEY (day, currency)
);

CREATE FUNCTION ledger_day_partition(d date) RETURNS text
  LANGUAGE sql IMMUTABLE RETURN 'journals_p' || to_char(d, 'YYYYMMDD');

-- Creates the day's partition (and its hash partitions) unless it exists.
-- Returns true when it created it, false when it existed, NULL when the day
-- is archived (restore it first: until then the day takes no new journals,
-- while redeliveries of its journals are still found in journal_keys).
CREATE FUNCTION ledger_ensure_day(d date) RETURNS boolean
  LANGUAGE plpgsql AS $$
DECLARE
  parent text := ledger_day_partition(d);
  n bigint;
BEGIN
  IF to_regclass(format('%I.%I', current_schema(), parent)) IS NOT NULL THEN
    RETURN false;
  END IF;
  -- One creator at a time; the loser of a race finds the table made.
  PERFORM pg_advisory_xact_lock(hashtextextended('settle.ledger.partitions', 0));
  IF to_regclass(format('%I.%I', current_schema(), parent)) IS NOT NULL THEN
    RETURN false;
  END IF;
  IF EXISTS (SELECT 1 FROM archived_days WHERE day = d) THEN
    RETURN NULL;
  END IF;
  SELECT value INTO n FROM ledger_settings WHERE name = 'hash_partitions';
  BEGIN
    EXECUTE format('CREATE TABLE %I PARTITION OF journals FOR VALUES FROM (%L) TO (%L) '
                   'PARTITION BY HASH (merchant_id)', parent, d, d + 1);
  EXCEPTION WHEN duplicate_table THEN
    -- Created by a transaction that committed after this one's catalog
    -- snapshot (an advisory lock does not refresh it).
    RETURN false;
  END;
  FOR i IN 0 .. n - 1 LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                   parent || '_h' || i, parent, n, i);
  END LOOP;
  RETURN true;
END $$;

-- The live day partitions, oldest first.
CREATE VIEW journal_days AS
  SELECT to_date(substr(c.relname, 11), 'YYYYMMDD') AS day, c.relname::text AS table_name
    FROM pg_inherits AS i
    JOIN pg_class AS c ON c.oid = i.inhrelid
   WHERE i.inhparent = 'journals'::regclass
   ORDER BY 1;
