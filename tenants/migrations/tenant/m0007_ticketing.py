"""Tenant schema: ticketing — contact identities, tags, notes, ticket lifecycle and metrics, queues with hours and
distribution, the chatbot menu, CSAT surveys, quick replies, presence, message search and media fetches.

Cost on existing data: the stored search document rewrites ``messages`` under an exclusive lock — measured here
about 20 s per million messages, plus about 7 s per million to build its GIN index — so migrate a large tenant
in a quiet hour (``atende migrate`` goes tenant by tenant and resumes). Backfills: LIDs and phone keys of existing
contacts (when two legacy contacts share a key — one number stored in two forms — the older one gets it and the
other keeps none until staff merge them) and the waiting time of open conversations.
"""

from __future__ import annotations

import asyncpg

DESCRIPTION = "ticketing: identities, tags, notes, lifecycle, distribution, menu, CSAT, quick replies, search"

# The text-search document of a message body / contact name: lower case, accents folded (``unaccent`` is an
# extension the embedded PostgreSQL lacks, so ``translate`` does it), 'simple' configuration (no stemming: agents
# search for what the customer wrote). ``saas.search`` builds queries against exactly this expression.
_FOLD = (
    "translate(lower(coalesce({col}, '')), 'áàâãäåéèêëíìîïóòôõöúùûüçñýÁÀÂÃÄÅÉÈÊËÍÌÎÏÓÒÔÕÖÚÙÛÜÇÑÝ',"
    " 'aaaaaaeeeeiiiiooooouuuucnyaaaaaaeeeeiiiiooooouuuucny')"
)


