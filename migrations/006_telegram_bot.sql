-- The bot: a Telegram link is a session (its public id is kept with the
-- link, so that revoking the session unlinks the chat, and the bot acts
-- with that session id, which every service call checks against the
-- revocation record); a chat's pending question; and the answers (Bot API
-- calls) of each handled update, stored in the transaction that handles
-- it and sent after the commit.

ALTER TABLE telegram_links
    ADD COLUMN session_id text,
    ADD CONSTRAINT telegram_links_session_id_check CHECK (session_id IS NULL OR length(session_id) BETWEEN 1 AND 200);
CREATE INDEX telegram_links_session ON telegram_links (session_id) WHERE active;
-- Links ended only because the user blocked the bot, which TouchLink makes
-- active again when the user writes (the active-only index cannot find them).
CREATE INDEX telegram_links_blocked ON telegram_links (telegram_user_id) WHERE blocked_at IS NOT NULL AND NOT active;

ALTER TABLE telegram_chats
    ADD COLUMN state_kind   text,
    ADD COLUMN state_job_id bigint,
    ADD COLUMN state_data   jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN state_at     timestamptz,
    ADD CONSTRAINT telegram_chats_state_kind_check CHECK (state_kind IS NULL OR state_kind ~ '^[a-z][a-z_]{0,49}$'),
    ADD CONSTRAINT telegram_chats_state_data_check CHECK (jsonb_typeof(state_data) = 'object');

ALTER TABLE telegram_updates
    ADD COLUMN calls         jsonb,
    ADD COLUMN calls_sent_at timestamptz,
    ADD CONSTRAINT telegram_updates_calls_check CHECK (calls IS NULL OR jsonb_typeof(calls) = 'array');
-- The workers' queue: pending updates in update_id order (the work index
-- of 002 leads with chat_id after status, so it cannot give that order).
CREATE INDEX telegram_updates_pending ON telegram_updates (update_id) WHERE status = 'pending';
-- Answers committed but not yet sent (recovered after a crash).
CREATE INDEX telegram_updates_unsent ON telegram_updates (update_id)
    WHERE status = 'done' AND calls IS NOT NULL AND calls_sent_at IS NULL;

---- create above / drop below ----

DROP INDEX telegram_updates_unsent;
DROP INDEX telegram_updates_pending;
ALTER TABLE telegram_updates
    DROP CONSTRAINT telegram_updates_calls_check,
    DROP COLUMN calls_sent_at,
    DROP COLUMN calls;
ALTER TABLE telegram_chats
    DROP CONSTRAINT telegram_chats_state_data_check,
    DROP CONSTRAINT telegram_chats_state_kind_check,
    DROP COLUMN state_at,
    DROP COLUMN state_data,
    DROP COLUMN state_job_id,
    DROP COLUMN state_kind;
DROP INDEX telegram_links_blocked;
DROP INDEX telegram_links_session;
ALTER TABLE telegram_links
    DROP CONSTRAINT telegram_links_session_id_check,
    DROP COLUMN session_id;
