"""``atende bench inbox``: the agent inbox through the HTTP API on a tenant with 100,000 tickets and 1,000,000
messages.

The data is bulk-loaded (COPY) into a scratch database with a realistic spread: ~70% closed, ~20% open, ~10%
pending tickets over half a year, 5-15 messages each of ~40 characters drawn from customer-service phrases,
10 queues, 30 agents in three queues each, priorities mostly normal. Then ``atende serve`` runs as its own process
and an agent of three queues calls it the way the inbox does, one request at a time over a kept-alive
connection:

* **list** — ``GET /api/v1/tickets?status=pending|open&limit=50`` (the two inbox tabs),
* **search** — ``GET /api/v1/search/messages?q=...`` with common words, rare words, two-word phrases, order numbers,
* **open** — ``GET /api/v1/tickets/{id}/messages?limit=50`` (opening a conversation: its latest 50 messages).

Latencies are client-side wall times in milliseconds (p50/p95 over the measured requests, after a warm-up).
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.common import free_port, run_in_scratch, spawn, stop, wait_until
from saas.contacts.phones import phone_key
from saas.settings import Settings
from tenants import db
from tenants.context import tenant_context
from tenants.migrations import migrate_public
from tenants.passwords import hash_password
from tenants.provisioning import create_tenant

__all__ = ["run_inbox_bench"]

PASSWORD = "bench password"
QUEUES = 10
AGENTS = 30
FIRST = ["Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabriela", "Heitor", "Isabela", "João", "Karina",
         "Lucas", "Mariana", "Nicolas", "Olívia", "Paulo", "Quésia", "Rafael", "Sofia", "Thiago", "Úrsula",
         "Vinícius", "Wesley", "Yasmin", "Zeca"]  # fmt: skip
LAST = ["Silva", "Souza", "Oliveira", "Santos", "Lima", "Pereira", "Costa", "Rodrigues", "Almeida", "Nascimento",
        "Ferreira", "Araújo", "Carvalho", "Gomes", "Martins", "Rocha", "Ribeiro", "Barbosa"]  # fmt: skip
CITIES = ["Campinas", "Curitiba", "Recife", "Salvador", "Fortaleza", "Manaus", "Belém", "Goiânia", "Niterói",
          "Santos", "Londrina", "Joinville", "Uberlândia", "Sorocaba"]  # fmt: skip
CUSTOMER = [
    "Oi, meu pedido {n} ainda não chegou", "Bom dia, quero trocar o produto", "Qual o prazo de entrega em {c}?",
    "O boleto venceu, podem gerar outro?", "Preciso da segunda via da fatura", "Meu cartão foi recusado na compra",
    "Quero cancelar a assinatura, por favor", "O produto veio com defeito na tela", "Vocês entregam em {c}?",
    "Ainda não recebi o reembolso do pedido", "Como faço para mudar o endereço?", "Pode me passar o código de rastreio?",
    "O aplicativo não abre no meu celular", "Tem desconto para pagamento no pix?", "Comprei errado, dá para trocar?",
    "Boa tarde, alguém pode me ajudar?", "Obrigado pelo atendimento!", "O tamanho ficou pequeno demais",
]  # fmt: skip
AGENT = [
    "Olá! Vou verificar o pedido {n} para você", "Pode me informar o CPF do titular?",
    "O prazo para {c} é de {d} dias úteis", "Já gerei um novo boleto, confira seu e-mail",
    "Enviei a segunda via para o seu e-mail", "Pode tentar outro cartão ou o pix?",
    "Cancelamento feito, você receberá a confirmação", "Sinto muito! Vamos trocar sem custo",
    "O reembolso cai em até {d} dias úteis", "Endereço atualizado com sucesso",
    "O código de rastreio é BR{n}", "Tente reinstalar o aplicativo, por favor", "No pix você tem 5% de desconto",
    "Claro! Vou abrir a troca agora mesmo", "Posso ajudar em algo mais?", "Por nada, tenha um ótimo dia!",
]  # fmt: skip
SEARCHES = ["pedido", "boleto", "reembolso", "segunda via", "cartão recusado", "rastreio", "defeito tela",
            "cancelar assinatura", "pix desconto", "endereço", "aplicativo", "Curitiba", "Recife prazo", "troca",
            "fatura", "trocar produto", "manaus defeito", "garantia estendida", "nota fiscal", "xyzzy"]  # fmt: skip
"""Common words, phrases, a city, words that never occur together or at all; order numbers are added per run."""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2) if ordered else 0.0


def _text(rng: random.Random, phrases: list[str]) -> str:
    return rng.choice(phrases).format(n=rng.randrange(10_000, 99_999), c=rng.choice(CITIES), d=rng.randrange(2, 12))


async def _load(tenant_id: int, tickets: int, rng: random.Random) -> dict[str, Any]:
    """Bulk-load the tenant: agents, queues, contacts, tickets and messages (COPY), then ANALYZE."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    async with tenant_context(tenant_id=tenant_id) as session:
        conn = session.conn
        schema = session.tenant.schema
        connection_id = await conn.fetchval(
            "INSERT INTO connections (name, provider, business_number, connection_key) VALUES ('Loja', 'simulator',"
            " '+5511900009999', 'bench-inbox') RETURNING id"
        )
        queue_ids = [await conn.fetchval("INSERT INTO queues (name) VALUES ($1) RETURNING id", f"Fila {q}")
                     for q in range(QUEUES)]  # fmt: skip
        password = hash_password(PASSWORD)
        agent_ids = [await conn.fetchval(
            "INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, 'agent', $3) RETURNING id",
            f"agent{a}@inbox.bench", f"{FIRST[a % len(FIRST)]} {LAST[a % len(LAST)]}", password) for a in range(AGENTS)]  # fmt: skip
        members: dict[int, list[int]] = {q: [] for q in queue_ids}
        for a, agent in enumerate(agent_ids):  # three queues each, spread evenly
            for k in range(3):
                queue = queue_ids[(a + k * 3) % QUEUES]
                members[queue].append(agent)
                await conn.execute("INSERT INTO queue_members VALUES ($1, $2)", queue, agent)

        contacts = int(tickets * 0.6)
        contact_rows = []
        for c in range(contacts):
            digits = f"55{rng.choice((11, 21, 31, 41, 51, 61, 71, 81, 85, 91))}9{c:08d}"
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            contact_rows.append((f"{digits}@s.whatsapp.net", "+" + digits, phone_key(digits), name, now, now))
        await conn.copy_records_to_table("contacts", records=contact_rows, schema_name=schema,
                                         columns=["wa_id", "phone", "phone_key", "push_name", "created_at", "updated_at"])  # fmt: skip

        span = timedelta(days=180)
        active = [c + 1 for c in range(contacts)]
        rng.shuffle(active)
        ticket_rows, message_rows = [], []
        counts = {"closed": 0, "open": 0, "pending": 0}
        for t in range(tickets):
            created = now - span + span * (t / tickets)
            # ~70% closed, ~20% open, ~10% pending overall, and the open and pending ones recent: everything
            # in the older 55% of the span is closed, the newer 45% is one third closed.
            draw = rng.random() if t >= 0.55 * tickets else 0.0
            status = "closed" if draw < 1 / 3 else "open" if draw < 1 / 3 + 0.2 / 0.45 else "pending"
            if status == "closed" or not active:
                status, contact = "closed", rng.randrange(1, contacts + 1)
            else:
                contact = active.pop()  # one active ticket per contact and connection
            counts[status] += 1
            queue = rng.choice(queue_ids)
            user = None if status == "pending" else rng.choice(members[queue])
            priority = rng.choices((0, 1, 2, 3), weights=(5, 85, 8, 2))[0]
            n = rng.randrange(5, 16)
            at = created
            last_text = ""
            for i in range(n):
                at += timedelta(seconds=rng.randrange(20, 600))
                mine = i % 2 == 1
                last_text = _text(rng, AGENT if mine else CUSTOMER)
                message_rows.append((t + 1, connection_id, f"m{t}-{i}", mine, "text", last_text,
                                     user if mine else None, "READ" if mine else "RECEIVED", 4 if mine else 0, at))  # fmt: skip
            waiting = at if status == "pending" or (status == "open" and n % 2 == 1) else None
            ticket_rows.append((contact, connection_id, user, status, priority, queue, at, last_text[:120], waiting,
                                created, at, at if status == "closed" else None, 0 if status == "closed" else 1))  # fmt: skip
        await conn.copy_records_to_table(
            "tickets", records=ticket_rows, schema_name=schema,
            columns=["contact_id", "connection_id", "user_id", "status", "priority", "queue_id", "last_message_at",
                     "last_message_preview", "waiting_since", "created_at", "updated_at", "closed_at", "unread_count"])  # fmt: skip
        message_rows.sort(key=lambda m: m[-1])  # in time order, conversations interleaved, as traffic arrives
        await conn.copy_records_to_table(
            "messages", records=message_rows, schema_name=schema,
            columns=["ticket_id", "connection_id", "provider_message_id", "from_me", "kind", "body", "user_id", "status",
                     "status_rank", "occurred_at"])  # fmt: skip
    pool = db.pool()
    for table in ("contacts", "tickets", "messages", "queue_members", "users"):  # as autovacuum would have
        await pool.execute(f'VACUUM (ANALYZE) "{schema}".{table}')
    await pool.execute("CHECKPOINT")  # the bulk load's writes are not what the inbox is measured against
    return {
        "tickets": tickets,
        "messages": len(message_rows),
        "contacts": contacts,
        **counts,
        "load_s": round(time.perf_counter() - started, 1),
    }