async def forwards(conn: asyncpg.Connection) -> None:
    body_doc = f"to_tsvector('simple'::regconfig, {_FOLD.format(col='body')})"
    contact_doc = (
        f"to_tsvector('simple'::regconfig, {_FOLD.format(col='name')} || ' ' || {_FOLD.format(col='push_name')})"
    )
    await conn.execute(
        f"""
        -- One row of tenant-wide settings.
        CREATE TABLE tenant_settings (
            id                    boolean PRIMARY KEY DEFAULT true CHECK (id),
            timezone              text NOT NULL DEFAULT 'America/Sao_Paulo',
            hours                 jsonb,          -- business-hours calendar; NULL = always open
            out_of_hours_message  text NOT NULL DEFAULT '',
            reopen_mode           text NOT NULL DEFAULT 'window' CHECK (reopen_mode IN ('window', 'new')),
            reopen_window_s       integer NOT NULL DEFAULT 1800 CHECK (reopen_window_s BETWEEN 0 AND 2592000),
            farewell_message      text NOT NULL DEFAULT '',
            csat_enabled          boolean NOT NULL DEFAULT false,
            csat_prompt           text NOT NULL
                DEFAULT 'Como você avalia o nosso atendimento? Responda com uma nota de 1 a 5.',
            csat_thanks           text NOT NULL DEFAULT 'Obrigado pela sua avaliação!',
            csat_window_s         integer NOT NULL DEFAULT 86400 CHECK (csat_window_s BETWEEN 60 AND 2592000),
            updated_at            timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO tenant_settings DEFAULT VALUES;

        -- Agents: capacity for automatic distribution and presence (from the inbox WebSocket).
        ALTER TABLE users
            ADD COLUMN capacity          integer NOT NULL DEFAULT 5 CHECK (capacity BETWEEN 0 AND 1000),
            ADD COLUMN presence          text NOT NULL DEFAULT 'offline' CHECK (presence IN ('online', 'away', 'offline')),
            ADD COLUMN presence_at       timestamptz,
            ADD COLUMN away              boolean NOT NULL DEFAULT false,
            ADD COLUMN last_assigned_at  timestamptz;

        -- Contacts: one person, whatever number form or LID WhatsApp shows.
        ALTER TABLE contacts DROP CONSTRAINT contacts_wa_id_key;
        ALTER TABLE contacts
            ADD COLUMN phone_key      text,   -- canonical digits (Brazilian mobiles with the 9th digit)
            ADD COLUMN lid            text,   -- <id>@lid when known
            ADD COLUMN email          text,
            ADD COLUMN custom_fields  jsonb NOT NULL DEFAULT '{{}}',
            ADD COLUMN blocked_at     timestamptz;
        UPDATE contacts SET lid = wa_id WHERE wa_id LIKE '%@lid';
        UPDATE contacts c SET phone_key = k.key FROM (
            SELECT DISTINCT ON (key) id, key FROM (
                SELECT id, CASE WHEN d ~ '^55[1-9][1-9][6-9][0-9]{{7}}$' THEN substr(d, 1, 4) || '9' || substr(d, 5)
                                ELSE d END AS key
                FROM (SELECT id, regexp_replace(phone, '[^0-9]', '', 'g') AS d FROM contacts WHERE phone IS NOT NULL) p
            ) keyed ORDER BY key, id
        ) k WHERE c.id = k.id;
        CREATE UNIQUE INDEX contacts_phone_key ON contacts (phone_key) WHERE phone_key IS NOT NULL;
        CREATE UNIQUE INDEX contacts_lid ON contacts (lid) WHERE lid IS NOT NULL;
        CREATE UNIQUE INDEX contacts_group ON contacts (wa_id) WHERE is_group;
        CREATE INDEX contacts_wa_id ON contacts (wa_id);
        CREATE INDEX contacts_search ON contacts USING gin (({contact_doc}));
        CREATE INDEX contacts_phone_digits ON contacts (phone text_pattern_ops);

        CREATE TABLE contact_notes (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            contact_id  bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
            user_id     bigint REFERENCES users (id),
            body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 4096),
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX contact_notes_contact ON contact_notes (contact_id, id DESC);

        CREATE TABLE tags (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 50),
            color       text NOT NULL DEFAULT '#78909c' CHECK (color ~ '^#[0-9a-fA-F]{{6}}$'),
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE UNIQUE INDEX tags_name ON tags (lower(name));
        CREATE TABLE contact_tags (
            contact_id  bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
            tag_id      bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
            PRIMARY KEY (contact_id, tag_id)
        );
        CREATE TABLE ticket_tags (
            ticket_id  bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
            tag_id     bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
            PRIMARY KEY (ticket_id, tag_id)
        );
        CREATE INDEX ticket_tags_tag ON ticket_tags (tag_id);

        -- Queues: distribution, hours, the connections they serve.
        ALTER TABLE queues
            ADD COLUMN strategy               text NOT NULL DEFAULT 'manual'
                CHECK (strategy IN ('manual', 'round_robin', 'least_busy')),
            ADD COLUMN return_on_offline      boolean NOT NULL DEFAULT false,
            ADD COLUMN hours                  jsonb,   -- NULL: the tenant's hours
            ADD COLUMN out_of_hours_message   text NOT NULL DEFAULT '',
            ADD COLUMN last_assigned_user_id  bigint;
        CREATE TABLE queue_connections (
            queue_id       bigint NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
            connection_id  bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
            PRIMARY KEY (queue_id, connection_id)
        );
        CREATE INDEX queue_connections_connection ON queue_connections (connection_id);

        -- Connections: the greeting and the chatbot menu of new conversations.
        ALTER TABLE connections
            ADD COLUMN greeting  text NOT NULL DEFAULT '',
            ADD COLUMN bot       jsonb;   -- saas.automation.menu.Bot; NULL = a menu of the linked queues

        -- Tickets: priority, snooze, the chatbot's state, lifecycle times and service metrics.
        ALTER TABLE tickets
            ADD COLUMN priority             smallint NOT NULL DEFAULT 1 CHECK (priority BETWEEN 0 AND 3),
            ADD COLUMN snoozed_until        timestamptz,
            ADD COLUMN waiting_since        timestamptz,   -- oldest customer message not answered by an agent
            ADD COLUMN bot_state            text CHECK (bot_state IN ('menu')),
            ADD COLUMN bot_path             text[] NOT NULL DEFAULT '{{}}',
            ADD COLUMN bot_invalid          smallint NOT NULL DEFAULT 0,
            ADD COLUMN bot_prompted_at      timestamptz,
            ADD COLUMN queue_entered_at     timestamptz,
            ADD COLUMN accepted_at          timestamptz,
            ADD COLUMN first_response_at    timestamptz,
            ADD COLUMN reopened_at          timestamptz,
            ADD COLUMN reopened_count       integer NOT NULL DEFAULT 0,
            ADD COLUMN closed_by            bigint REFERENCES users (id),
            ADD COLUMN wait_s               double precision,
            ADD COLUMN wait_bh_s            double precision,
            ADD COLUMN first_response_s     double precision,
            ADD COLUMN first_response_bh_s  double precision,
            ADD COLUMN resolution_s         double precision,
            ADD COLUMN resolution_bh_s      double precision;
        -- Conversations already open keep their place in the inbox: waiting since the first customer message
        -- after the business's last one.
        UPDATE tickets t SET waiting_since = w.since FROM (
            SELECT m.ticket_id, min(m.occurred_at) AS since
            FROM messages m JOIN tickets o ON o.id = m.ticket_id AND o.status <> 'closed'
            WHERE NOT m.from_me AND m.occurred_at > coalesce(
                (SELECT max(r.occurred_at) FROM messages r WHERE r.ticket_id = m.ticket_id AND r.from_me), '-infinity')
            GROUP BY m.ticket_id
        ) w WHERE t.id = w.ticket_id;
        DROP INDEX tickets_inbox;
        -- The inbox order (saas.tickets.rules.inbox_sort_key).
        CREATE INDEX tickets_inbox ON tickets
            (status, priority DESC, waiting_since ASC NULLS LAST, (coalesce(last_message_at, created_at)) DESC, id DESC);
        CREATE INDEX tickets_user ON tickets (user_id, status) WHERE user_id IS NOT NULL;
        CREATE INDEX tickets_contact ON tickets (contact_id, id DESC);
        CREATE INDEX tickets_created ON tickets (created_at);
        CREATE INDEX tickets_closed ON tickets (closed_at) WHERE closed_at IS NOT NULL;

        CREATE TABLE ticket_events (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ticket_id   bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
            at          timestamptz NOT NULL DEFAULT now(),
            actor_id    bigint REFERENCES users (id),
            action      text NOT NULL,
            details     jsonb NOT NULL DEFAULT '{{}}'
        );
        CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

        -- Messages: internal notes (never sent), automated messages (menu, greetings, out of hours, CSAT), and the
        -- text-search document, stored so a scan in id order tests it without re-parsing the text (saas.search).
        ALTER TABLE messages
            ADD COLUMN private  boolean NOT NULL DEFAULT false,
            ADD COLUMN bot      boolean NOT NULL DEFAULT false,
            ADD COLUMN search   tsvector GENERATED ALWAYS AS ({body_doc}) STORED;
        CREATE INDEX messages_search ON messages USING gin (search);

        -- Sends and media downloads waiting to reach the session's outbound stream.
        ALTER TABLE outbox ADD COLUMN kind text NOT NULL DEFAULT 'send' CHECK (kind IN ('send', 'fetch'));

        -- The out-of-hours message goes at most once per closed window per contact (and queue).
        CREATE TABLE out_of_hours_notices (
            contact_id  bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
            scope       text NOT NULL,   -- 'tenant' or 'queue:<id>'
            window_key  text NOT NULL,   -- saas.queues.calendar.window_key
            sent_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (contact_id, scope, window_key)
        );

        CREATE TABLE csat_surveys (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ticket_id      bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
            contact_id     bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
            connection_id  bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
            user_id        bigint REFERENCES users (id),
            queue_id       bigint REFERENCES queues (id) ON DELETE SET NULL,
            state          text NOT NULL DEFAULT 'asked' CHECK (state IN ('asked', 'answered', 'expired')),
            asked_at       timestamptz NOT NULL DEFAULT now(),
            expires_at     timestamptz NOT NULL,
            rating         smallint CHECK (rating BETWEEN 1 AND 5),
            answered_at    timestamptz,
            message_id     bigint REFERENCES messages (id)
        );
        -- At most one survey waits for an answer per contact and connection.
        CREATE UNIQUE INDEX csat_waiting ON csat_surveys (contact_id, connection_id) WHERE state = 'asked';
        CREATE INDEX csat_answered ON csat_surveys (answered_at) WHERE state = 'answered';

        CREATE TABLE quick_replies (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            shortcut    text NOT NULL CHECK (shortcut ~ '^[a-z0-9][a-z0-9_-]{{0,39}}$'),
            body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 4096),
            scope       text NOT NULL CHECK (scope IN ('tenant', 'queue', 'user')),
            queue_id    bigint REFERENCES queues (id) ON DELETE CASCADE,
            user_id     bigint REFERENCES users (id) ON DELETE CASCADE,
            created_by  bigint REFERENCES users (id),
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now(),
            CHECK ((scope = 'queue') = (queue_id IS NOT NULL) AND (scope = 'user') = (user_id IS NOT NULL))
        );
        CREATE UNIQUE INDEX quick_replies_shortcut
            ON quick_replies (scope, coalesce(queue_id, 0), coalesce(user_id, 0), shortcut);
        """
    )
