-- Wrong passwords typed on an invitation link for an existing account are
-- counted; after five the invitation is withdrawn, so a link cannot be used
-- to guess an account's password.
ALTER TABLE invitations ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0);

---- create above / drop below ----

ALTER TABLE invitations DROP COLUMN failed_attempts;
