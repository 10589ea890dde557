-- The head of each organisation's audit chain moves to a narrow table of
-- its own. Every audited change moved it, and on the organisations row
-- that meant a new version of a wide row and re-checking its twelve CHECK
-- constraints (which Postgres parses afresh for every statement) each
-- time. The organisation's row stays the lock that orders its writers.
CREATE TABLE audit_chains (
    org_id bigint PRIMARY KEY REFERENCES organisations (id) ON DELETE CASCADE,
    seq    bigint NOT NULL DEFAULT 0,
    head   bytea
);
-- No organisation may be created or change its chain (an instance still
-- running the old version) between the copy and the trigger.
LOCK TABLE organisations IN SHARE ROW EXCLUSIVE MODE;

-- Every organisation has its chain row from its creation on, however it
-- is inserted.
CREATE FUNCTION audit_chains_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_chains (org_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER organisations_audit_chain AFTER INSERT ON organisations
    FOR EACH ROW EXECUTE FUNCTION audit_chains_start();

INSERT INTO audit_chains (org_id, seq, head) SELECT id, audit_seq, audit_head FROM organisations
    ON CONFLICT (org_id) DO NOTHING;

ALTER TABLE organisations DROP COLUMN audit_seq, DROP COLUMN audit_head;

---- create above / drop below ----

ALTER TABLE organisations ADD COLUMN audit_seq bigint NOT NULL DEFAULT 0, ADD COLUMN audit_head bytea;
UPDATE organisations o SET audit_seq = c.seq, audit_head = c.head FROM audit_chains c WHERE c.org_id = o.id;
DROP TRIGGER organisations_audit_chain ON organisations;
DROP FUNCTION audit_chains_start();
DROP TABLE audit_chains;
