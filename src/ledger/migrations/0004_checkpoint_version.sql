-- Checkpoint versions: each write of a consumer's checkpoint must follow the
-- version its writer read (see Checkpoint in src/ledger/ledger.h), so a
-- processor that lost its partition cannot overwrite its successor's
-- position. Existing rows start at 0; their next write is version 1.
ALTER TABLE checkpoints ADD COLUMN version bigint NOT NULL DEFAULT 0 CHECK (version >= 0);
