-- The version each event document is indexed with in OpenSearch (version_type external).
--
-- The consumer indexes an event's document while the transaction that inserted its row is
-- still open, and draws this number after that INSERT has finished. A transaction that
-- inserts an event_id waits on the unique key for any other open transaction holding the
-- same event_id, so of the transactions that ever insert one event, each draws its number
-- after the one before it ended: the transaction that commits has the highest number, and
-- OpenSearch keeps its document whatever order earlier attempts' writes arrive in (a write
-- with a lower version is refused). See pipeline/sinks/writer.py.
--
-- The application role may draw numbers (USAGE) but not set the sequence back (no UPDATE).

CREATE SEQUENCE event_document_version AS bigint;
GRANT USAGE ON SEQUENCE event_document_version TO {{app_role}};