async def _timed(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[float, Any]:
    started = time.perf_counter()
    response = await client.get(url, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:200]}")
    return elapsed, response.json()


async def _measure(database_url: str, redis_url: str, prefix: str, *, tickets: int, requests: int,
                   seed: int) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(seed)
    await db.start(database_url, max_size=4)
    try:
        await migrate_public()
        tenant = await create_tenant("inbox", name="Inbox bench", admin_email="admin@inbox.bench",
                                     admin_password=PASSWORD, plan="enterprise")  # fmt: skip
        loaded = await _load(tenant.id, tickets, rng)
    finally:
        await db.stop()
    port = free_port()
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ATENDE_REDIS_PREFIX": prefix,
           "ATENDE_SECRET_KEY": "bench-secret-key-" + "s" * 32, "ATENDE_MASTER_KEY": "bench-master-key-" + "m" * 32,
           "ATENDE_LOG_LEVEL": "WARNING", "ATENDE_API_RATE_PER_MIN": "1000000"}  # fmt: skip
    server = spawn(["serve", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:

            async def up() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(up, 30, "atende serve")
            login = await client.post("/api/v1/auth/login", json={"tenant": "inbox", "email": "agent0@inbox.bench",
                                                                   "password": PASSWORD})  # fmt: skip
            auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
            lists: list[float] = []
            searches: list[float] = []
            opens: list[float] = []
            visible: set[int] = set()
            warmup = max(10, requests // 10)
            for i in range(warmup + requests):
                status = ("pending", "open")[i % 2]
                elapsed, page = await _timed(client, f"/api/v1/tickets?status={status}&limit=50", auth)
                visible.update(t["id"] for t in page["items"])
                if i >= warmup:
                    lists.append(elapsed)
            # The tickets to open: each once in the sample, from the first pages and far down, closed ones too
            # (a contact's earlier conversations), so opening is not measured on a hundred cached tickets.
            for status in ("open", "pending", "closed"):
                cursor = None
                for _ in range(5):
                    _, page = await _timed(client, f"/api/v1/tickets?status={status}&limit=200"
                                           + (f"&cursor={cursor}" if cursor else ""), auth)  # fmt: skip
                    visible.update(t["id"] for t in page["items"])
                    cursor = page["next_cursor"]
                    if not cursor:
                        break
            sample = sorted(visible)
            hits = []
            terms = SEARCHES + [str(rng.randrange(10_000, 99_999)) for _ in range(len(SEARCHES) // 2)]  # order numbers
            for i in range(warmup + requests):
                elapsed, page = await _timed(client, f"/api/v1/search/messages?q={rng.choice(terms)}&limit=20", auth)
                if i >= warmup:
                    searches.append(elapsed)
                    hits.append(len(page["items"]))
            for i in range(warmup + requests):
                elapsed, page = await _timed(client, f"/api/v1/tickets/{rng.choice(sample)}/messages?limit=50", auth)
                if i >= warmup:
                    opens.append(elapsed)
    finally:
        stop(server)
    return {
        "tickets": loaded["tickets"], "messages": loaded["messages"],
        "list_p50_ms": _pct(lists, 0.5), "list_p95_ms": _pct(lists, 0.95),
        "search_p50_ms": _pct(searches, 0.5), "search_p95_ms": _pct(searches, 0.95),
        "open_p50_ms": _pct(opens, 0.5), "open_p95_ms": _pct(opens, 0.95),
        "requests_each": requests, "opened_from": len(sample), "search_hits_avg": round(statistics.mean(hits), 1) if hits else 0,
        "closed": loaded["closed"], "open": loaded["open"], "pending": loaded["pending"],
        "contacts": loaded["contacts"], "load_s": loaded["load_s"],
    }  # fmt: skip


def run_inbox_bench(
    settings: Settings, *, tickets: int = 100_000, requests: int = 300, seed: int = 7
) -> dict[str, Any]:
    async def measure(database_url: str, redis_url: str, prefix: str) -> dict[str, Any]:
        return await _measure(database_url, redis_url, prefix, tickets=tickets, requests=requests, seed=seed)

    return run_in_scratch(settings, "inbox", measure)
