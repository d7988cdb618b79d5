"""0002 operations: inbound webhook messages, outbox, audit log, feature flags.

The tables the pipeline needs around the domain (docs/pipeline.md).

Downgrade drops only these four tables: every patient, therapist, search,
bundle, email and call row is kept.
"""

SQLITE_UP = [
    """CREATE TABLE "inbound_messages" (
    "id" INTEGER NOT NULL PRIMARY KEY,
    "provider" VARCHAR(20) NOT NULL,
    "message_key" VARCHAR(300) NOT NULL,
    "received_at" DATETIME NOT NULL,
    "raw_payload" TEXT NOT NULL,
    "sender" VARCHAR(254),
    "recipient" VARCHAR(500),
    "subject" TEXT,
    "therapeutenanfrage_id" INTEGER,
    "status" VARCHAR(11) NOT NULL CHECK (status IN ('neu', 'verarbeitet', 'pruefung', 'ignoriert', 'fehler')),
    "result" TEXT,
    "review_reason" TEXT,
    "processed_at" DATETIME,
    FOREIGN KEY ("therapeutenanfrage_id") REFERENCES "therapeutenanfrage" ("id") ON DELETE SET NULL
)""",
    """CREATE UNIQUE INDEX "inbound_messages_message_key" ON "inbound_messages" ("message_key")""",
    """CREATE INDEX "inbound_messages_therapeutenanfrage_id" ON "inbound_messages" ("therapeutenanfrage_id")""",
    """CREATE INDEX "inbound_messages_status" ON "inbound_messages" ("status")""",
    """CREATE TABLE "outbox" (
    "id" INTEGER NOT NULL PRIMARY KEY,
    "task" VARCHAR(100) NOT NULL,
    "payload" TEXT NOT NULL DEFAULT '{}',
    "dedupe_key" VARCHAR(200) NOT NULL,
    "status" VARCHAR(14) NOT NULL CHECK (status IN ('offen', 'eingereiht', 'erledigt', 'fehlgeschlagen')),
    "created_at" DATETIME NOT NULL,
    "enqueued_at" DATETIME,
    "done_at" DATETIME,
    "attempts" INTEGER NOT NULL,
    "last_error" TEXT
)""",
    """CREATE UNIQUE INDEX "outbox_dedupe_key" ON "outbox" ("dedupe_key")""",
    """CREATE INDEX "outbox_status_created_at" ON "outbox" ("status", "created_at")""",
    """CREATE TABLE "audit_log" (
    "id" INTEGER NOT NULL PRIMARY KEY,
    "at" DATETIME NOT NULL,
    "actor" VARCHAR(100) NOT NULL,
    "action" VARCHAR(100) NOT NULL,
    "entity" VARCHAR(50) NOT NULL,
    "entity_id" VARCHAR(50),
    "details" TEXT,
    "reason" TEXT
)""",
    """CREATE INDEX "audit_log_entity_entity_id" ON "audit_log" ("entity", "entity_id")""",
    """CREATE TABLE "feature_flags" (
    "name" VARCHAR(100) NOT NULL PRIMARY KEY,
    "enabled" INTEGER NOT NULL,
    "rollout_percent" INTEGER NOT NULL CHECK (rollout_percent >= 0 AND rollout_percent <= 100),
    "updated_at" DATETIME NOT NULL,
    "updated_by" VARCHAR(100) NOT NULL
)""",
]

POSTGRES_UP = [
    """CREATE TABLE "inbound_messages" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "provider" VARCHAR(20) NOT NULL,
    "message_key" VARCHAR(300) NOT NULL,
    "received_at" TIMESTAMP NOT NULL,
    "raw_payload" TEXT NOT NULL,
    "sender" VARCHAR(254),
    "recipient" VARCHAR(500),
    "subject" TEXT,
    "therapeutenanfrage_id" INTEGER,
    "status" VARCHAR(11) NOT NULL CHECK (status IN ('neu', 'verarbeitet', 'pruefung', 'ignoriert', 'fehler')),
    "result" JSONB,
    "review_reason" TEXT,
    "processed_at" TIMESTAMP,
    FOREIGN KEY ("therapeutenanfrage_id") REFERENCES "therapeutenanfrage" ("id") ON DELETE SET NULL
)""",
    """CREATE UNIQUE INDEX "inbound_messages_message_key" ON "inbound_messages" ("message_key")""",
    """CREATE INDEX "inbound_messages_therapeutenanfrage_id" ON "inbound_messages" ("therapeutenanfrage_id")""",
    """CREATE INDEX "inbound_messages_status" ON "inbound_messages" ("status")""",
    """CREATE TABLE "outbox" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "task" VARCHAR(100) NOT NULL,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "dedupe_key" VARCHAR(200) NOT NULL,
    "status" VARCHAR(14) NOT NULL CHECK (status IN ('offen', 'eingereiht', 'erledigt', 'fehlgeschlagen')),
    "created_at" TIMESTAMP NOT NULL,
    "enqueued_at" TIMESTAMP,
    "done_at" TIMESTAMP,
    "attempts" INTEGER NOT NULL,
    "last_error" TEXT
)""",
    """CREATE UNIQUE INDEX "outbox_dedupe_key" ON "outbox" ("dedupe_key")""",
    """CREATE INDEX "outbox_status_created_at" ON "outbox" ("status", "created_at")""",
    """CREATE TABLE "audit_log" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "at" TIMESTAMP NOT NULL,
    "actor" VARCHAR(100) NOT NULL,
    "action" VARCHAR(100) NOT NULL,
    "entity" VARCHAR(50) NOT NULL,
    "entity_id" VARCHAR(50),
    "details" JSONB,
    "reason" TEXT
)""",
    """CREATE INDEX "audit_log_entity_entity_id" ON "audit_log" ("entity", "entity_id")""",
    """CREATE TABLE "feature_flags" (
    "name" VARCHAR(100) NOT NULL PRIMARY KEY,
    "enabled" BOOLEAN NOT NULL,
    "rollout_percent" INTEGER NOT NULL CHECK (rollout_percent >= 0 AND rollout_percent <= 100),
    "updated_at" TIMESTAMP NOT NULL,
    "updated_by" VARCHAR(100) NOT NULL
)""",
]

SQLITE_DOWN = [
    'DROP TABLE "feature_flags"',
    'DROP TABLE "audit_log"',
    'DROP TABLE "outbox"',
    'DROP TABLE "inbound_messages"',
]

POSTGRES_DOWN = [
    'DROP TABLE "feature_flags"',
    'DROP TABLE "audit_log"',
    'DROP TABLE "outbox"',
    'DROP TABLE "inbound_messages"',
]

VERSION = 2
NAME = 'operations'
UP = {"sqlite": SQLITE_UP, "postgres": POSTGRES_UP}
DOWN = {"sqlite": SQLITE_DOWN, "postgres": POSTGRES_DOWN}
